-- Analytics of stored runs: exact accumulation windows from the stored window metadata, and exceedance products.

-- grant: reader
CREATE FUNCTION gik.grid_band(grids real[], band int) RETURNS real[]
AS 'MODULE_PATHNAME', 'gik_grid_band'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION gik.grid_band(real[], int) IS
'Band n (1-based) of a real[bands][nj][ni] stack, such as one threshold of gik.ens_exceedance, as a real[nj][ni] grid.';

-- grant: reader
-- Exact cover of [a, b] by accumulation windows: a shortest chain of windows whose signed sum telescopes to [a, b].
CREATE FUNCTION gik.cover_window(starts int[], ends int[], a int, b int)
RETURNS TABLE (idx int, weight int)
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n        int := coalesce(cardinality(starts), 0);
    nodes    int[];
    via_node int[];
    via_edge int[];
    via_sign int[];
    frontier int[];
    next     int[];
    node     int;
    k        int;
BEGIN
    IF a IS NULL OR b IS NULL OR a >= b THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('invalid accumulation window [%s, %s]', a, b),
            DETAIL = 'The window must end after it starts.';
    END IF;
    -- Pass 1 sums non-overlapping windows only; pass 2 also subtracts (cumulative fields such as ECMWF tp).
    FOR pass IN 1..2 LOOP
        nodes := ARRAY[a]; via_node := ARRAY[NULL::int]; via_edge := ARRAY[NULL::int]; via_sign := ARRAY[NULL::int];
        frontier := ARRAY[a];
        WHILE cardinality(frontier) > 0 AND NOT b = ANY (nodes) LOOP
            next := '{}';
            FOREACH node IN ARRAY frontier LOOP
                FOR i IN 1..n LOOP
                    CONTINUE WHEN starts[i] >= ends[i];
                    IF starts[i] = node AND NOT ends[i] = ANY (nodes) THEN
                        nodes := nodes || ends[i]; via_node := via_node || node;
                        via_edge := via_edge || i; via_sign := via_sign || 1; next := next || ends[i];
                    ELSIF pass = 2 AND ends[i] = node AND NOT starts[i] = ANY (nodes) THEN
                        nodes := nodes || starts[i]; via_node := via_node || node;
                        via_edge := via_edge || i; via_sign := via_sign || -1; next := next || starts[i];
                    END IF;
                END LOOP;
            END LOOP;
            frontier := next;
        END LOOP;
        IF b = ANY (nodes) THEN
            k := array_position(nodes, b);
            WHILE via_node[k] IS NOT NULL LOOP
                idx := via_edge[k]; weight := via_sign[k];
                RETURN NEXT;
                k := array_position(nodes, via_node[k]);
            END LOOP;
            RETURN;
        END IF;
    END LOOP;
END $$;
COMMENT ON FUNCTION gik.cover_window(int[], int[], int, int) IS
'Which windows [starts[i], ends[i]] make up exactly [a, b], with weights +1/-1: first a chain of consecutive non-overlapping windows (fewest messages), else a chain that also subtracts windows sharing an end (tp[b] - tp[a] for fields accumulated from the start). No rows when no exact combination exists.';

-- grant: reader
-- Millimetres per unit of a precipitation field.
CREATE FUNCTION gik.mm_per_unit(units text) RETURNS float8
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    RETURN CASE units WHEN 'm' THEN 1000 WHEN 'kg m**-2' THEN 1 WHEN 'kg m-2' THEN 1 WHEN 'mm' THEN 1 END;
END $$;
COMMENT ON FUNCTION gik.mm_per_unit(text) IS 'Millimetres per unit of precipitation (m gives 1000; kg m**-2 and mm give 1); NULL when unknown.';

-- grant: reader
-- The messages and signs that give each member's accumulation over [window_start, window_end] hours.
CREATE FUNCTION gik.accumulation_refs(
    dataset text, init_time timestamptz, window_start float8, window_end float8,
    members int[] DEFAULT NULL, variable text DEFAULT NULL, level text DEFAULT NULL, missing_ok bool DEFAULT false)
