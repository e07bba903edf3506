"""Ensemble aggregates of pg_gik compared with numpy, cell by cell.

1,200 random members of a 50x40 grid with NaN cells (some cells NaN in every member, some valid in
only one), NULL elements and values tied with the thresholds. The members fill 81 heap pages,
so that in a parallel plan both workers aggregate some of them and the leader merges their non-empty
states (the plan of the very query is checked through auto_explain). Run with Debian's
/usr/bin/python3 inside pg_virtualenv (PGHOST, PGPORT, ... set).
"""
import io
import json
import warnings

import numpy as np
import psycopg2
import pytest

NMEM, NJ, NI = 1200, 50, 40
THRESHOLDS = [0.0, 2.5, 5.0, 10.0]
FRACTIONS = [0.1, 0.5, 0.9]
TABLE = "gik_test_ensemble_members"


def make_members(seed=20240521):
    """Members as float32 [member][nj][ni], with NaNs, ties and degenerate cells."""
    rng = np.random.default_rng(seed)
    cont = rng.gamma(1.5, 3.0, size=(NMEM, NJ, NI)).astype(np.float32)
    tied = (rng.integers(0, 25, size=(NMEM, NJ, NI)) / 2.0).astype(np.float32)
    data = np.where(rng.random((NMEM, NJ, NI)) < 0.4, tied, cont).astype(np.float32)
    data[rng.random((NMEM, NJ, NI)) < 0.1] = np.nan
    data[:, 0, :] = np.nan                 # no valid member
    data[1:, 1, :] = np.nan                # one valid member
    data[0, 1, :] = cont[0, 1, :]
    data[:, 2, :] = np.float32(5.0)        # all tied with a threshold
    data[:, 3, 0] = -np.float32(1.0)       # negative values
    return data


def grid_literal(g, null_cells=()):
    """A real[] literal; cells listed in null_cells become NULL elements."""
    rows = []
    for j in range(g.shape[0]):
        vals = []
        for i in range(g.shape[1]):
            if (j, i) in null_cells:
                vals.append("NULL")
            elif np.isnan(g[j, i]):
                vals.append("NaN")
            else:
                vals.append(repr(float(g[j, i])))
        rows.append("{" + ",".join(vals) + "}")
    return "{" + ",".join(rows) + "}"


def to_np(value):
    """A real[] (nested lists) from psycopg2 as a float32 array."""
    return np.array(value, dtype=np.float32)


@pytest.fixture(scope="module")
def ens():
    conn = psycopg2.connect("")
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("CREATE EXTENSION IF NOT EXISTS pg_gik")
    data = make_members()
    # Member 7 has NULL elements in place of two cells: they count as NaN (missing).
    nulls = {(4, 4), (5, 6)}
    truth = data.copy()
    for j, i in nulls:
        truth[7, j, i] = np.nan
    cur.execute(f"DROP TABLE IF EXISTS {TABLE}")
    # fillfactor 10: a dozen members (their TOAST pointers) per heap page, so the scan has pages to share
    cur.execute(f"CREATE TABLE {TABLE} (member int, g real[]) WITH (fillfactor = 10)")
    rows = "".join(f"{m}\t{grid_literal(data[m], nulls if m == 7 else ())}\n" for m in range(NMEM))
    cur.copy_expert(f"COPY {TABLE} FROM STDIN", io.StringIO(rows))
    cur.execute(f"INSERT INTO {TABLE} VALUES (-1, NULL)")  # a NULL grid is not a member
    cur.execute(f"ANALYZE {TABLE}")
    yield conn, truth
    cur.execute(f"DROP TABLE IF EXISTS {TABLE}")
    conn.close()


# without the leader's participation, the leader only combines: both partial states come from workers
PARALLEL = ("parallel_setup_cost = 0", "parallel_tuple_cost = 0", "min_parallel_table_scan_size = 0",
            "max_parallel_workers_per_gather = 2", "parallel_leader_participation = off")
# auto_explain sends the executed plan, with each worker's row counts, to the client as a NOTICE
EXPLAIN_TO_CLIENT = ("auto_explain.log_min_duration = 0", "auto_explain.log_analyze = on",
                     "auto_explain.log_verbose = on", "auto_explain.log_timing = off",
                     "auto_explain.log_format = json", "auto_explain.log_level = notice")


