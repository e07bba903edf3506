"""Accumulations and exceedance compared with an independent numpy computation on the same GRIB files."""
import eccodes
import numpy as np
import pytest

from conftest import MIRROR, query

EAST_AFRICA = (21.0, -12.0, 53.0, 23.0)
GEFS_DIR = "noaa-gefs-pds/gefs.{date}/00/atmos/pgrb2sp25"
ECMWF_DIR = "ecmwf-forecasts/{date}/00z/ifs/0p25/enfo"


def read_field(path, **match):
    """(values north-up [nj][ni], lats, lons in -180..180) of the first message whose keys match."""
    with open(path, "rb") as f:
        while True:
            h = eccodes.codes_grib_new_from_file(f)
            if h is None:
                raise KeyError(f"{match} not in {path}")
            try:
                if all(str(eccodes.codes_get(h, k)) == str(v) for k, v in match.items()):
                    ni, nj = eccodes.codes_get(h, "Ni"), eccodes.codes_get(h, "Nj")
                    vals = eccodes.codes_get_values(h).reshape(nj, ni)
                    lats = eccodes.codes_get_array(h, "latitudes").reshape(nj, ni)[:, 0]
                    lons = eccodes.codes_get_array(h, "longitudes").reshape(nj, ni)[0, :]
                    return vals, lats, (lons + 180.0) % 360.0 - 180.0
            finally:
                eccodes.codes_release(h)


def region(vals, lats, lons, box):
    """Cells whose centres are inside box, rows north to south, columns west to east in -180..180."""
    lon0, lat0, lon1, lat1 = box
    rows = np.where((lats >= lat0 - 1e-9) & (lats <= lat1 + 1e-9))[0]
    order = np.argsort(lons)
    cols = order[(lons[order] >= lon0 - 1e-9) & (lons[order] <= lon1 + 1e-9)]
    return vals[np.ix_(rows, cols)]


def gefs_total(date, member, a, b, box):
    """Numpy: sum of the 6-hour APCP buckets (or the one 3-hour bucket) that make up [a, b]."""
    d = MIRROR / GEFS_DIR.format(date=date)
    name = "gec00" if member == 0 else f"gep{member:02d}"
    if b - a == 3:
        pieces = [(a, b)]
    else:
        assert a % 6 == 0 and b % 6 == 0
        pieces = [(s, s + 6) for s in range(a, b, 6)]
    total = None
    for s, e in pieces:
        vals, lats, lons = read_field(d / f"{name}.t00z.pgrb2s.0p25.f{e:03d}", shortName="tp", stepRange=f"{s}-{e}")
        part = region(vals, lats, lons, box)
        total = part if total is None else total + part
    return total


def ecmwf_total(date, member, a, b, box):
    """Numpy: (tp[b] - tp[a]) x 1000, clipped at 0; tp[0] is 0."""
    d = MIRROR / ECMWF_DIR.format(date=date)

    def tp(step):
        vals, lats, lons = read_field(d / f"{date}000000-{step}h-enfo-ef.grib2", shortName="tp", endStep=step,
                                      number=member)
        return region(vals, lats, lons, box)

    total = tp(b) if a == 0 else tp(b) - tp(a)
    return np.clip(total * 1000.0, 0, None)


@pytest.fixture(scope="module")
def runs(db_setup):
    """Clones of the built-in datasets with the generated runs ingested."""
    from conftest import connect
    conn = connect()
    for src, name in (("gefs_0p25", "gefs_py"), ("ecmwf_ens_0p25", "ecmwf_py")):
        query(conn, "SELECT gik.drop_dataset(%s)", (name,))
        query(conn, "SELECT gik.clone_dataset(%s, %s)", (src, name))
    query(conn, "SELECT gik.ingest_run('gefs_py', '2025-10-01 00:00+00', members => '{0,1,2}', steps => gik.step_list('0-24/3'))")
    query(conn, "SELECT gik.ingest_run('ecmwf_py', '2025-10-01 00:00+00', steps => '{0,6,12,18,24}')")
    query(conn, "SELECT gik.ingest_run('gefs_py', '2025-10-02 00:00+00', members => '{0,1,2,3,4}', steps => gik.step_list('0-30/3'))")
    query(conn, "SELECT gik.ingest_run('ecmwf_py', '2025-10-02 00:00+00', steps => gik.step_list('0-30/3'))")
    query(conn, "SELECT gik.ingest_run('gefs_py', '2025-10-03 00:00+00', steps => gik.step_list('0-24/6'), allow_missing => true)")
    query(conn, "SELECT gik.ingest_run('ecmwf_py', '2025-10-03 00:00+00', steps => '{0,24}')")
    yield conn
    query(conn, "SELECT gik.drop_dataset('gefs_py'), gik.drop_dataset('ecmwf_py')")
    conn.close()


def sql_totals(conn, dataset, date, a, b, box):
    """{member: total} from gik.accumulations for a region."""
    rows = query(conn, "SELECT member, total FROM gik.accumulations(%s, %s, %s, %s, gik.bbox(%s, %s, %s, %s))",
                 (dataset, f"{date[:4]}-{date[4:6]}-{date[6:]} 00:00+00", a, b, *box))
    return {m: np.array(t, dtype=np.float32) for m, t in rows}


@pytest.mark.parametrize("date,window", [("20251001", (0, 24)), ("20251001", (6, 12)), ("20251001", (9, 12)),
                                         ("20251002", (0, 24)), ("20251002", (6, 12)), ("20251002", (12, 30)),
                                         ("20251002", (3, 6))])