RETURNS TABLE (member int, ref gik.ref, weight float8, step_start float8, step_end float8, mm_per_unit float8)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    d       gik.dataset;
    m       int;
    a       int := round(window_start * 60);
    b       int := round(window_end * 60);
    w       record;
    found_n int;
BEGIN
    d := gik.dataset_named(accumulation_refs.dataset);
    IF window_start IS NULL OR window_end IS NULL OR window_end <= window_start THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('invalid accumulation window [%s, %s] h', window_start, window_end),
            DETAIL = 'The window must end after it starts.';
    END IF;
    variable := coalesce(variable, d.precip_variable);
    level := coalesce(level, d.precip_level);
    IF variable IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('dataset "%s" names no precipitation field', d.name),
            HINT = 'Pass variable (and level), or set precip_variable in gik.define_dataset().';
    END IF;
    -- Members: as asked; else the dataset's (missing ones reported) with missing_ok, or the run's.
    FOR m IN
        SELECT x FROM unnest(coalesce(accumulation_refs.members,
                                      CASE WHEN missing_ok THEN d.members END,
                                      -- the ensemble's members, not the mean (-1) or spread (-2); NULL: deterministic
                                      (SELECT array_agg(DISTINCT c.member) FROM gik.chunk_ref c
                                       WHERE c.dataset_id = d.dataset_id AND c.init_time = accumulation_refs.init_time
                                         AND (c.member >= 0 OR c.member IS NULL)))) x
        ORDER BY x
    LOOP
        found_n := 0;
        FOR w IN
            WITH win AS (
                SELECT DISTINCT ON (c.window_id) c.url, c.byte_offset, c.byte_length, w.start_min, w.end_min, f.units
                FROM gik.chunk_ref c
                JOIN gik.time_window w USING (window_id)
                JOIN gik.field f USING (field_id)
                WHERE c.dataset_id = d.dataset_id AND c.init_time = accumulation_refs.init_time
                  AND c.member IS NOT DISTINCT FROM m AND c.variable = accumulation_refs.variable
                  AND (accumulation_refs.level IS NULL OR c.level = accumulation_refs.level) AND c.stat = 'acc'
                ORDER BY c.window_id, c.byte_offset),
            arr AS (
                SELECT array_agg(start_min ORDER BY start_min, end_min) AS s, array_agg(end_min ORDER BY start_min, end_min) AS e,
                       array_agg(url ORDER BY start_min, end_min) AS u, array_agg(byte_offset ORDER BY start_min, end_min) AS o,
                       array_agg(byte_length ORDER BY start_min, end_min) AS l, array_agg(units ORDER BY start_min, end_min) AS un
                FROM win)
            SELECT arr.u[cv.idx] AS url, arr.o[cv.idx] AS byte_offset, arr.l[cv.idx] AS byte_length,
                   arr.s[cv.idx] AS start_min, arr.e[cv.idx] AS end_min, arr.un[cv.idx] AS units, cv.weight
            FROM arr, gik.cover_window(arr.s, arr.e, a, b) cv
        LOOP
            found_n := found_n + 1;
            member := m;
            ref := ROW(w.url, w.byte_offset, w.byte_length)::gik.ref;
            weight := w.weight;
            step_start := w.start_min / 60.0;
            step_end := w.end_min / 60.0;
            mm_per_unit := gik.mm_per_unit(w.units);
            IF mm_per_unit IS NULL THEN
                RAISE EXCEPTION USING ERRCODE = 'feature_not_supported',
                    MESSAGE = format('cannot convert %s of dataset "%s" from "%s" to mm', variable, d.name, coalesce(w.units, 'unknown units')),
                    HINT = 'Learn the field''s template first (gik.ingest_run with learn_templates).';
            END IF;
            RETURN NEXT;
        END LOOP;
        IF found_n = 0 THEN
            IF NOT missing_ok THEN
                RAISE EXCEPTION USING ERRCODE = 'no_data_found',
                    MESSAGE = format('the %s windows of member %s of dataset "%s" at %s cannot cover [%s, %s] h exactly',
                                     variable, m, d.name, accumulation_refs.init_time, window_start, window_end),
                    DETAIL = coalesce('Available windows (h): ' || (
                        SELECT string_agg(format('%s-%s', trim_scale(w2.start_min / 60.0), trim_scale(w2.end_min / 60.0)), ', ' ORDER BY w2.start_min, w2.end_min)
                        FROM (SELECT DISTINCT tw.start_min, tw.end_min FROM gik.chunk_ref c
                              JOIN gik.time_window tw USING (window_id)
                              WHERE c.dataset_id = d.dataset_id AND c.init_time = accumulation_refs.init_time
                                AND c.member IS NOT DISTINCT FROM m AND c.variable = accumulation_refs.variable AND c.stat = 'acc') w2) || '.',
                        'No window of this field was ingested for this member.'),
                    HINT = 'Check that the run is complete (gik.run) and that the window matches the dataset''s accumulation periods.';
            END IF;
            member := m; ref := NULL; weight := NULL; step_start := NULL; step_end := NULL; mm_per_unit := NULL;
            RETURN NEXT;
        END IF;
    END LOOP;
