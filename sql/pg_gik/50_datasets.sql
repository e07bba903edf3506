-- Dataset definitions: URL templates, built-in GEFS and ECMWF ENS, and the file plan of a run.

-- Expand a URL template for one run, step and member token.
CREATE FUNCTION gik.expand_url(template text, init_time timestamptz, step int, member_token text DEFAULT NULL)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN replace(replace(replace(replace(replace(replace(template,
    '{date}', to_char(init_time AT TIME ZONE 'UTC', 'YYYYMMDD')),
    '{cycle}', to_char(init_time AT TIME ZONE 'UTC', 'HH24')),
    '{step3}', lpad(step::text, 3, '0')),
    '{step2}', lpad(step::text, 2, '0')),
    '{step}', step::text),
    '{member}', coalesce(member_token, ''));
COMMENT ON FUNCTION gik.expand_url(text, timestamptz, int, text) IS
'Expand {date} (YYYYMMDD), {cycle} (HH), {step}, {step2}, {step3} (zero-padded hours) and {member} in a URL template, in UTC.';

-- Steps from a list of ranges such as '0-144/3,150-360/6'.
CREATE FUNCTION gik.step_list(spec text) RETURNS int[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (
    SELECT array_agg(s ORDER BY s)
    FROM unnest(string_to_array(replace(spec, ' ', ''), ',')) AS part,
         LATERAL (SELECT split_part(part, '/', 1) AS range, coalesce(nullif(split_part(part, '/', 2), ''), '1')::int AS every) r,
         LATERAL generate_series(split_part(r.range, '-', 1)::int,
                                 coalesce(nullif(split_part(r.range, '-', 2), ''), split_part(r.range, '-', 1))::int,
                                 r.every) AS s);
COMMENT ON FUNCTION gik.step_list(text) IS 'Forecast hours from a compact list of ranges, e.g. ''0-144/3,150-360/6''.';

-- The index URL template that goes with a GRIB URL template: NOAA appends .idx, ECMWF replaces .grib2 by .index.
CREATE FUNCTION gik.default_index_template(index_format text, url_template text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE index_format WHEN 'idx' THEN url_template || '.idx'
                         ELSE regexp_replace(url_template, '\.grib2?$', '') || '.index' END;
COMMENT ON FUNCTION gik.default_index_template(text, text) IS
'Index URL template for a GRIB URL template: NOAA appends .idx; ECMWF replaces .grib2 with .index.';

-- Define or redefine a dataset with one file series.
CREATE FUNCTION gik.define_dataset(
    name text, index_format text, url_template text,
    cycles smallint[], steps int[],
    members int[] DEFAULT NULL, member_tokens text[] DEFAULT NULL,
    variables text[] DEFAULT NULL, accumulated_params text[] DEFAULT '{}',
    description text DEFAULT NULL, index_template text DEFAULT NULL,
    precip_variable text DEFAULT NULL, precip_level text DEFAULT NULL)
RETURNS smallint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    id smallint;
BEGIN
    INSERT INTO gik.dataset AS d (name, description, index_format, cycles, steps, variables, accumulated_params,
                                  members, precip_variable, precip_level)
    VALUES (define_dataset.name, define_dataset.description, define_dataset.index_format,
            define_dataset.cycles, define_dataset.steps, define_dataset.variables, define_dataset.accumulated_params,
            define_dataset.members, define_dataset.precip_variable, define_dataset.precip_level)
    ON CONFLICT ON CONSTRAINT dataset_name_key DO UPDATE
        SET description = EXCLUDED.description, index_format = EXCLUDED.index_format,
            cycles = EXCLUDED.cycles, steps = EXCLUDED.steps, variables = EXCLUDED.variables,
            accumulated_params = EXCLUDED.accumulated_params, members = EXCLUDED.members,
            precip_variable = EXCLUDED.precip_variable, precip_level = EXCLUDED.precip_level
    RETURNING d.dataset_id INTO id;
    DELETE FROM gik.dataset_source s WHERE s.dataset_id = id;
    INSERT INTO gik.dataset_source (dataset_id, source, url_template, index_template, members, member_tokens)
    VALUES (id, 'files', define_dataset.url_template,
            coalesce(define_dataset.index_template,
                     gik.default_index_template(define_dataset.index_format, define_dataset.url_template)),
            define_dataset.members, coalesce(define_dataset.member_tokens,
                (SELECT array_agg(m::text ORDER BY o) FROM unnest(define_dataset.members) WITH ORDINALITY AS t(m, o))));
    RETURN id;
END $$;
COMMENT ON FUNCTION gik.define_dataset(text, text, text, smallint[], int[], int[], text[], text[], text[], text, text, text, text) IS
'Define (or redefine) a dataset with one series of files: index format (''idx'' or ''ecmwf_index''), GRIB URL template, cycles, steps and, for one file per member, the member numbers and the tokens that replace {member} (default: the numbers). The index template defaults to gik.default_index_template(). precip_variable/precip_level name the field that gik.accumulate() sums. Add more series to gik.dataset_source directly.';

-- Built-in datasets.
INSERT INTO gik.dataset (name, description, index_format, cycles, steps, variables, accumulated_params, members,
                         precip_variable, precip_level) VALUES
  ('gefs_0p25', 'NOAA GEFS 0.25 degree (pgrb2s): control gec00 and members gep01-gep30, f000-f240 every 3 h',
   'idx', '{0,6,12,18}', gik.step_list('0-240/3'), NULL, '{}', gik.step_list('0-30'), 'APCP', 'surface'),
  ('ecmwf_ens_0p25', 'ECMWF ENS open data 0.25 degree: 50 perturbed members in enfo-ef, control as cf before IFS 50r1 and as oper-fc from 2026-05-12 06z',
   'ecmwf_index', '{0,6,12,18}', gik.step_list('0-144/3,150-360/6'), NULL,
   '{tp,cp,lsp,sf,ssrd,strd,ssr,str,ttr,tsr,sshf,slhf,e,ro,sro,ssro}', gik.step_list('0-50'), 'tp', 'sfc');

INSERT INTO gik.dataset_source (dataset_id, source, url_template, index_template, members, member_tokens, index_members, cycles, steps, valid_from, valid_until)
SELECT d.dataset_id, s.source, s.url_template, gik.default_index_template(d.index_format, s.url_template), s.members, s.member_tokens, s.index_members, s.cycles, s.steps,
       s.valid_from, s.valid_until
FROM (VALUES
  ('gefs_0p25', 'members',
   's3://noaa-gefs-pds/gefs.{date}/{cycle}/atmos/pgrb2sp25/{member}.t{cycle}z.pgrb2s.0p25.f{step3}',
   (SELECT array_agg(m ORDER BY m) FROM generate_series(0, 30) m),
   (SELECT array_agg(CASE WHEN m = 0 THEN 'gec00' ELSE 'gep' || lpad(m::text, 2, '0') END ORDER BY m) FROM generate_series(0, 30) m),
   NULL::int[], NULL::smallint[], NULL::int[], '-infinity'::timestamptz, 'infinity'::timestamptz),
  ('ecmwf_ens_0p25', 'enfo-ef',
   's3://ecmwf-forecasts/{date}/{cycle}z/ifs/0p25/enfo/{date}{cycle}0000-{step}h-enfo-ef.grib2',
   NULL, NULL, NULL, '{0,12}', gik.step_list('0-144/3,150-360/6'), '-infinity', 'infinity'),
  ('ecmwf_ens_0p25', 'enfo-ef-short',
   's3://ecmwf-forecasts/{date}/{cycle}z/ifs/0p25/enfo/{date}{cycle}0000-{step}h-enfo-ef.grib2',
   NULL, NULL, NULL, '{6,18}', gik.step_list('0-144/3'), '-infinity', 'infinity'),
  ('ecmwf_ens_0p25', 'oper-fc-control',
   's3://ecmwf-forecasts/{date}/{cycle}z/ifs/0p25/oper/{date}{cycle}0000-{step}h-oper-fc.grib2',
   NULL, NULL, '{0}', '{0,12}', gik.step_list('0-144/3,150-360/6'), '2026-05-12 06:00+00', 'infinity'),
  ('ecmwf_ens_0p25', 'oper-fc-control-short',
   's3://ecmwf-forecasts/{date}/{cycle}z/ifs/0p25/oper/{date}{cycle}0000-{step}h-oper-fc.grib2',
   NULL, NULL, '{0}', '{6,18}', gik.step_list('0-144/3'), '2026-05-12 06:00+00', 'infinity')
) AS s(dataset, source, url_template, members, member_tokens, index_members, cycles, steps, valid_from, valid_until)
JOIN gik.dataset d ON d.name = s.dataset;

-- The files of one run: one row per (source, step, member file).
CREATE FUNCTION gik.plan_files(dataset text, init_time timestamptz, members int[] DEFAULT NULL, steps int[] DEFAULT NULL)
RETURNS TABLE (file_no int, source text, step int, member int, url text, index_url text, index_members int[])
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f record;
BEGIN
    FOR f IN
        SELECT (row_number() OVER (ORDER BY st.step, m.member NULLS FIRST, s.source))::int AS file_no,
               s.source, st.step, m.member,
               gik.expand_url(s.url_template, plan_files.init_time, st.step, m.token) AS url,
               gik.expand_url(s.index_template, plan_files.init_time, st.step, m.token) AS index_url,
               s.index_members, s.defined_by
        FROM gik.dataset d
        JOIN gik.dataset_source s ON s.dataset_id = d.dataset_id
        CROSS JOIN LATERAL unnest(coalesce(s.steps, d.steps)) AS st(step)
        CROSS JOIN LATERAL (
            SELECT u.member, u.token FROM unnest(s.members, s.member_tokens) AS u(member, token)
            UNION ALL
            SELECT NULL::int, NULL::text WHERE s.members IS NULL) AS m
        WHERE d.name = plan_files.dataset
          AND plan_files.init_time >= s.valid_from AND plan_files.init_time < s.valid_until
          AND extract(hour FROM plan_files.init_time AT TIME ZONE 'UTC')::smallint = ANY (coalesce(s.cycles, d.cycles))
          AND (plan_files.steps IS NULL OR st.step = ANY (plan_files.steps))
          AND (plan_files.members IS NULL OR m.member IS NULL OR m.member = ANY (plan_files.members))
        ORDER BY 1
    LOOP
        -- whoever runs this (pg_cron, a superuser), a server file is read only if the series' author may read it
        IF (gik.is_server_file(f.url) OR gik.is_server_file(f.index_url)) AND NOT gik.reads_server_files(f.defined_by) THEN
            RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
                MESSAGE = format('file series "%s" of dataset "%s" names server files, but its author %s may not read them',
                                 f.source, plan_files.dataset, f.defined_by),
                HINT = 'A superuser or a member of pg_read_server_files must define the series.';
        END IF;
        file_no := f.file_no; source := f.source; step := f.step; member := f.member;
        url := f.url; index_url := f.index_url; index_members := f.index_members;
        RETURN NEXT;
    END LOOP;
END $$;
COMMENT ON FUNCTION gik.plan_files(text, timestamptz, int[], int[]) IS
'The GRIB and index URLs that make up one run of a dataset, optionally restricted to members and steps.';

-- Copy a dataset's definition (not its runs) under a new name.
CREATE FUNCTION gik.clone_dataset(source text, name text, variables text[] DEFAULT NULL) RETURNS smallint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    src gik.dataset;
    id  smallint;
BEGIN
    src := gik.dataset_named(clone_dataset.source);
    INSERT INTO gik.dataset (name, description, index_format, cycles, steps, variables, accumulated_params, members,
                             precip_variable, precip_level, retention)
    VALUES (clone_dataset.name, src.description, src.index_format, src.cycles, src.steps,
            coalesce(clone_dataset.variables, src.variables), src.accumulated_params, src.members,
            src.precip_variable, src.precip_level, src.retention)
    RETURNING dataset_id INTO id;
    INSERT INTO gik.dataset_source (dataset_id, source, url_template, index_template, members, member_tokens, index_members,
                                    cycles, steps, valid_from, valid_until)
    SELECT id, s.source, s.url_template, s.index_template, s.members, s.member_tokens, s.index_members, s.cycles, s.steps,
           s.valid_from, s.valid_until
    FROM gik.dataset_source s WHERE s.dataset_id = src.dataset_id;
    RETURN id;
END $$;
COMMENT ON FUNCTION gik.clone_dataset(text, text, text[]) IS
'A new dataset with the same definition (file series, cycles, steps, members, precipitation field) as source, optionally with another variable selection; it has its own runs and templates.';
