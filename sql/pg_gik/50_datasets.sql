-- Dataset definitions: URL templates, built-in GEFS and ECMWF ENS, and the file plan of a run.

-- grant: reader
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

-- grant: ingest
-- Who wrote a file series, and whether it may name server files.
CREATE FUNCTION gik.dataset_source_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    NEW.defined_by := current_user;
    IF NOT gik.reads_server_files(current_user) AND EXISTS (
           SELECT FROM unnest(coalesce(NEW.member_tokens, '{NULL}'::text[])) AS t(token),
                       unnest(ARRAY[NEW.url_template, NEW.index_template]) AS u(template)
           WHERE gik.is_server_file(gik.expand_url(u.template, now(), 0, t.token))) THEN
        RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
            MESSAGE = format('permission denied to name server files in file series "%s"', NEW.source),
            DETAIL = 'Absolute paths and file:// URLs may be used only by superusers and members of pg_read_server_files.';
    END IF;
    RETURN NEW;
END $$;
COMMENT ON FUNCTION gik.dataset_source_guard() IS
'Trigger of gik.dataset_source: records the writing role in defined_by and refuses server-file URLs from roles that may not read server files.';
CREATE TRIGGER dataset_source_guard BEFORE INSERT OR UPDATE ON gik.dataset_source
FOR EACH ROW EXECUTE FUNCTION gik.dataset_source_guard();

-- grant: reader
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