END $$;
COMMENT ON FUNCTION gik.accumulation_refs(text, timestamptz, float8, float8, int[], text, text, bool) IS
'For each member (as asked; by default the run''s ensemble members, not its mean or spread, or the dataset''s with missing_ok), the messages whose signed sum is exactly the accumulation over [window_start, window_end] hours, chosen from the windows stored at ingestion (GEFS: consecutive 3/6-hour buckets, never 0-3 plus 0-6; ECMWF: tp[b] - tp[a]). A member that cannot be covered exactly raises an error, or with missing_ok gets one row with a NULL ref.';

-- grant: reader
-- Each member's precipitation over [window_start, window_end] hours, in mm, decoded in one batch.
CREATE FUNCTION gik.accumulations(
    dataset text, init_time timestamptz, window_start float8, window_end float8,
    region gik.bbox DEFAULT NULL, lon text DEFAULT '-180..180', members int[] DEFAULT NULL,
    variable text DEFAULT NULL, level text DEFAULT NULL, missing_ok bool DEFAULT false)
RETURNS TABLE (member int, grid gik.grid_desc, total real[])
LANGUAGE sql VOLATILE
BEGIN ATOMIC
    WITH plan AS (
        SELECT p.* FROM gik.accumulation_refs(accumulations.dataset, accumulations.init_time, accumulations.window_start,
                                              accumulations.window_end, accumulations.members, accumulations.variable,
                                              accumulations.level, accumulations.missing_ok) p),
    arr AS (
        SELECT array_agg(p.ref) AS refs, array_agg(p.member) AS members, array_agg(p.weight) AS weights,
               array_agg(p.mm_per_unit) AS scales
        FROM plan p WHERE p.ref IS NOT NULL),
    -- decode_batch in the select list streams its rows; in FROM they would be collected first
    decoded AS (
        SELECT arr.members, arr.weights, arr.scales,
               gik.decode_batch(arr.refs, accumulations.lon, accumulations.region) AS d
        FROM arr OFFSET 0)
    SELECT x.members[(x.d).ord], (array_agg((x.d).grid))[1],
           gik.grid_mul(CASE WHEN min(x.weights[(x.d).ord]) < 0
                             THEN gik.grid_clip(gik.grid_sum((x.d).vals, x.weights[(x.d).ord]), 0)
                             ELSE gik.grid_sum((x.d).vals, x.weights[(x.d).ord]) END,
                        max(x.scales[(x.d).ord]))
    FROM decoded x
    GROUP BY x.members[(x.d).ord]
    UNION ALL
    SELECT p.member, NULL::gik.grid_desc, NULL::real[] FROM plan p WHERE p.ref IS NULL
    ORDER BY 1;
