"""The built-in datasets: URL layouts against real paths, and ingestion of real index files placed at those
paths on the loopback mirror (test/make-mirror.sh), compared with an independent reading of the index lines."""
import json

import pytest

from conftest import MIRROR, query, scalar

# (dataset, init time, step, member, the real object's URL), from the fixtures' own names and dates
# (test/data/SOURCES.md) and from the example URLs Herbie documents.
REAL_URLS = [
    ("gefs_0p25", "2025-08-01 00:00+00", 15, 1,
     "s3://noaa-gefs-pds/gefs.20250801/00/atmos/pgrb2sp25/gep01.t00z.pgrb2s.0p25.f015"),
    ("gefs_0p50", "2025-08-01 00:00+00", 432, 0,
     "s3://noaa-gefs-pds/gefs.20250801/00/atmos/pgrb2ap5/gec00.t00z.pgrb2a.0p50.f432"),
    ("hrrr", "2025-08-01 00:00+00", 0, None, "s3://noaa-hrrr-bdp-pds/hrrr.20250801/conus/hrrr.t00z.wrfsfcf00.grib2"),
    ("hrrr", "2022-10-14 01:00+00", 0, None, "s3://noaa-hrrr-bdp-pds/hrrr.20221014/conus/hrrr.t01z.wrfsfcf00.grib2"),
    ("hrrr_subh", "2022-10-14 01:00+00", 0, None,
     "s3://noaa-hrrr-bdp-pds/hrrr.20221014/conus/hrrr.t01z.wrfsubhf00.grib2"),
    ("gfs_0p25", "2022-10-14 06:00+00", 21, None,
     "s3://noaa-gfs-bdp-pds/gfs.20221014/06/atmos/gfs.t06z.pgrb2.0p25.f021"),
    ("ecmwf_hres_0p25", "2024-01-01 00:00+00", 0, None,
     "s3://ecmwf-forecasts/20240101/00z/0p4-beta/oper/20240101000000-0h-oper-fc.grib2"),
    ("ecmwf_hres_0p25", "2024-02-29 00:00+00", 0, None,
     "s3://ecmwf-forecasts/20240229/00z/ifs/0p25/oper/20240229000000-0h-oper-fc.grib2"),
    ("aifs_single", "2024-02-29 00:00+00", 0, None,
     "s3://ecmwf-forecasts/20240229/00z/aifs/0p25/oper/20240229000000-0h-oper-fc.grib2"),
    ("aifs_single", "2025-03-01 00:00+00", 0, None,
     "s3://ecmwf-forecasts/20250301/00z/aifs-single/0p25/oper/20250301000000-0h-oper-fc.grib2"),
    ("ecmwf_ens_0p25", "2025-10-01 00:00+00", 24, None,
     "s3://ecmwf-forecasts/20251001/00z/ifs/0p25/enfo/20251001000000-24h-enfo-ef.grib2"),
]


@pytest.mark.parametrize("dataset,init,step,member,url", REAL_URLS)
def test_plan_names_the_real_object(db, dataset, init, step, member, url):
    rows = query(db, "SELECT url, index_url FROM gik.plan_files(%s, %s, %s, %s)",
                 (dataset, init, None if member is None else [member], [step]))
    assert url in [r[0] for r in rows], rows
    index = [r[1] for r in rows if r[0] == url][0]
    assert index == (url + ".idx" if url.startswith("s3://noaa") else url[:-len(".grib2")] + ".index")