def test_gefs_accumulations_match_numpy(runs, date, window):
    got = sql_totals(runs, "gefs_py", date, *window, EAST_AFRICA)
    members = sorted(got)
    assert members == ([0, 1, 2] if date == "20251001" else [0, 1, 2, 3, 4])
    for m in members:
        a, b = window
        if b - a == 3 and a % 6 == 3:   # [3,6]: GIK takes 0-6 minus 0-3; numpy does the same independently
            ref = gefs_total(date, m, a - 3, b, EAST_AFRICA) - gefs_total(date, m, a - 3, a, EAST_AFRICA)
        else:
            ref = gefs_total(date, m, a, b, EAST_AFRICA)
        assert got[m].shape == ref.shape == ((141, 129) if date == "20251001" else (36, 33))
        np.testing.assert_allclose(got[m], ref.astype(np.float32), rtol=1e-6, atol=1e-4)


@pytest.mark.parametrize("date,window", [("20251001", (0, 24)), ("20251001", (6, 18)), ("20251002", (0, 24)),
                                         ("20251002", (9, 12)), ("20251002", (6, 12)), ("20251002", (12, 15))])
def test_ecmwf_accumulations_match_numpy(runs, date, window):
    box = (30.0, -5.0, 45.0, 10.0)
    got = sql_totals(runs, "ecmwf_py", date, *window, box)
    assert sorted(got) == ([0, 1, 2, 3] if date == "20251001" else [0, 1, 2, 3, 4])
    for m, total in got.items():
        ref = ecmwf_total(date, m, *window, box)
        np.testing.assert_allclose(total, ref.astype(np.float32), rtol=1e-5, atol=1e-3)
        assert (total >= 0).all()


def test_gefs_global_accumulation_matches_numpy(runs):
    rows = query(runs, "SELECT total, grid FROM gik.accumulations('gefs_py', '2025-10-01 00:00+00', 0, 24, lon => '0..360', members => '{1}')")
    total = np.array(rows[0][0], dtype=np.float32)
    assert total.shape == (721, 1440)
    d = MIRROR / GEFS_DIR.format(date="20251001")
    ref = sum(read_field(d / f"gep01.t00z.pgrb2s.0p25.f{e:03d}", shortName="tp", stepRange=f"{e-6}-{e}")[0]
              for e in (6, 12, 18, 24))
    np.testing.assert_allclose(total, ref.astype(np.float32), rtol=1e-6, atol=1e-4)


def test_exceedance_matches_numpy_grand_ensemble(runs):
    # between the ladder's member values: ECMWF tp is packed to about 1e-5 mm, so exact values are not exact there
    thresholds = [2.5, 27.5, 52.5, 77.5, 102.5, 127.5]
    box = (30.0, -5.0, 45.0, 10.0)
    totals = []
    for m in range(31):
        if m == 7:
            continue            # its f012 file is missing
        totals.append(gefs_total("20251003", m, 0, 24, box))
    for m in range(51):
        totals.append(ecmwf_total("20251003", m, 0, 24, box))
    stack = np.stack(totals).astype(np.float32)
    rows = query(runs, "SELECT threshold, probability, members_used, members_expected, members_missing "
                       "FROM gik.exceedance(ARRAY['gefs_py', 'ecmwf_py'], '2025-10-03 00:00+00', 0, 24, %s::real[], "
                       "gik.bbox(30, -5, 45, 10))", (thresholds,))
    assert [r[0] for r in rows] == thresholds
    for thr, prob, used, expected, missing in rows:
        assert (used, expected, missing) == (81, 82, ["gefs_py:7"])
        ref = (stack >= np.float32(thr)).sum(axis=0) / len(totals)
        np.testing.assert_allclose(np.array(prob, dtype=np.float32), ref.astype(np.float32), rtol=0, atol=1e-6)


def test_exceedance_realistic_rain_matches_numpy(runs):
    thresholds = [5, 25, 50]
    totals = [gefs_total("20251001", m, 0, 24, EAST_AFRICA) for m in range(3)]
    stack = np.stack(totals).astype(np.float32)
    rows = query(runs, "SELECT threshold, probability, members_used FROM gik.exceedance('gefs_py', '2025-10-01 00:00+00', "
                       "0, 24, %s::real[], gik.bbox(21, -12, 53, 23))", (thresholds,))
    assert [r[0] for r in rows] == thresholds
    for thr, prob, used in rows:
        assert used == 3
        ref = (stack >= np.float32(thr)).sum(axis=0) / 3
        np.testing.assert_allclose(np.array(prob, dtype=np.float32), ref.astype(np.float32), atol=1e-6)


def test_ensemble_statistics_match_numpy(runs):
    totals = np.stack([gefs_total("20251002", m, 0, 24, EAST_AFRICA) for m in range(5)]).astype(np.float32)
    row = query(runs, """
        SELECT gik.ens_mean(total), gik.ens_stddev(total), gik.ens_percentile(total, '{0.1,0.5,0.9}')
        FROM gik.accumulations('gefs_py', '2025-10-02 00:00+00', 0, 24, gik.bbox(21, -12, 53, 23))""")[0]
    np.testing.assert_allclose(np.array(row[0], dtype=np.float32), totals.mean(axis=0), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(np.array(row[1], dtype=np.float32), totals.std(axis=0, ddof=1), rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(np.array(row[2], dtype=np.float32),
                               np.percentile(totals, [10, 50, 90], axis=0), rtol=1e-5, atol=1e-4)