END;
COMMENT ON FUNCTION gik.accumulations(text, timestamptz, float8, float8, gik.bbox, text, int[], text, text, bool) IS
'Each member''s total precipitation over [window_start, window_end] hours in mm, for a region (or the globe) in a longitude convention: the exact messages from gik.accumulation_refs, all decoded in one gik.decode_batch call, summed with their signs; differences (cumulative fields) are clipped at 0. With missing_ok, members that cannot be covered come back with a NULL total.';

-- grant: reader
-- One member's precipitation over a window, in mm.
CREATE FUNCTION gik.accumulate(
    dataset text, init_time timestamptz, window_start float8, window_end float8, member int,
    region gik.bbox DEFAULT NULL, lon text DEFAULT '-180..180', variable text DEFAULT NULL, level text DEFAULT NULL)
RETURNS real[]
LANGUAGE sql VOLATILE
RETURN (SELECT a.total FROM gik.accumulations(dataset, init_time, window_start, window_end, region, lon,
                                              ARRAY[member], variable, level) a);
COMMENT ON FUNCTION gik.accumulate(text, timestamptz, float8, float8, int, gik.bbox, text, text, text) IS
'One member''s total precipitation over [window_start, window_end] hours, in mm (see gik.accumulations); an error when the stored windows cannot cover it exactly.';

-- grant: reader
-- Probability of exceedance per threshold for one or several ensembles (a grand ensemble on a common grid).
CREATE FUNCTION gik.exceedance(
    datasets text[], init_time timestamptz, window_start float8, window_end float8, thresholds real[],
    region gik.bbox DEFAULT NULL, lon text DEFAULT '-180..180', target gik.grid_desc DEFAULT NULL,
    method text DEFAULT NULL)
RETURNS TABLE (threshold real, probability real[], grid gik.grid_desc, members_used int, members_expected int,
               members_missing text[], regrid_method text)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    probs    real[];
    g        gik.grid_desc;
    n_used   int;
    n_exp    int;
    missing  text[];
    n_grids  int;
    how      text;
