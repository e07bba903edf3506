-- Ensemble aggregates and grid arithmetic over real[] grids.
SET extra_float_digits = 0;

-- Members of a 2x3 grid: NaN cells, a NULL element, a NULL grid, ties at the thresholds.
CREATE TABLE ens_m (member int, g real[]);
INSERT INTO ens_m VALUES
  (0, '{{1, 2, NaN}, {10, 0, NaN}}'),
  (1, '{{2, 2, NaN}, {20, NULL, NaN}}'),
  (2, '{{3, 5, 7}, {30, 0, NaN}}'),
  (3, NULL),
  (4, '{{4, 1, NaN}, {40, 0, NaN}}');

-- Probability of >= threshold: a value equal to the threshold counts; NaN/NULL cells leave the denominator.
SELECT gik.ens_exceedance(g, '{2, 5, 25}') AS p FROM ens_m;
SELECT array_dims(gik.ens_exceedance(g, '{2, 5, 25}')) FROM ens_m;
SELECT gik.ens_count(g) AS n, count(*) AS rows, count(g) AS grids FROM ens_m;

-- 1-D grids give [nthr][ncells]; an empty group gives NULL.
SELECT gik.ens_exceedance(g, '{0.5}') AS p, array_dims(gik.ens_exceedance(g, '{0.5}'))
FROM (VALUES ('{0, 1, NaN}'::real[]), ('{1, 1, NaN}')) v(g);
SELECT gik.ens_exceedance(g, '{1}') IS NULL AS empty, gik.ens_mean(g) IS NULL AS empty_mean
FROM ens_m WHERE false;
SELECT gik.ens_exceedance(g, '{1}') IS NULL AS all_null FROM (VALUES (NULL::real[]), (NULL)) v(g);

-- Lower bounds of the first grid are kept; thresholds may be -Infinity/Infinity.
SELECT array_dims(gik.ens_mean(g)) AS dims_mean, array_dims(gik.ens_exceedance(g, '{-Infinity, Infinity}')) AS dims_p,
       gik.ens_exceedance(g, '{-Infinity, Infinity}') AS p
FROM (VALUES ('[0:0][5:6]={{1, NaN}}'::real[]), ('[0:0][5:6]={{2, 3}}')) v(g);

-- Mean, min, max, standard deviations (n - 1 and n), percentiles.
SELECT gik.ens_mean(g) AS mean, gik.ens_min(g) AS min, gik.ens_max(g) AS max FROM ens_m;
SELECT gik.ens_stddev(g) AS sd, gik.ens_stddev_pop(g) AS sd_pop FROM ens_m;
SELECT gik.ens_percentile(g, '{0, 0.1, 0.5, 0.9, 1}') AS pct FROM ens_m;
SELECT array_dims(gik.ens_percentile(g, '{0.5, 0.25}')) AS dims, gik.ens_percentile(g, '{0.5, 0.25}') AS pct
FROM (VALUES ('{1, 3}'::real[]), ('{2, 1}'), ('{3, 2}'), ('{4, 4}')) v(g);

-- Per group, in a GROUP BY (sorted and hashed).
SELECT k, gik.ens_mean(g), gik.ens_exceedance(g, '{2}')
FROM (VALUES (1, '{1, 2}'::real[]), (2, '{5, 6}'), (1, '{3, 4}'), (2, '{7, NaN}')) v(k, g)
GROUP BY k ORDER BY k;
SET enable_hashagg = off;
SELECT k, gik.ens_max(g), gik.ens_percentile(g, '{0.5}')
FROM (VALUES (1, '{1, 2}'::real[]), (2, '{5, 6}'), (1, '{3, 4}'), (2, '{7, NaN}')) v(k, g)
GROUP BY k ORDER BY k;
RESET enable_hashagg;

-- Errors: shapes that differ, thresholds or fractions that change or are invalid, empty grids.
SELECT gik.ens_exceedance(g, '{1}') FROM (VALUES ('{{1, 2}}'::real[]), ('{1, 2}')) v(g);
SELECT gik.ens_mean(g) FROM (VALUES ('{{1, 2}, {3, 4}}'::real[]), ('{{1, 2, 3}, {3, 4, 5}}')) v(g);
SELECT gik.ens_exceedance(g, t) FROM (VALUES ('{1, 2}'::real[], '{1}'::real[]), ('{1, 2}', '{2}')) v(g, t);
SELECT gik.ens_exceedance(g, '{}') FROM (VALUES ('{1, 2}'::real[])) v(g);
SELECT gik.ens_exceedance(g, '{1, NULL}') FROM (VALUES ('{1, 2}'::real[])) v(g);
SELECT gik.ens_exceedance(g, '{NaN}') FROM (VALUES ('{1, 2}'::real[])) v(g);
SELECT gik.ens_exceedance(g, NULL) FROM (VALUES ('{1, 2}'::real[])) v(g);
SELECT gik.ens_percentile(g, '{1.5}') FROM (VALUES ('{1, 2}'::real[])) v(g);
SELECT gik.ens_percentile(g, f) FROM (VALUES ('{1, 2}'::real[], '{0.5}'::float8[]), ('{1, 2}', '{0.9}')) v(g, f);
SELECT gik.ens_max(g) FROM (VALUES ('{}'::real[])) v(g);