def executed_plan(notices):
    """The JSON plan of the last statement, from auto_explain's notice."""
    plans = [n for n in notices if "plan:" in n]
    assert plans, f"auto_explain reported no plan: {notices}"
    return json.loads(plans[-1].split("plan:", 1)[1])["Plan"]


def nodes(plan):
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


def assert_split_between_workers(plan, table=TABLE):
    """Two or more workers launched, each scanned members: the leader combined non-empty partial states."""
    gather = [n for n in nodes(plan) if n["Node Type"] == "Gather"]
    assert gather and gather[0]["Workers Launched"] >= 2, gather or plan
    assert any(n["Node Type"] == "Aggregate" and n.get("Partial Mode") == "Finalize" for n in nodes(plan)), plan
    scan = [n for n in nodes(plan) if n["Node Type"] == "Seq Scan" and n.get("Relation Name") == table]
    assert len(scan) == 1 and scan[0]["Parallel Aware"], plan
    workers = scan[0].get("Workers", [])
    assert len(workers) >= 2 and all(w["Actual Rows"] > 0 for w in workers), workers
    assert sum(w["Actual Rows"] for w in workers) <= NMEM + 1


def run(conn, sql, params=None, parallel=False, rtol=0.0, atol=0.0):
    """One row of a query. parallel: in a forced parallel plan whose workers are checked to share the rows,
    and whose row equals the serial plan's row (within rtol/atol, for sums in another order)."""
    cur = conn.cursor()
    cur.execute("BEGIN")
    try:
        if parallel:
            cur.execute("LOAD 'auto_explain'")
            for s in PARALLEL + EXPLAIN_TO_CLIENT:
                cur.execute("SET LOCAL " + s)
        else:
            cur.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        del conn.notices[:]
        cur.execute(sql, params)
        row = cur.fetchone()
        if parallel:
            assert_split_between_workers(executed_plan(conn.notices))
    finally:
        cur.execute("COMMIT")
    if parallel:
        for got, serial in zip(row, run(conn, sql, params)):
            assert_same(to_np(got), to_np(serial), rtol=rtol, atol=atol)
    return row


def assert_same(got, want, rtol=0.0, atol=0.0):
    """Equal shapes and NaN positions, values within tolerance (exact by default)."""
    assert got.shape == want.shape
    assert np.array_equal(np.isnan(got), np.isnan(want))
    ok = ~np.isnan(want)
    if rtol == 0.0 and atol == 0.0:
        assert np.array_equal(got[ok], want[ok])
    else:
        np.testing.assert_allclose(got[ok], want[ok], rtol=rtol, atol=atol)