BEGIN
    IF thresholds IS NULL OR cardinality(thresholds) = 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = 'no thresholds given';
    END IF;
    IF to_regclass('pg_temp.gik_totals') IS NULL THEN
        CREATE TEMP TABLE gik_totals (dataset text, member int, grid gik.grid_desc, total real[]) ON COMMIT DROP;
        -- member totals are read once or twice: compressing them cost more than the rest of the product
        ALTER TABLE pg_temp.gik_totals ALTER COLUMN total SET STORAGE EXTERNAL;
    ELSE
        TRUNCATE pg_temp.gik_totals;
    END IF;
    INSERT INTO gik_totals
    SELECT ds, a.member, a.grid, a.total
    FROM unnest(datasets) ds,
         LATERAL gik.accumulations(ds, init_time, window_start, window_end, region, lon, missing_ok => true) a;

    -- every member on the target grid (precipitation totals: conservative unless asked otherwise)
    IF NOT target IS NULL THEN	-- (a row IS NOT NULL only when every field is)
        how := lower(coalesce(method, 'conservative'));
        target := gik.output_grid(target);	-- north-up, as decodes lay grids out
        UPDATE gik_totals t SET total = gik.regrid(t.total, t.grid, target, how), grid = target
        WHERE t.total IS NOT NULL AND t.grid IS DISTINCT FROM target;
    ELSIF method IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = 'a regridding method needs a target grid',
            HINT = 'Pass target => a gik.grid_desc, e.g. gik.field_grid() of one dataset''s field or gik.output_grid() of it with a region.';
    END IF;
    SELECT count(DISTINCT t.grid) INTO n_grids FROM gik_totals t WHERE t.total IS NOT NULL;
    IF n_grids > 1 THEN
        RAISE EXCEPTION USING ERRCODE = 'feature_not_supported',
            MESSAGE = 'the ensembles are on different grids',
            DETAIL = 'Grids: ' || (SELECT string_agg(DISTINCT t.dataset || ' ' || t.grid::text, '; ') FROM gik_totals t WHERE t.total IS NOT NULL) || '.',
            HINT = 'Choose one longitude convention (lon => ''-180..180''), or regrid every member to one grid with target => (and method => ''conservative'' or ''bilinear'').';
    END IF;
    SELECT gik.ens_exceedance(t.total, thresholds), count(t.total) INTO probs, n_used FROM gik_totals t;
    SELECT (t.grid).* INTO g FROM gik_totals t WHERE t.total IS NOT NULL LIMIT 1;
    SELECT sum(coalesce(cardinality(d.members), 0)) INTO n_exp FROM gik.dataset d WHERE d.name = ANY (datasets);
    SELECT array_agg(x ORDER BY x) INTO missing FROM (
        SELECT d.name || ':' || m AS x FROM gik.dataset d CROSS JOIN LATERAL unnest(d.members) m
        WHERE d.name = ANY (datasets)
          AND NOT EXISTS (SELECT FROM gik_totals t WHERE t.dataset = d.name AND t.member = m AND t.total IS NOT NULL)) s;
    IF n_used = 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'no_data_found',
            MESSAGE = format('no member of %s at %s covers [%s, %s] h', array_to_string(datasets, ', '), init_time, window_start, window_end),
            HINT = 'Check that the runs are ingested (gik.run).';
    END IF;
    IF n_used < current_setting('gik.min_members')::int THEN
        RAISE EXCEPTION USING ERRCODE = 'no_data_found',
            MESSAGE = format('only %s of %s members of %s at %s cover [%s, %s] h, fewer than gik.min_members (%s)', n_used, n_exp,
                             array_to_string(datasets, ', '), init_time, window_start, window_end, current_setting('gik.min_members')),
            DETAIL = 'Missing: ' || array_to_string(missing[1:10], ', ')
                     || CASE WHEN cardinality(missing) > 10 THEN format(' and %s more.', cardinality(missing) - 10) ELSE '.' END,
            HINT = 'Lower gik.min_members to go on with fewer members (gik.run_members shows what each step holds).';
    END IF;
    FOR i IN 1..cardinality(thresholds) LOOP
        threshold := thresholds[i];
        probability := gik.grid_band(probs, i);
        grid := g;
        members_used := n_used;
        members_expected := n_exp;
        members_missing := coalesce(missing, '{}');
        regrid_method := how;
        RETURN NEXT;
    END LOOP;
END $$;
COMMENT ON FUNCTION gik.exceedance(text[], timestamptz, float8, float8, real[], gik.bbox, text, gik.grid_desc, text) IS
'The one-call product: per threshold, the fraction of members whose precipitation over [window_start, window_end] hours is >= the threshold (mm), as a grid with its description, for one dataset or a grand ensemble of several on a common grid. Members that cannot be used (missing files or windows) are listed in members_missing and not counted in members_used; fewer than gik.min_members is an error. With target, every member not already on that grid is regridded to it first (gik.regrid(), method ''conservative'' by default, or ''bilinear''), so ensembles on different grids (GEFS 0.5 with ECMWF 0.25, HRRR with GEFS) combine; regrid_method says which was used (NULL: none).';

-- grant: reader
CREATE FUNCTION gik.exceedance(
    dataset text, init_time timestamptz, window_start float8, window_end float8, thresholds real[],
    region gik.bbox DEFAULT NULL, lon text DEFAULT '-180..180', target gik.grid_desc DEFAULT NULL,
    method text DEFAULT NULL)
RETURNS TABLE (threshold real, probability real[], grid gik.grid_desc, members_used int, members_expected int,
               members_missing text[], regrid_method text)
LANGUAGE sql VOLATILE
BEGIN ATOMIC
    SELECT * FROM gik.exceedance(CASE WHEN left(dataset, 1) = '{' THEN dataset::text[] ELSE ARRAY[dataset] END,
                                 init_time, window_start, window_end, thresholds, region, lon, target, method);
END;
COMMENT ON FUNCTION gik.exceedance(text, timestamptz, float8, float8, real[], gik.bbox, text, gik.grid_desc, text) IS
'gik.exceedance() for one dataset (a literal such as ''{gefs_0p25,ecmwf_ens_0p25}'' is read as a list).';