@pytest.mark.parametrize("dataset,init,files,first,last", [
    ("gfs_0p25", "2025-08-01 00:00+00", 121 + 88, 0, 384),          # hourly to 120, then every 3 h
    ("hrrr", "2025-08-01 00:00+00", 49, 0, 48),                     # synoptic cycles to f48
    ("hrrr", "2025-08-01 01:00+00", 19, 0, 18),
    ("hrrr", "2020-11-01 00:00+00", 19, 0, 18),                     # before HRRR v4
    ("hrrr_subh", "2025-08-01 00:00+00", 19, 0, 18),
    ("gefs_0p50", "2025-08-01 00:00+00", 33 * (81 + 100), 0, 840),  # 00z: 35 days; 31 members, mean, spread
    ("gefs_0p50", "2025-08-01 06:00+00", 33 * (81 + 24), 0, 384),
    ("ecmwf_hres_0p25", "2025-08-01 00:00+00", 49 + 16, 0, 240),
    ("ecmwf_hres_0p25", "2025-08-01 06:00+00", 31, 0, 90),          # scda, 0-90 h
    ("aifs_single", "2025-08-01 00:00+00", 61, 0, 360),
    ("aifs_ens", "2025-08-01 00:00+00", 2 * 61, 0, 360),            # perturbed and control files
])
def test_cycles_and_steps(db, dataset, init, files, first, last):
    n, lo, hi = query(db, "SELECT count(*), min(step), max(step) FROM gik.plan_files(%s, %s)", (dataset, init))[0]
    assert (n, lo, hi) == (files, first, last)


def test_layout_eras_are_disjoint(db):
    """A run time falls in one layout era of each series: no run plans two files for the same step and members."""
    dup = query(db, """
        SELECT d.name, t, p.step, p.member, p.index_members, count(*)
        FROM gik.dataset d
        CROSS JOIN unnest(ARRAY['2022-06-01 00:00+00', '2024-02-10 00:00+00', '2024-02-28 06:00+00', '2025-02-15 00:00+00',
                                '2025-06-01 00:00+00', '2026-05-12 06:00+00']::timestamptz[]) t
        CROSS JOIN LATERAL gik.plan_files(d.name, t) p
        WHERE extract(hour FROM t AT TIME ZONE 'UTC')::smallint = ANY (d.cycles)
        GROUP BY 1, 2, 3, 4, 5 HAVING count(*) > 1""")
    assert dup == []


def idx_refs(path, size):
    """(offset, length) of each message of a wgrib2 inventory: the next distinct offset, or the file size."""
    lines = [ln.split(":") for ln in path.read_text().splitlines() if ln.strip()]
    offsets = sorted({int(f[1]) for f in lines})
    nxt = {o: (offsets[i + 1] if i + 1 < len(offsets) else size) for i, o in enumerate(offsets)}
    return sorted((int(f[1]), nxt[int(f[1])] - int(f[1])) for f in lines)


def index_refs(path):
    return sorted((d["_offset"], d["_length"]) for d in map(json.loads, path.read_text().splitlines()))


# (dataset, init, step, member, index path on the mirror)
REAL_INDEXES = [
    ("hrrr", "2025-08-01 00:00+00", 0, None, "noaa-hrrr-bdp-pds/hrrr.20250801/conus/hrrr.t00z.wrfsfcf00.grib2.idx"),
    ("hrrr", "2022-10-14 01:00+00", 0, None, "noaa-hrrr-bdp-pds/hrrr.20221014/conus/hrrr.t01z.wrfsfcf00.grib2.idx"),
    ("hrrr_subh", "2022-10-14 01:00+00", 0, None,
     "noaa-hrrr-bdp-pds/hrrr.20221014/conus/hrrr.t01z.wrfsubhf00.grib2.idx"),
    ("gfs_0p25", "2025-08-01 00:00+00", 0, None, "noaa-gfs-bdp-pds/gfs.20250801/00/atmos/gfs.t00z.pgrb2.0p25.f000.idx"),
    ("gfs_0p25", "2022-10-14 00:00+00", 0, None, "noaa-gfs-bdp-pds/gfs.20221014/00/atmos/gfs.t00z.pgrb2.0p25.f000.idx"),
    ("gfs_0p25", "2022-10-14 06:00+00", 21, None, "noaa-gfs-bdp-pds/gfs.20221014/06/atmos/gfs.t06z.pgrb2.0p25.f021.idx"),
    ("gefs_0p50", "2025-08-01 00:00+00", 432, 0,
     "noaa-gefs-pds/gefs.20250801/00/atmos/pgrb2ap5/gec00.t00z.pgrb2a.0p50.f432.idx"),
    ("gefs_0p25", "2025-08-01 00:00+00", 15, 1,
     "noaa-gefs-pds/gefs.20250801/00/atmos/pgrb2sp25/gep01.t00z.pgrb2s.0p25.f015.idx"),
    ("aifs_single", "2025-03-01 00:00+00", 6, None,
     "ecmwf-forecasts/20250301/00z/aifs-single/0p25/oper/20250301000000-6h-oper-fc.index"),
]


