-- Ensemble aggregates over real[] grids (C, kernels in src/core/ensemble.c): parallel-safe aggregates
-- for exceedance probability, member count, mean, min, max, standard deviation, percentiles and
-- weighted sums, and element-wise arithmetic of a grid with a scalar.
--
-- Common rules of the aggregates:
--   * A NULL grid is skipped: it is not a member. A NULL element of a grid counts as NaN (missing).
--   * NaN cells are skipped per cell (except in grid_sum, where NaN propagates).
--   * All grids of a group must have the same dimensions; the result keeps the first grid's
--     dimensions and lower bounds (exceedance and percentile results get a leading dimension).
--   * A group with no non-NULL grid gives NULL.

-- Shared support functions: one state type (internal) for every ensemble aggregate.

-- grant: reader
CREATE FUNCTION gik.ens_combinefn(internal, internal) RETURNS internal
AS 'MODULE_PATHNAME', 'gik_ens_combinefn'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION gik.ens_combinefn(internal, internal) IS
'Support function of the ensemble aggregates: merge two partial states (parallel aggregation).';

-- grant: reader
CREATE FUNCTION gik.ens_serialfn(internal) RETURNS bytea
AS 'MODULE_PATHNAME', 'gik_ens_serialfn'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION gik.ens_serialfn(internal) IS
'Support function of the ensemble aggregates: serialize a partial state for the parallel leader.';

-- grant: reader
CREATE FUNCTION gik.ens_deserialfn(bytea, internal) RETURNS internal
AS 'MODULE_PATHNAME', 'gik_ens_deserialfn'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION gik.ens_deserialfn(bytea, internal) IS
'Support function of the ensemble aggregates: rebuild a partial state sent by a parallel worker.';

-- Exceedance probability.

-- grant: reader
CREATE FUNCTION gik.ens_exceedance_transfn(internal, real[], real[]) RETURNS internal
AS 'MODULE_PATHNAME', 'gik_ens_exceedance_transfn'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION gik.ens_exceedance_transfn(internal, real[], real[]) IS
'Transition function of gik.ens_exceedance: count, per cell, valid members and members >= each threshold.';

-- grant: reader
CREATE FUNCTION gik.ens_exceedance_finalfn(internal) RETURNS real[]
AS 'MODULE_PATHNAME', 'gik_ens_exceedance_finalfn'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION gik.ens_exceedance_finalfn(internal) IS
'Final function of gik.ens_exceedance: probabilities [threshold][...grid].';

