-- Privileges. Nothing in schema gik is executable or readable by PUBLIC. Two roles are granted
-- what they need (created here when missing; roles outlive DROP EXTENSION):
--   gik_reader  reads the catalog, decodes referenced messages, runs analytics and manifests;
--   gik_ingest  is also a gik_reader and defines datasets, ingests, imports and removes runs.
-- Which URLs either may fetch is decided by the superuser-only settings gik.allowed_url_prefixes
-- and gik.allowed_addresses; server files only by superusers and pg_read_server_files members.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'gik_reader') THEN
        CREATE ROLE gik_reader NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'gik_ingest') THEN
        CREATE ROLE gik_ingest NOLOGIN;
    END IF;
    IF NOT pg_catalog.pg_has_role('gik_ingest', 'gik_reader', 'MEMBER') THEN
        GRANT gik_reader TO gik_ingest;
    END IF;
END $$;

REVOKE ALL ON ALL ROUTINES IN SCHEMA gik FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA gik FROM PUBLIC;

GRANT USAGE ON SCHEMA gik TO gik_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA gik TO gik_reader;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA gik TO gik_ingest;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA gik TO gik_ingest;
GRANT EXECUTE ON ALL ROUTINES IN SCHEMA gik TO gik_ingest;

-- What readers may execute comes from the "-- grant: reader" line above each routine's definition: the
-- build appends those grants after this part (sql/reader-grants.awk), so a new routine is classified where
-- it is defined, and test/check-sql-parts.sh fails when one is not.

-- pg_gik fetches only when preloaded (see _PG_init): say so at install time.
DO $$
BEGIN
    IF NOT 'pg_gik' = ANY (string_to_array(replace(current_setting('shared_preload_libraries'), ' ', ''), ',')) THEN
        RAISE WARNING 'pg_gik is not in shared_preload_libraries: it will refuse to fetch until it is'
            USING HINT = 'Add pg_gik to shared_preload_libraries in postgresql.conf and restart the server.';
    END IF;
END $$;