def ingest_one(db, dataset, init, step, member):
    """Ingest one file of a run into a copy of the dataset (the GRIB files are sparse stand-ins: no templates)."""
    name = f"t_{dataset}"
    query(db, "SELECT gik.drop_dataset(%s) FROM gik.dataset WHERE name = %s", (name, name))
    query(db, "SELECT gik.clone_dataset(%s, %s)", (dataset, name))
    run = query(db, "SELECT status, files_found, refs FROM gik.ingest_run(%s, %s, members => %s, steps => %s,"
                    " learn_templates => false)", (name, init, None if member is None else [member], [step]))[0]
    return name, run


@pytest.mark.parametrize("dataset,init,step,member,path", REAL_INDEXES)
def test_ingest_real_index(db, dataset, init, step, member, path):
    name, (status, files, nrefs) = ingest_one(db, dataset, init, step, member)
    index = MIRROR / path
    want = index_refs(index) if path.endswith(".index") else idx_refs(index, (MIRROR / path[:-4]).stat().st_size)
    got = query(db, "SELECT byte_offset, byte_length, member FROM gik.chunk_ref c JOIN gik.dataset d USING (dataset_id)"
                    " WHERE d.name = %s ORDER BY 1", (name,))
    assert (status, files) == ("complete", 1)
    # one reference per message (sub-messages N.M share their parent's range)
    assert sorted({(o, n) for o, n, _ in got}) == sorted(set(want))
    assert nrefs == len(got)
    assert {m for _, _, m in got} == {member}


def test_real_windows_and_members(db):
    """What the real index lines say, as stored: GFS keeps its 3 h bucket and its run total, HRRR's f00
    accumulations are 0-0 day windows, the GEFS 0.5 degree control of the extended range is member 0 with 6 h
    buckets, AIFS tp accumulates from the start."""
    def windows(dataset, init, step, member, variable):
        name, _ = ingest_one(db, dataset, init, step, member)
        return query(db, "SELECT DISTINCT step_start, step_end, stat, member FROM gik.chunk_ref c"
                         " JOIN gik.dataset d USING (dataset_id) WHERE d.name = %s AND c.variable = %s ORDER BY 1, 2",
                     (name, variable))
    assert windows("gfs_0p25", "2022-10-14 06:00+00", 21, None, "APCP") == [(0, 21, "acc", None), (18, 21, "acc", None)]
    assert windows("hrrr_subh", "2022-10-14 01:00+00", 0, None, "APCP") == [(0, 0, "acc", None)]
    assert windows("gefs_0p50", "2025-08-01 00:00+00", 432, 0, "APCP") == [(426, 432, "acc", 0)]
    assert windows("aifs_single", "2025-03-01 00:00+00", 6, None, "tp") == [(0, 6, "acc", None)]


BUILT_IN = ["gefs_0p25", "gefs_0p50", "gefs_0p50_b", "gfs_0p25", "gfs_0p25_b", "hrrr", "hrrr_prs", "hrrr_nat",
            "hrrr_subh", "ecmwf_ens_0p25", "ecmwf_hres_0p25", "aifs_single", "aifs_ens"]


def test_dataset_table_describes_each_layout(db):
    """Every built-in dataset says what it is and the date its layouts apply from."""
    rows = query(db, "SELECT name, description ~ '20[0-9][0-9]-' FROM gik.dataset WHERE name = ANY (%s) ORDER BY name",
                 (BUILT_IN,))
    assert rows == [(n, True) for n in sorted(BUILT_IN)]