-- Element-wise arithmetic with a scalar: dimensions, lower bounds, NaN and NULL elements are kept.
SELECT '{{1, 2}, {NaN, NULL}}'::real[] OPERATOR(gik.+) 1 AS plus,
       '{{1, 2}, {NaN, NULL}}'::real[] OPERATOR(gik.-) 0.5 AS minus,
       '{{1, 2}, {NaN, NULL}}'::real[] OPERATOR(gik.*) 1000 AS times;
SET search_path = gik, public;
SELECT array_dims('[3:4]={1.5, 2}'::real[] + 1), '[3:4]={1.5, 2}'::real[] * 2 - 1 AS chained, grid_add('{}', 1) AS empty;
RESET search_path;
SELECT gik.grid_mul('{0.001, 0.0254}', 1000) AS mm, gik.grid_sub(NULL, 1) IS NULL AS null_grid;
SELECT gik.grid_clip('{-1, 0, 0.5, 3, NaN, NULL}', 0) AS lo_only,
       gik.grid_clip('{-1, 0, 0.5, 3, NaN, NULL}', 0, 1) AS lo_hi,
       gik.grid_clip('{-1, 0, 0.5, 3}', NULL, 1) AS hi_only,
       gik.grid_clip(NULL, 0) IS NULL AS null_grid;
SELECT gik.grid_clip('{1}', 2, 1);
SELECT gik.grid_clip('{1}', 'NaN', 1);

-- Weighted sums: tp[24] - tp[0] as grid_sum(tp, +1/-1); NaN propagates; NULL grids and weights skip the row.
SELECT gik.grid_sum(g, w) AS diff, gik.grid_sum(g) AS total
FROM (VALUES ('{{0.5, 1.5, NaN}}'::real[], -1::float8), ('{{2, 1.5, 3}}', 1), (NULL, 1), ('{{9, 9, 9}}', NULL)) v(g, w);
SELECT gik.grid_clip(gik.grid_sum(g, w), 0) OPERATOR(gik.*) 1000 AS mm
FROM (VALUES ('{0.010, 0.004}'::real[], 1::float8), ('{0.002, 0.005}', -1)) v(g, w);
SELECT gik.grid_sum(g, 'NaN') FROM (VALUES ('{1}'::real[])) v(g);

-- Parallel aggregation gives the serial results.
CREATE TABLE ens_par AS
SELECT i AS member,
       ARRAY(SELECT CASE WHEN (i * 7 + j) % 97 = 0 THEN 'NaN'::real
                         ELSE (((i * 37 + j * 11) % 64) / 8.0)::real END
             FROM generate_series(1, 60) j) AS g
FROM generate_series(1, 3000) i;
ANALYZE ens_par;
SET max_parallel_workers_per_gather = 0;
CREATE TABLE ens_serial AS
SELECT gik.ens_exceedance(g, '{1, 4, 7.5}') AS p, gik.ens_count(g) AS n, gik.ens_mean(g) AS mean,
       gik.ens_min(g) AS min, gik.ens_max(g) AS max, gik.ens_stddev(g) AS sd, gik.ens_stddev_pop(g) AS sd_pop,
       gik.ens_percentile(g, '{0.1, 0.5, 0.9}') AS pct, gik.grid_sum(g, 0.5) AS half_sum
FROM ens_par;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF)
SELECT gik.ens_exceedance(g, '{1, 4, 7.5}'), gik.ens_stddev(g), gik.ens_percentile(g, '{0.5}') FROM ens_par;
SELECT par.p = s.p AS exceedance, par.n = s.n AS count, par.mean = s.mean AS mean, par.min = s.min AS min,
       par.max = s.max AS max,
       (SELECT max(abs(a - b)) < 1e-5 FROM unnest(par.sd, s.sd) u(a, b)) AS stddev,
       (SELECT max(abs(a - b)) < 1e-5 FROM unnest(par.sd_pop, s.sd_pop) u(a, b)) AS stddev_pop,
       par.pct = s.pct AS percentile, par.half_sum = s.half_sum AS grid_sum
FROM (SELECT gik.ens_exceedance(g, '{1, 4, 7.5}') AS p, gik.ens_count(g) AS n, gik.ens_mean(g) AS mean,
             gik.ens_min(g) AS min, gik.ens_max(g) AS max, gik.ens_stddev(g) AS sd, gik.ens_stddev_pop(g) AS sd_pop,
             gik.ens_percentile(g, '{0.1, 0.5, 0.9}') AS pct, gik.grid_sum(g, 0.5) AS half_sum
      FROM ens_par) par, ens_serial s;
-- Thresholds that change between rows are caught in a parallel plan too.
SELECT gik.ens_exceedance(g, CASE WHEN member = 2999 THEN '{1, 4, 8}'::real[] ELSE '{1, 4, 7.5}' END) FROM ens_par;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
SELECT n[1:5] AS some_counts, round(sd[2]::numeric, 4) AS sd2 FROM ens_serial;

DROP TABLE ens_m, ens_par, ens_serial;