-- grant: reader
-- The index URL template that goes with a GRIB URL template: NOAA appends .idx, ECMWF replaces .grib2 by .index.
CREATE FUNCTION gik.default_index_template(index_format text, url_template text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE index_format WHEN 'idx' THEN url_template || '.idx'
                         ELSE regexp_replace(url_template, '\.grib2?$', '') || '.index' END;
COMMENT ON FUNCTION gik.default_index_template(text, text) IS
'Index URL template for a GRIB URL template: NOAA appends .idx; ECMWF replaces .grib2 with .index.';

-- grant: ingest
-- GEFS file name tokens of members: gec00, gep01-gep30, geavg (-1), gespr (-2).
CREATE FUNCTION gik.gefs_member_tokens(members int[]) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN (SELECT array_agg(CASE WHEN m = 0 THEN 'gec00' WHEN m = -1 THEN 'geavg' WHEN m = -2 THEN 'gespr'
                              ELSE 'gep' || lpad(m::text, 2, '0') END ORDER BY o)
        FROM unnest(members) WITH ORDINALITY AS u(m, o));
COMMENT ON FUNCTION gik.gefs_member_tokens(int[]) IS
'The GEFS file-name tokens of members (in order): gec00 for 0, gepNN for 1-30, geavg for -1 (mean), gespr for -2 (spread).';

-- grant: ingest
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

-- Built-in datasets. The dates are those of the public archives' layouts (see docs/datasets.md).
INSERT INTO gik.dataset (name, description, index_format, cycles, steps, variables, accumulated_params, members,
                         precip_variable, precip_level) VALUES
  ('gefs_0p25', 'NOAA GEFS 0.25 degree primary fields (pgrb2sp25): control gec00 and members gep01-gep30, f000-f240 every 3 h. Layout of GEFS v12, from 2020-09-23 12z.',
   'idx', '{0,6,12,18}', gik.step_list('0-240/3'), NULL, '{}', gik.step_list('0-30'), 'APCP', 'surface'),
  ('gefs_0p50', 'NOAA GEFS 0.5 degree primary fields (pgrb2ap5): control gec00, members gep01-gep30, ensemble mean geavg (member -1) and spread gespr (-2); f000-f240 every 3 h, then every 6 h to f384 (the 00z run to f840, 35 days). Layout of GEFS v12, from 2020-09-23 12z.',
   'idx', '{0,6,12,18}', gik.step_list('0-240/3,246-840/6'), NULL, '{}', gik.step_list('0-30'), 'APCP', 'surface'),
  ('gefs_0p50_b', 'NOAA GEFS 0.5 degree secondary fields (pgrb2bp5, about 500 less common fields): control gec00 and members gep01-gep30; steps as gefs_0p50. From 2020-09-23 12z.',
   'idx', '{0,6,12,18}', gik.step_list('0-240/3,246-840/6'), NULL, '{}', gik.step_list('0-30'), NULL, NULL),
  ('gfs_0p25', 'NOAA GFS 0.25 degree (pgrb2), deterministic: f000-f120 hourly, then every 3 h to f384. The AWS archive starts 2021-01-01; files sit under atmos/ from 2021-03-23.',
   'idx', '{0,6,12,18}', gik.step_list('0-120,123-384/3'), NULL, '{}', NULL, 'APCP', 'surface'),
  ('gfs_0p25_b', 'NOAA GFS 0.25 degree secondary fields (pgrb2b), deterministic; steps as gfs_0p25. The AWS archive starts 2021-01-01; files sit under atmos/ from 2021-03-23.',
   'idx', '{0,6,12,18}', gik.step_list('0-120,123-384/3'), NULL, '{}', NULL, NULL, NULL),
  ('hrrr', 'NOAA HRRR CONUS 3 km surface fields (wrfsfc, Lambert conformal grid), deterministic: hourly runs to f18, the 00, 06, 12 and 18z runs to f48 (HRRR v4, from 2020-12-02 12z). The AWS archive starts 2014-07-30.',
   'idx', gik.step_list('0-23')::smallint[], gik.step_list('0-48'), NULL, '{}', NULL, 'APCP', 'surface'),
  ('hrrr_prs', 'NOAA HRRR CONUS 3 km pressure-level fields (wrfprs), deterministic; runs and steps as hrrr (f48 from 2020-12-02 12z). The AWS archive starts 2014-07-30.',
   'idx', gik.step_list('0-23')::smallint[], gik.step_list('0-48'), NULL, '{}', NULL, NULL, NULL),
  ('hrrr_nat', 'NOAA HRRR CONUS 3 km native-level fields (wrfnat), deterministic; runs and steps as hrrr (f48 from 2020-12-02 12z). The AWS archive starts 2014-07-30.',
   'idx', gik.step_list('0-23')::smallint[], gik.step_list('0-48'), NULL, '{}', NULL, NULL, NULL),
  ('hrrr_subh', 'NOAA HRRR CONUS 3 km sub-hourly fields (wrfsubh), deterministic: one file per hour f00-f18 holding the 15, 30, 45 and 60 minute steps (N min fcst) of that hour. The AWS archive starts 2014-07-30.',
   'idx', gik.step_list('0-23')::smallint[], gik.step_list('0-18'), NULL, '{}', NULL, 'APCP', 'surface'),
  ('ecmwf_ens_0p25', 'ECMWF ENS open data: 50 perturbed members in enfo-ef, control as cf before IFS 50r1 and as oper-fc from 2026-05-12 06z; 0-144 h every 3 h, then every 6 h to 360 h (06/18z: to 144 h). 0.25 degree from 2024-02-01 (under ifs/ from 2024-02-28 06z); before, the 0.4 degree 0p4-beta layout, from 2022-01-25.',
   'ecmwf_index', '{0,6,12,18}', gik.step_list('0-144/3,150-360/6'), NULL,
   '{tp,cp,lsp,sf,ssrd,strd,ssr,str,ttr,tsr,sshf,slhf,e,ro,sro,ssro}', gik.step_list('0-50'), 'tp', 'sfc'),
  ('ecmwf_hres_0p25', 'ECMWF IFS HRES open data (oper fc), deterministic: 00/12z 0-144 h every 3 h then every 6 h to 240 h; 06/18z 0-90 h every 3 h (stream scda until 2026-05-12, then oper). 0.25 degree from 2024-02-01 (under ifs/ from 2024-02-28 06z); before, 0p4-beta from 2022-01-25.',
   'ecmwf_index', '{0,6,12,18}', gik.step_list('0-144/3,150-240/6'), NULL,
   '{tp,cp,lsp,sf,ssrd,strd,ssr,str,ttr,tsr,sshf,slhf,e,ro,sro,ssro}', NULL, 'tp', 'sfc'),
  ('aifs_single', 'ECMWF AIFS Single (machine-learned, deterministic) open data, 0.25 degree: 00/06/12/18z, 0-360 h every 6 h. Under aifs-single/ from 2025-02-25 06z (experimental/ from 2025-02-09 12z), aifs/ before.',
   'ecmwf_index', '{0,6,12,18}', gik.step_list('0-360/6'), NULL, '{tp,cp,sf,ssrd,strd}', NULL, 'tp', 'sfc'),
  ('aifs_ens', 'ECMWF AIFS ENS (machine-learned ensemble) open data, 0.25 degree: 50 perturbed members (enfo-pf) and the control (enfo-cf); 00/06/12/18z, 0-360 h every 6 h. Operational from 2025-07-01.',
   'ecmwf_index', '{0,6,12,18}', gik.step_list('0-360/6'), NULL, '{tp,cp,sf,ssrd,strd}', gik.step_list('0-50'), 'tp', 'sfc');

-- Their file series: GRIB URL template (the index template follows from it), members with one file each
-- and their tokens, the members an index may hold, cycles and steps when not the dataset's, and the runs
-- [valid_from, valid_until) the layout applies to.
INSERT INTO gik.dataset_source (dataset_id, source, url_template, index_template, members, member_tokens, index_members, cycles, steps, valid_from, valid_until)
SELECT d.dataset_id, s.source, s.url_template, gik.default_index_template(d.index_format, s.url_template), s.members,
       s.member_tokens, s.index_members, s.cycles, gik.step_list(s.steps), s.valid_from, s.valid_until
FROM (VALUES
  ('gefs_0p25', 'members',
   's3://noaa-gefs-pds/gefs.{date}/{cycle}/atmos/pgrb2sp25/{member}.t{cycle}z.pgrb2s.0p25.f{step3}',
   gik.step_list('0-30'), gik.gefs_member_tokens(gik.step_list('0-30')), NULL::int[], NULL::smallint[], NULL::text,
   '-infinity'::timestamptz, 'infinity'::timestamptz),
  ('gefs_0p50', 'members',
   's3://noaa-gefs-pds/gefs.{date}/{cycle}/atmos/pgrb2ap5/{member}.t{cycle}z.pgrb2a.0p50.f{step3}',
   gik.step_list('0-30') || '{-1,-2}', gik.gefs_member_tokens(gik.step_list('0-30') || '{-1,-2}'), NULL, '{6,12,18}', '0-240/3,246-384/6',
   '-infinity', 'infinity'),
  ('gefs_0p50', 'members-00z',
   's3://noaa-gefs-pds/gefs.{date}/{cycle}/atmos/pgrb2ap5/{member}.t{cycle}z.pgrb2a.0p50.f{step3}',
   gik.step_list('0-30') || '{-1,-2}', gik.gefs_member_tokens(gik.step_list('0-30') || '{-1,-2}'), NULL, '{0}', '0-240/3,246-840/6',
   '-infinity', 'infinity'),
  ('gefs_0p50_b', 'members',
   's3://noaa-gefs-pds/gefs.{date}/{cycle}/atmos/pgrb2bp5/{member}.t{cycle}z.pgrb2b.0p50.f{step3}',
   gik.step_list('0-30'), gik.gefs_member_tokens(gik.step_list('0-30')), NULL, '{6,12,18}', '0-240/3,246-384/6',
   '-infinity', 'infinity'),
  ('gefs_0p50_b', 'members-00z',
   's3://noaa-gefs-pds/gefs.{date}/{cycle}/atmos/pgrb2bp5/{member}.t{cycle}z.pgrb2b.0p50.f{step3}',
   gik.step_list('0-30'), gik.gefs_member_tokens(gik.step_list('0-30')), NULL, '{0}', '0-240/3,246-840/6',
   '-infinity', 'infinity'),
  ('gfs_0p25', 'pgrb2',
   's3://noaa-gfs-bdp-pds/gfs.{date}/{cycle}/atmos/gfs.t{cycle}z.pgrb2.0p25.f{step3}',
   NULL, NULL, NULL, NULL, NULL, '2021-03-23 00:00+00', 'infinity'),
  ('gfs_0p25', 'pgrb2-before-atmos',
   's3://noaa-gfs-bdp-pds/gfs.{date}/{cycle}/gfs.t{cycle}z.pgrb2.0p25.f{step3}',
   NULL, NULL, NULL, NULL, NULL, '-infinity', '2021-03-23 00:00+00'),
  ('gfs_0p25_b', 'pgrb2b',
   's3://noaa-gfs-bdp-pds/gfs.{date}/{cycle}/atmos/gfs.t{cycle}z.pgrb2b.0p25.f{step3}',
   NULL, NULL, NULL, NULL, NULL, '2021-03-23 00:00+00', 'infinity'),
  ('gfs_0p25_b', 'pgrb2b-before-atmos',
   's3://noaa-gfs-bdp-pds/gfs.{date}/{cycle}/gfs.t{cycle}z.pgrb2b.0p25.f{step3}',
   NULL, NULL, NULL, NULL, NULL, '-infinity', '2021-03-23 00:00+00'),
  ('hrrr', 'wrfsfc',
   's3://noaa-hrrr-bdp-pds/hrrr.{date}/conus/hrrr.t{cycle}z.wrfsfcf{step2}.grib2',
   NULL, NULL, NULL, NULL, '0-18', '-infinity', 'infinity'),
  ('hrrr', 'wrfsfc-to-f48',
   's3://noaa-hrrr-bdp-pds/hrrr.{date}/conus/hrrr.t{cycle}z.wrfsfcf{step2}.grib2',
   NULL, NULL, NULL, '{0,6,12,18}', '19-48', '2020-12-02 12:00+00', 'infinity'),
  ('hrrr_prs', 'wrfprs',
   's3://noaa-hrrr-bdp-pds/hrrr.{date}/conus/hrrr.t{cycle}z.wrfprsf{step2}.grib2',
   NULL, NULL, NULL, NULL, '0-18', '-infinity', 'infinity'),
  ('hrrr_prs', 'wrfprs-to-f48',
   's3://noaa-hrrr-bdp-pds/hrrr.{date}/conus/hrrr.t{cycle}z.wrfprsf{step2}.grib2',
   NULL, NULL, NULL, '{0,6,12,18}', '19-48', '2020-12-02 12:00+00', 'infinity'),
  ('hrrr_nat', 'wrfnat',
   's3://noaa-hrrr-bdp-pds/hrrr.{date}/conus/hrrr.t{cycle}z.wrfnatf{step2}.grib2',
   NULL, NULL, NULL, NULL, '0-18', '-infinity', 'infinity'),
  ('hrrr_nat', 'wrfnat-to-f48',
   's3://noaa-hrrr-bdp-pds/hrrr.{date}/conus/hrrr.t{cycle}z.wrfnatf{step2}.grib2',
   NULL, NULL, NULL, '{0,6,12,18}', '19-48', '2020-12-02 12:00+00', 'infinity'),
  ('hrrr_subh', 'wrfsubh',
   's3://noaa-hrrr-bdp-pds/hrrr.{date}/conus/hrrr.t{cycle}z.wrfsubhf{step2}.grib2',
   NULL, NULL, NULL, NULL, NULL, '-infinity', 'infinity'),
  -- ECMWF ENS: perturbed members (and the control before 50r1) in enfo-ef, by layout era
  ('ecmwf_ens_0p25', 'enfo-ef',
   's3://ecmwf-forecasts/{date}/{cycle}z/ifs/0p25/enfo/{date}{cycle}0000-{step}h-enfo-ef.grib2',
   NULL, NULL, NULL, '{0,12}', '0-144/3,150-360/6', '2024-02-28 06:00+00', 'infinity'),
  ('ecmwf_ens_0p25', 'enfo-ef-short',
   's3://ecmwf-forecasts/{date}/{cycle}z/ifs/0p25/enfo/{date}{cycle}0000-{step}h-enfo-ef.grib2',
   NULL, NULL, NULL, '{6,18}', '0-144/3', '2024-02-28 06:00+00', 'infinity'),
  ('ecmwf_ens_0p25', 'enfo-ef-before-ifs',
   's3://ecmwf-forecasts/{date}/{cycle}z/0p25/enfo/{date}{cycle}0000-{step}h-enfo-ef.grib2',
   NULL, NULL, NULL, '{0,12}', '0-144/3,150-360/6', '2024-02-01 00:00+00', '2024-02-28 06:00+00'),
  ('ecmwf_ens_0p25', 'enfo-ef-0p4-beta',
   's3://ecmwf-forecasts/{date}/{cycle}z/0p4-beta/enfo/{date}{cycle}0000-{step}h-enfo-ef.grib2',
   NULL, NULL, NULL, '{0,12}', '0-144/3,150-360/6', '-infinity', '2024-02-01 00:00+00'),
  -- from 50r1 the control is the oper-fc control forecast
  ('ecmwf_ens_0p25', 'oper-fc-control',
   's3://ecmwf-forecasts/{date}/{cycle}z/ifs/0p25/oper/{date}{cycle}0000-{step}h-oper-fc.grib2',
   NULL, NULL, '{0}', '{0,12}', '0-144/3,150-360/6', '2026-05-12 06:00+00', 'infinity'),
  ('ecmwf_ens_0p25', 'oper-fc-control-short',
   's3://ecmwf-forecasts/{date}/{cycle}z/ifs/0p25/oper/{date}{cycle}0000-{step}h-oper-fc.grib2',
   NULL, NULL, '{0}', '{6,18}', '0-144/3', '2026-05-12 06:00+00', 'infinity'),
  -- ECMWF HRES: oper at 00/12z, scda (then oper) at 06/18z
  ('ecmwf_hres_0p25', 'oper',
   's3://ecmwf-forecasts/{date}/{cycle}z/ifs/0p25/oper/{date}{cycle}0000-{step}h-oper-fc.grib2',
   NULL, NULL, NULL, '{0,12}', NULL, '2024-02-28 06:00+00', 'infinity'),
  ('ecmwf_hres_0p25', 'oper-before-ifs',
   's3://ecmwf-forecasts/{date}/{cycle}z/0p25/oper/{date}{cycle}0000-{step}h-oper-fc.grib2',
   NULL, NULL, NULL, '{0,12}', NULL, '2024-02-01 00:00+00', '2024-02-28 06:00+00'),
  ('ecmwf_hres_0p25', 'oper-0p4-beta',
   's3://ecmwf-forecasts/{date}/{cycle}z/0p4-beta/oper/{date}{cycle}0000-{step}h-oper-fc.grib2',
   NULL, NULL, NULL, '{0,12}', NULL, '-infinity', '2024-02-01 00:00+00'),
  ('ecmwf_hres_0p25', 'oper-short',
   's3://ecmwf-forecasts/{date}/{cycle}z/ifs/0p25/oper/{date}{cycle}0000-{step}h-oper-fc.grib2',
   NULL, NULL, NULL, '{6,18}', '0-90/3', '2026-05-12 06:00+00', 'infinity'),
  ('ecmwf_hres_0p25', 'scda',
   's3://ecmwf-forecasts/{date}/{cycle}z/ifs/0p25/scda/{date}{cycle}0000-{step}h-scda-fc.grib2',
   NULL, NULL, NULL, '{6,18}', '0-90/3', '2024-02-28 06:00+00', '2026-05-12 06:00+00'),
  ('ecmwf_hres_0p25', 'scda-before-ifs',
   's3://ecmwf-forecasts/{date}/{cycle}z/0p25/scda/{date}{cycle}0000-{step}h-scda-fc.grib2',
   NULL, NULL, NULL, '{6,18}', '0-90/3', '2024-02-01 00:00+00', '2024-02-28 06:00+00'),
  ('ecmwf_hres_0p25', 'scda-0p4-beta',
   's3://ecmwf-forecasts/{date}/{cycle}z/0p4-beta/scda/{date}{cycle}0000-{step}h-scda-fc.grib2',
   NULL, NULL, NULL, '{6,18}', '0-90/3', '-infinity', '2024-02-01 00:00+00'),
  -- AIFS
  ('aifs_single', 'oper',
   's3://ecmwf-forecasts/{date}/{cycle}z/aifs-single/0p25/oper/{date}{cycle}0000-{step}h-oper-fc.grib2',
   NULL, NULL, NULL, NULL, NULL, '2025-02-25 06:00+00', 'infinity'),
  ('aifs_single', 'oper-experimental',
   's3://ecmwf-forecasts/{date}/{cycle}z/aifs-single/0p25/experimental/oper/{date}{cycle}0000-{step}h-oper-fc.grib2',
   NULL, NULL, NULL, NULL, NULL, '2025-02-09 12:00+00', '2025-02-25 06:00+00'),
  ('aifs_single', 'oper-aifs',
   's3://ecmwf-forecasts/{date}/{cycle}z/aifs/0p25/oper/{date}{cycle}0000-{step}h-oper-fc.grib2',
   NULL, NULL, NULL, NULL, NULL, '-infinity', '2025-02-09 12:00+00'),
  ('aifs_ens', 'enfo-pf',
   's3://ecmwf-forecasts/{date}/{cycle}z/aifs-ens/0p25/enfo/{date}{cycle}0000-{step}h-enfo-pf.grib2',
   NULL, NULL, gik.step_list('1-50'), NULL, NULL, '-infinity', 'infinity'),
  ('aifs_ens', 'enfo-cf',
   's3://ecmwf-forecasts/{date}/{cycle}z/aifs-ens/0p25/enfo/{date}{cycle}0000-{step}h-enfo-cf.grib2',
   NULL, NULL, '{0}', NULL, NULL, '-infinity', 'infinity')
) AS s(dataset, source, url_template, members, member_tokens, index_members, cycles, steps, valid_from, valid_until)
JOIN gik.dataset d ON d.name = s.dataset;

-- Public mirrors of the buckets above, in Herbie's order: AWS (the templates' own s3:// URLs), Google Cloud,
-- Azure, then the producer's own server (which keeps only recent runs).
INSERT INTO gik.mirror (prefix, name, priority, url_prefix, description) VALUES
  ('s3://noaa-gefs-pds/', 'aws', 1, 's3://noaa-gefs-pds/', 'NOAA Open Data Dissemination on AWS'),
  ('s3://noaa-gefs-pds/', 'google', 2, 'https://storage.googleapis.com/gfs-ensemble-forecast-system/', 'NOAA Open Data Dissemination on Google Cloud'),
  ('s3://noaa-gefs-pds/', 'azure', 3, 'https://noaagefs.blob.core.windows.net/gefs/', 'NOAA Open Data Dissemination on Azure'),
  ('s3://noaa-gefs-pds/', 'nomads', 4, 'https://nomads.ncep.noaa.gov/pub/data/nccf/com/gens/prod/', 'NCEP NOMADS (the last days only)'),
  ('s3://noaa-gfs-bdp-pds/', 'aws', 1, 's3://noaa-gfs-bdp-pds/', 'NOAA Open Data Dissemination on AWS'),
  ('s3://noaa-gfs-bdp-pds/', 'google', 2, 'https://storage.googleapis.com/global-forecast-system/', 'NOAA Open Data Dissemination on Google Cloud'),
  ('s3://noaa-gfs-bdp-pds/', 'azure', 3, 'https://noaagfs.blob.core.windows.net/gfs/', 'NOAA Open Data Dissemination on Azure'),
  ('s3://noaa-gfs-bdp-pds/', 'nomads', 4, 'https://nomads.ncep.noaa.gov/pub/data/nccf/com/gfs/prod/', 'NCEP NOMADS (the last days only)'),
  ('s3://noaa-hrrr-bdp-pds/', 'aws', 1, 's3://noaa-hrrr-bdp-pds/', 'NOAA Open Data Dissemination on AWS'),
  ('s3://noaa-hrrr-bdp-pds/', 'google', 2, 'https://storage.googleapis.com/high-resolution-rapid-refresh/', 'NOAA Open Data Dissemination on Google Cloud'),
  ('s3://noaa-hrrr-bdp-pds/', 'azure', 3, 'https://noaahrrr.blob.core.windows.net/hrrr/', 'NOAA Open Data Dissemination on Azure'),
  ('s3://noaa-hrrr-bdp-pds/', 'nomads', 4, 'https://nomads.ncep.noaa.gov/pub/data/nccf/com/hrrr/prod/', 'NCEP NOMADS (the last days only)'),
  ('s3://ecmwf-forecasts/', 'aws', 1, 's3://ecmwf-forecasts/', 'ECMWF open data on AWS'),
  ('s3://ecmwf-forecasts/', 'google', 2, 'https://storage.googleapis.com/ecmwf-open-data/', 'ECMWF open data on Google Cloud'),
  ('s3://ecmwf-forecasts/', 'azure', 3, 'https://ai4edataeuwest.blob.core.windows.net/ecmwf/', 'ECMWF open data on Azure'),
  ('s3://ecmwf-forecasts/', 'ecmwf', 4, 'https://data.ecmwf.int/forecasts/', 'ECMWF''s own data portal (the last days only)');

-- grant: ingest
-- Where files can be fetched: each URL's mirrors in the order tried (gik.mirrors, else priority), or the URL.
CREATE FUNCTION gik.mirror_routes(urls text[])
RETURNS TABLE (ord int, rank int, mirror text, url text)
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    wanted  text[] := array_remove(string_to_array(replace(current_setting('gik.mirrors'), ' ', ''), ','), '');
    unknown text;
BEGIN
    SELECT string_agg(w, ', ') INTO unknown FROM unnest(wanted) w WHERE NOT EXISTS (SELECT FROM gik.mirror m WHERE m.name = w);
    IF unknown IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('gik.mirrors names no mirror called %s', unknown),
            HINT = 'The mirrors are listed in gik.mirror.';
    END IF;
    RETURN QUERY
    WITH m AS (  -- the mirrors wanted, and whether the URL policy allows everything under each
        SELECT x.*, coalesce(array_position(wanted, x.name), 0) AS pos, gik.url_allowed(x.url_prefix) AS all_allowed
        FROM gik.mirror x WHERE cardinality(wanted) = 0 OR x.name = ANY (wanted)),
    routes AS (
        SELECT u.o::int AS ord, m.pos, m.priority, m.name, m.url_prefix || substr(u.u, length(m.prefix) + 1) AS url
        FROM unnest(urls) WITH ORDINALITY AS u(u, o)
        JOIN m ON left(u.u, length(m.prefix)) = m.prefix
        WHERE m.all_allowed OR gik.url_allowed(m.url_prefix || substr(u.u, length(m.prefix) + 1)))
    SELECT r.ord, (row_number() OVER (PARTITION BY r.ord ORDER BY r.pos, r.priority))::int, r.name, r.url FROM routes r
    UNION ALL
    -- no mirror of the URL's prefix is wanted and allowed: the URL as it is (its fetch applies the policy)
    SELECT u.o::int, 1, NULL, u.u FROM unnest(urls) WITH ORDINALITY AS u(u, o)
    WHERE NOT EXISTS (SELECT FROM routes r WHERE r.ord = u.o)
    ORDER BY 1, 2;
END $$;
COMMENT ON FUNCTION gik.mirror_routes(text[]) IS
'For each URL (ord: its position), the URLs it can be fetched from in the order ingestion tries them: for a URL under a prefix of gik.mirror, that prefix''s mirrors in the order gik.mirrors names them (only those), else by priority, leaving out those gik.allowed_url_prefixes refuses; otherwise, or when none is left, the URL itself.';

-- grant: ingest
-- The routes of one URL.
CREATE FUNCTION gik.mirror_urls(file_url text)
RETURNS TABLE (rank int, mirror text, url text)
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT r.rank, r.mirror, r.url FROM gik.mirror_routes(ARRAY[file_url]) r ORDER BY r.rank;
END;
COMMENT ON FUNCTION gik.mirror_urls(text) IS
'The URLs one file can be fetched from, in the order ingestion tries them (see gik.mirror_routes).';

-- grant: ingest
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

-- grant: ingest
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