-- grant: reader
CREATE AGGREGATE gik.ens_exceedance(grid real[], thresholds real[]) (
    SFUNC = gik.ens_exceedance_transfn,
    STYPE = internal,
    FINALFUNC = gik.ens_exceedance_finalfn,
    COMBINEFUNC = gik.ens_combinefn,
    SERIALFUNC = gik.ens_serialfn,
    DESERIALFUNC = gik.ens_deserialfn,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE gik.ens_exceedance(real[], real[]) IS
'Exceedance probability per cell and threshold, for all thresholds in one pass: the fraction of members whose value is greater than or equal to (>=) the threshold. A member whose cell is NaN (or a NULL element) is left out of that cell''s denominator; a cell with no valid member gives NaN. NULL grids are skipped and are not members. The result is [threshold][...grid] (a 2-D grid gives [nthr][nj][ni], a 1-D one [nthr][ncells]). Thresholds: a non-empty real[] without NULL or NaN, the same in every row of a group.';

-- Count of valid members.

-- grant: reader
CREATE FUNCTION gik.ens_count_transfn(internal, real[]) RETURNS internal
AS 'MODULE_PATHNAME', 'gik_ens_count_transfn'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION gik.ens_count_transfn(internal, real[]) IS
'Transition function of gik.ens_count: count valid (non-NaN, non-NULL) members per cell.';

-- grant: reader
CREATE FUNCTION gik.ens_count_finalfn(internal) RETURNS int[]
AS 'MODULE_PATHNAME', 'gik_ens_count_finalfn'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION gik.ens_count_finalfn(internal) IS
'Final function of gik.ens_count: valid members per cell.';

-- grant: reader
CREATE AGGREGATE gik.ens_count(grid real[]) (
    SFUNC = gik.ens_count_transfn,
    STYPE = internal,
    FINALFUNC = gik.ens_count_finalfn,
    COMBINEFUNC = gik.ens_combinefn,
    SERIALFUNC = gik.ens_serialfn,
    DESERIALFUNC = gik.ens_deserialfn,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE gik.ens_count(real[]) IS
'Number of members with a valid (non-NaN, non-NULL) value, per cell, as int[] shaped like the grids. NULL grids are skipped; count(*) counts rows.';

-- Mean.

-- grant: reader
CREATE FUNCTION gik.ens_mean_transfn(internal, real[]) RETURNS internal
AS 'MODULE_PATHNAME', 'gik_ens_mean_transfn'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION gik.ens_mean_transfn(internal, real[]) IS
'Transition function of gik.ens_mean: double sum and count of valid values per cell.';

-- grant: reader
CREATE FUNCTION gik.ens_mean_finalfn(internal) RETURNS real[]
AS 'MODULE_PATHNAME', 'gik_ens_mean_finalfn'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION gik.ens_mean_finalfn(internal) IS
'Final function of gik.ens_mean.';

-- grant: reader
CREATE AGGREGATE gik.ens_mean(grid real[]) (
    SFUNC = gik.ens_mean_transfn,
    STYPE = internal,
    FINALFUNC = gik.ens_mean_finalfn,
    COMBINEFUNC = gik.ens_combinefn,
    SERIALFUNC = gik.ens_serialfn,
    DESERIALFUNC = gik.ens_deserialfn,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE gik.ens_mean(real[]) IS
'Ensemble mean per cell (double accumulation), NaN cells skipped; NaN where no member is valid. NULL grids are skipped.';

-- Minimum and maximum.

-- grant: reader
CREATE FUNCTION gik.ens_min_transfn(internal, real[]) RETURNS internal
AS 'MODULE_PATHNAME', 'gik_ens_min_transfn'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION gik.ens_min_transfn(internal, real[]) IS
'Transition function of gik.ens_min: running minimum of valid values per cell.';

-- grant: reader
CREATE FUNCTION gik.ens_max_transfn(internal, real[]) RETURNS internal
AS 'MODULE_PATHNAME', 'gik_ens_max_transfn'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION gik.ens_max_transfn(internal, real[]) IS
'Transition function of gik.ens_max: running maximum of valid values per cell.';

-- grant: reader
CREATE FUNCTION gik.ens_extreme_finalfn(internal) RETURNS real[]
AS 'MODULE_PATHNAME', 'gik_ens_extreme_finalfn'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION gik.ens_extreme_finalfn(internal) IS
'Final function of gik.ens_min and gik.ens_max.';

-- grant: reader
CREATE AGGREGATE gik.ens_min(grid real[]) (
    SFUNC = gik.ens_min_transfn,
    STYPE = internal,
    FINALFUNC = gik.ens_extreme_finalfn,
    COMBINEFUNC = gik.ens_combinefn,
    SERIALFUNC = gik.ens_serialfn,
    DESERIALFUNC = gik.ens_deserialfn,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE gik.ens_min(real[]) IS
'Ensemble minimum per cell, NaN cells skipped; NaN where no member is valid. NULL grids are skipped.';

-- grant: reader
CREATE AGGREGATE gik.ens_max(grid real[]) (
    SFUNC = gik.ens_max_transfn,
    STYPE = internal,
    FINALFUNC = gik.ens_extreme_finalfn,
    COMBINEFUNC = gik.ens_combinefn,
    SERIALFUNC = gik.ens_serialfn,
    DESERIALFUNC = gik.ens_deserialfn,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE gik.ens_max(real[]) IS
'Ensemble maximum per cell, NaN cells skipped; NaN where no member is valid. NULL grids are skipped.';

-- Standard deviation (Welford per row, Chan et al. to combine).

-- grant: reader
CREATE FUNCTION gik.ens_moments_transfn(internal, real[]) RETURNS internal
AS 'MODULE_PATHNAME', 'gik_ens_moments_transfn'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION gik.ens_moments_transfn(internal, real[]) IS
'Transition function of gik.ens_stddev and gik.ens_stddev_pop: Welford count, mean and sum of squared deviations per cell, in double.';

-- grant: reader
CREATE FUNCTION gik.ens_stddev_finalfn(internal) RETURNS real[]
AS 'MODULE_PATHNAME', 'gik_ens_stddev_finalfn'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION gik.ens_stddev_finalfn(internal) IS
'Final function of gik.ens_stddev: sample standard deviation (n - 1).';

-- grant: reader
CREATE FUNCTION gik.ens_stddev_pop_finalfn(internal) RETURNS real[]
AS 'MODULE_PATHNAME', 'gik_ens_stddev_pop_finalfn'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION gik.ens_stddev_pop_finalfn(internal) IS
'Final function of gik.ens_stddev_pop: population standard deviation (n).';

-- grant: reader
CREATE AGGREGATE gik.ens_stddev(grid real[]) (
    SFUNC = gik.ens_moments_transfn,
    STYPE = internal,
    FINALFUNC = gik.ens_stddev_finalfn,
    COMBINEFUNC = gik.ens_combinefn,
    SERIALFUNC = gik.ens_serialfn,
    DESERIALFUNC = gik.ens_deserialfn,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE gik.ens_stddev(real[]) IS
'Ensemble sample standard deviation per cell, divisor n - 1 (numpy ddof=1, like SQL stddev_samp), NaN cells skipped; NaN where fewer than 2 members are valid. NULL grids are skipped.';

-- grant: reader
CREATE AGGREGATE gik.ens_stddev_pop(grid real[]) (
    SFUNC = gik.ens_moments_transfn,
    STYPE = internal,
    FINALFUNC = gik.ens_stddev_pop_finalfn,
    COMBINEFUNC = gik.ens_combinefn,
    SERIALFUNC = gik.ens_serialfn,
    DESERIALFUNC = gik.ens_deserialfn,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE gik.ens_stddev_pop(real[]) IS
'Ensemble population standard deviation per cell, divisor n (numpy ddof=0, like SQL stddev_pop), NaN cells skipped; NaN where no member is valid, 0 where one is. NULL grids are skipped.';

-- Percentiles (keeps every member's grid).

-- grant: reader
CREATE FUNCTION gik.ens_percentile_transfn(internal, real[], float8[]) RETURNS internal
AS 'MODULE_PATHNAME', 'gik_ens_percentile_transfn'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION gik.ens_percentile_transfn(internal, real[], float8[]) IS
'Transition function of gik.ens_percentile: keep a copy of every member''s grid.';

-- grant: reader
CREATE FUNCTION gik.ens_percentile_finalfn(internal) RETURNS real[]
AS 'MODULE_PATHNAME', 'gik_ens_percentile_finalfn'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION gik.ens_percentile_finalfn(internal) IS
'Final function of gik.ens_percentile: percentiles [fraction][...grid] by selection over each cell''s members.';

-- grant: reader
CREATE AGGREGATE gik.ens_percentile(grid real[], fractions float8[]) (
    SFUNC = gik.ens_percentile_transfn,
    STYPE = internal,
    FINALFUNC = gik.ens_percentile_finalfn,
    COMBINEFUNC = gik.ens_combinefn,
    SERIALFUNC = gik.ens_serialfn,
    DESERIALFUNC = gik.ens_deserialfn,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE gik.ens_percentile(real[], float8[]) IS
'Ensemble percentiles per cell for several fractions in [0, 1] (0.9 = 90th percentile), linear interpolation between the closest ranks exactly like numpy.percentile''s default and percentile_cont: with n valid values sorted, h = f * (n - 1) and the result is v[floor(h)] + (h - floor(h)) * (v[floor(h) + 1] - v[floor(h)]). NaN cells are skipped per cell (numpy.nanpercentile); NaN where no member is valid. NULL grids are skipped. The result is [fraction][...grid]. Keeps every member''s grid in memory (4 bytes per cell and member).';

-- Weighted element-wise sum.

-- grant: reader
CREATE FUNCTION gik.grid_sum_transfn(internal, real[]) RETURNS internal
AS 'MODULE_PATHNAME', 'gik_grid_sum_transfn'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION gik.grid_sum_transfn(internal, real[]) IS
'Transition function of gik.grid_sum(real[]): element-wise double sum.';

-- grant: reader
CREATE FUNCTION gik.grid_sum_transfn(internal, real[], float8) RETURNS internal
AS 'MODULE_PATHNAME', 'gik_grid_sum_transfn'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION gik.grid_sum_transfn(internal, real[], float8) IS
'Transition function of gik.grid_sum(real[], float8): element-wise double sum of weight * grid.';

-- grant: reader
CREATE FUNCTION gik.grid_sum_finalfn(internal) RETURNS real[]
AS 'MODULE_PATHNAME', 'gik_grid_sum_finalfn'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION gik.grid_sum_finalfn(internal) IS
'Final function of gik.grid_sum.';

-- grant: reader
CREATE AGGREGATE gik.grid_sum(grid real[]) (
    SFUNC = gik.grid_sum_transfn,
    STYPE = internal,
    FINALFUNC = gik.grid_sum_finalfn,
    COMBINEFUNC = gik.ens_combinefn,
    SERIALFUNC = gik.ens_serialfn,
    DESERIALFUNC = gik.ens_deserialfn,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE gik.grid_sum(real[]) IS
'Element-wise sum of the grids of a group (double accumulation). NaN propagates: a cell that is NaN (or NULL) in any grid is NaN in the result. NULL grids are skipped.';

-- grant: reader
CREATE AGGREGATE gik.grid_sum(grid real[], weight float8) (
    SFUNC = gik.grid_sum_transfn,
    STYPE = internal,
    FINALFUNC = gik.grid_sum_finalfn,
    COMBINEFUNC = gik.ens_combinefn,
    SERIALFUNC = gik.ens_serialfn,
    DESERIALFUNC = gik.ens_deserialfn,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE gik.grid_sum(real[], float8) IS
'Weighted element-wise sum, sum(weight * grid), of the grids of a group (double accumulation), e.g. a window total of a run-accumulated field as grid_sum(tp, CASE step WHEN b THEN 1 WHEN a THEN -1 END). NaN propagates: a cell that is NaN (or NULL) in any grid is NaN in the result. Rows with a NULL grid or a NULL weight are skipped; a NaN weight is an error.';

-- Element-wise arithmetic with a scalar (computed in double, rounded to real; NaN and NULL elements stay).

-- grant: reader
CREATE FUNCTION gik.grid_add(grid real[], value float8) RETURNS real[]
AS 'MODULE_PATHNAME', 'gik_grid_add'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION gik.grid_add(real[], float8) IS
'grid + value element by element, keeping dimensions and lower bounds; NaN and NULL elements stay as they are. Also the operator real[] OPERATOR(gik.+) float8.';

-- grant: reader
CREATE FUNCTION gik.grid_sub(grid real[], value float8) RETURNS real[]
AS 'MODULE_PATHNAME', 'gik_grid_sub'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION gik.grid_sub(real[], float8) IS
'grid - value element by element, keeping dimensions and lower bounds; NaN and NULL elements stay as they are. Also the operator real[] OPERATOR(gik.-) float8.';

-- grant: reader
CREATE FUNCTION gik.grid_mul(grid real[], value float8) RETURNS real[]
AS 'MODULE_PATHNAME', 'gik_grid_mul'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION gik.grid_mul(real[], float8) IS
'grid * value element by element (e.g. metres to millimetres with 1000), keeping dimensions and lower bounds; NaN and NULL elements stay as they are. Also the operator real[] OPERATOR(gik.*) float8.';

CREATE OPERATOR gik.+ (LEFTARG = real[], RIGHTARG = float8, FUNCTION = gik.grid_add);
COMMENT ON OPERATOR gik.+ (real[], float8) IS 'Add a scalar to every element of a grid (gik.grid_add).';

CREATE OPERATOR gik.- (LEFTARG = real[], RIGHTARG = float8, FUNCTION = gik.grid_sub);
COMMENT ON OPERATOR gik.- (real[], float8) IS 'Subtract a scalar from every element of a grid (gik.grid_sub).';

CREATE OPERATOR gik.* (LEFTARG = real[], RIGHTARG = float8, FUNCTION = gik.grid_mul);
COMMENT ON OPERATOR gik.* (real[], float8) IS 'Multiply every element of a grid by a scalar (gik.grid_mul).';

-- grant: reader
CREATE FUNCTION gik.grid_clip(grid real[], lo float8, hi float8 DEFAULT NULL) RETURNS real[]
AS 'MODULE_PATHNAME', 'gik_grid_clip'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION gik.grid_clip(real[], float8, float8) IS
'Limit every element to [lo, hi] (numpy.clip), keeping dimensions and lower bounds; a NULL bound is no bound, NaN and NULL elements stay as they are, and a NULL grid gives NULL. grid_clip(g, 0) clips negative values to 0.';