def nan_quiet(fn, *args, **kwargs):
    """numpy's nan-functions without the all-NaN and ddof warnings."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(*args, **kwargs)


@pytest.mark.parametrize("parallel", [False, True])
def test_exceedance(ens, parallel):
    conn, x = ens
    (got,) = run(conn, f"SELECT gik.ens_exceedance(g, %s::real[]) FROM {TABLE}", (THRESHOLDS,), parallel)
    got = to_np(got)
    valid = ~np.isnan(x)
    n = valid.sum(axis=0)
    want = np.empty((len(THRESHOLDS), NJ, NI), dtype=np.float32)
    with np.errstate(invalid="ignore", divide="ignore"):
        for k, t in enumerate(THRESHOLDS):
            hits = (valid & (x >= np.float32(t))).sum(axis=0)
            want[k] = np.where(n > 0, hits / np.maximum(n, 1), np.nan).astype(np.float32)
    assert_same(got, want)
    assert np.all(got[:3, 2, :] == 1.0) and np.all(got[3, 2, :] == 0.0)  # 5.0 >= 5.0 counts


@pytest.mark.parametrize("parallel", [False, True])
def test_count_mean_min_max(ens, parallel):
    conn, x = ens
    n, mean, mn, mx = run(conn, f"SELECT gik.ens_count(g), gik.ens_mean(g), gik.ens_min(g), gik.ens_max(g) FROM {TABLE}",
                          None, parallel, rtol=1e-6)
    x64 = x.astype(np.float64)
    assert np.array_equal(np.array(n), (~np.isnan(x)).sum(axis=0))
    assert_same(to_np(mean), nan_quiet(np.nanmean, x64, axis=0).astype(np.float32), rtol=1e-6)
    assert_same(to_np(mn), nan_quiet(np.nanmin, x, axis=0))
    assert_same(to_np(mx), nan_quiet(np.nanmax, x, axis=0))


@pytest.mark.parametrize("parallel", [False, True])
def test_stddev(ens, parallel):
    conn, x = ens
    sd, sd_pop = run(conn, f"SELECT gik.ens_stddev(g), gik.ens_stddev_pop(g) FROM {TABLE}", None, parallel,
                     rtol=1e-6, atol=1e-6)
    x64 = x.astype(np.float64)
    want1 = nan_quiet(np.nanstd, x64, axis=0, ddof=1).astype(np.float32)
    want0 = nan_quiet(np.nanstd, x64, axis=0, ddof=0).astype(np.float32)
    assert_same(to_np(sd), want1, rtol=1e-6, atol=1e-6)
    assert_same(to_np(sd_pop), want0, rtol=1e-6, atol=1e-6)
    assert np.all(np.isnan(to_np(sd)[1, :]))       # one valid member: NaN for n - 1
    assert np.all(to_np(sd_pop)[1, :] == 0.0)     # ... and 0 for n
    assert np.all(to_np(sd)[2, :] == 0.0)         # constant cells


@pytest.mark.parametrize("parallel", [False, True])
def test_percentile(ens, parallel):
    conn, x = ens
    (got,) = run(conn, f"SELECT gik.ens_percentile(g, %s::float8[]) FROM {TABLE}", (FRACTIONS,), parallel)
    got = to_np(got)
    want = nan_quiet(np.nanpercentile, x.astype(np.float64), [100 * f for f in FRACTIONS], axis=0)
    assert_same(got, want.astype(np.float32), rtol=1e-6, atol=1e-6)


def test_percentile_extremes_and_order(ens):
    conn, x = ens
    (got,) = run(conn, f"SELECT gik.ens_percentile(g, '{{1, 0, 0.37, 0.5}}') FROM {TABLE}")
    got = to_np(got)
    want = nan_quiet(np.nanpercentile, x.astype(np.float64), [100, 0, 37, 50], axis=0)
    assert_same(got, want.astype(np.float32), rtol=1e-6, atol=1e-6)
    assert_same(got[0], nan_quiet(np.nanmax, x, axis=0))
    assert_same(got[1], nan_quiet(np.nanmin, x, axis=0))


@pytest.mark.parametrize("parallel", [False, True])
def test_grid_sum(ens, parallel):
    conn, x = ens
    (got,) = run(conn, f"SELECT gik.grid_sum(g, CASE WHEN member % 2 = 0 THEN 1 ELSE -0.5 END) FROM {TABLE}",
                 None, parallel, rtol=1e-6, atol=1e-5)
    w = np.where(np.arange(NMEM) % 2 == 0, 1.0, -0.5)
    want = (x.astype(np.float64) * w[:, None, None]).sum(axis=0).astype(np.float32)
    assert_same(to_np(got), want, rtol=1e-6, atol=1e-5)


def test_arithmetic(ens):
    conn, x = ens
    g = x[0]
    lit = grid_literal(g)
    add, sub, mul, clip = run(conn, "SELECT %s::real[] OPERATOR(gik.+) 1.5, %s::real[] OPERATOR(gik.-) 2, "
                                    "%s::real[] OPERATOR(gik.*) 1000, gik.grid_clip(%s::real[], 1, 6)",
                              (lit, lit, lit, lit))
    g64 = g.astype(np.float64)
    assert_same(to_np(add), (g64 + 1.5).astype(np.float32))
    assert_same(to_np(sub), (g64 - 2).astype(np.float32))
    assert_same(to_np(mul), (g64 * 1000).astype(np.float32))
    assert_same(to_np(clip), np.clip(g, 1, 6))


def test_plan_is_parallel(ens):
    conn, _ = ens
    cur = conn.cursor()
    cur.execute("BEGIN")
    for s in PARALLEL:
        cur.execute("SET LOCAL " + s)
    cur.execute(f"EXPLAIN (COSTS OFF) SELECT gik.ens_exceedance(g, '{{1}}'), gik.ens_mean(g), "
                f"gik.ens_stddev(g), gik.ens_percentile(g, '{{0.5}}'), gik.grid_sum(g, 1) FROM {TABLE}")
    plan = "\n".join(r[0] for r in cur.fetchall())
    cur.execute("COMMIT")
    assert "Partial Aggregate" in plan and "Finalize Aggregate" in plan
