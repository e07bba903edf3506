"""pg_gik's readers of GRIB files and inventories against readers that share no code with it.

gik.scan_grib against ecCodes (Python bindings, and the grib_ls program) on every GRIB fixture;
gik.parse_idx against a parse of the real wgrib2 inventories written here from the inventory format
("msg[.sub]:offset:d=YYYYMMDDHH:VAR:LEVEL:FTIME:EXTRA"), and its offsets against ecCodes where the
GRIB file is there too; gik.parse_ecmwf_index against the JSON lines themselves and against ecCodes.
"""
import datetime
import json
import pathlib
import re
import subprocess

import pytest

from conftest import DATA, HTTP, MIRROR, grib_keys, query

GRIB_FIXTURES = ["grib-rs/gdas.t12z.pgrb2.0p25.f000.12", "grib-rs/20240101000000-0h-oper-fc.grib2.0-10",
                 "gribberish/gfswave.t18z.atlocn.0p16.f001.grib2", "gribberish/ecmwf-ifs-oper-surface.grib2",
                 "kerchunk/gec00_20250101_00_soilw.grib", "generated/lambert.grib2", "generated/scan_ineg_jpos.grib2"]
IDX_FIXTURES = ["dynamical/gep01.t00z.pgrb2s.0p25.f015.idx", "dynamical/geavg.t00z.pgrb2s.0p25.f000.idx",
                "dynamical/gec00.t00z.pgrb2a.0p50.f432.idx", "dynamical/gfs.t00z.pgrb2.0p25.f000.idx",
                "dynamical/hrrr.t00z.wrfsfcf00.grib2.idx", "kerchunk/gfs.t00z.pgrb2.0p25.f000.idx",
                "kerchunk/gfs.t06z.pgrb2.0p25.f021.idx", "kerchunk/gfs.t00z.pgrb2.0p25.f006.test-limit-100.idx",
                "kerchunk/hrrr.t01z.wrfsfcf00.grib2.idx", "kerchunk/hrrr.t01z.wrfsubhf00.grib2.idx",
                "gribberish/gfswave.t18z.atlocn.0p16.f001.grib2.idx"]
ECMWF_INDEX_FIXTURES = ["dynamical/aifs_single_20250301_00z_0h.index", "dynamical/aifs_single_20250301_00z_6h.index"]
ENS = "ecmwf-forecasts/20251001/00z/ifs/0p25/enfo/20251001000000-24h-enfo-ef"
UTC = datetime.timezone.utc


# --- gik.scan_grib against ecCodes -------------------------------------------------------------------

def scan(db, path):
    return query(db, "SELECT msg_num, byte_offset, byte_length, edition, short_name, param_id, packing, "
                     "bits_per_value, bitmap, missing_count, grid_type, num_points, scanning_mode "
                     "FROM gik.scan_grib(%s) ORDER BY msg_num", (f"{HTTP}/fixtures/{path}",))


@pytest.mark.parametrize("path", GRIB_FIXTURES)
def test_scan_grib_matches_eccodes(db, path):
    # num_points is what ecCodes calls numberOfValues: the points with a value, not the grid's points
    keys = ("offset", "totalLength", "edition", "shortName", "paramId", "packingType", "bitsPerValue",
            "bitmapPresent", "numberOfMissing", "gridType", "numberOfValues", "scanningMode")
    want = [(n, *k[:7], bool(k[7]), *k[8:]) for n, k in enumerate(grib_keys(MIRROR / "fixtures" / path, keys), 1)]
    got = scan(db, path)
    assert len(got) == len(want) > 0
    assert got == want


@pytest.mark.xfail(strict=True, reason="num_points counts the points with a value (numberOfValues), so one grid "
                                      "with several bitmaps becomes several gik.grid rows")
def test_messages_on_one_grid_have_one_num_points(db):
    """GFS-Wave: 19 messages on one 301x331 grid, with five different land/ice bitmaps."""
    rows = query(db, "SELECT DISTINCT grid_type, ni, nj, num_points FROM gik.scan_grib(%s)",
                 (f"{HTTP}/fixtures/gribberish/gfswave.t18z.atlocn.0p16.f001.grib2",))
    assert rows == [("regular_ll", 301, 331, 301 * 331)]


@pytest.mark.parametrize("path", GRIB_FIXTURES)
def test_scan_grib_offsets_match_grib_ls(db, path):
    """The grib_ls program, another process reading the file its own way, frames the same messages."""
    out = subprocess.run(["grib_ls", "-j", "-p", "offset:i,totalLength:i,shortName", str(MIRROR / "fixtures" / path)],
                         check=True, capture_output=True, text=True).stdout
    want = [(m["offset"], m["totalLength"], m["shortName"]) for m in json.loads(out)["messages"]]
    got = [(off, length, name) for _, off, length, _, name, *_ in scan(db, path)]
    assert len(got) == len(want) > 0
    assert got == want


# --- gik.parse_idx against the wgrib2 inventory format -------------------------------------------------

FTIME = re.compile(r"(\d+)(?:-(\d+))? (min|hour|day) (?:(acc|ave|max|min) )?fcst")
HOURS = {"min": 1 / 60, "hour": 1, "day": 24}


def ftime_hours(ftime):
    """(start, end, statistic) in hours of a wgrib2 forecast time: "anl", "N unit fcst", "N-M unit STAT fcst"."""
    if ftime == "anl":
        return 0.0, 0.0, None
    m = FTIME.fullmatch(ftime)
    assert m, f"a forecast time this oracle does not know: {ftime!r}"
    end = int(m.group(2) or m.group(1)) * HOURS[m.group(3)]
    start = int(m.group(1)) * HOURS[m.group(3)] if m.group(2) else end
    return float(start), float(end), m.group(4)


def ensemble_member(extra):
    """(member, kind) from wgrib2's ensemble field: "ENS=+N", "ENS=low-res ctl", "ens mean"."""
    if m := re.fullmatch(r"ENS=\+(\d+)", extra):
        return int(m.group(1)), "perturbed"
    if re.fullmatch(r"ENS=(low|hi)-res ctl", extra):
        return 0, "control"
    if extra == "ens mean":
        return None, "mean"
    assert extra == "", f"an extra field this oracle does not know: {extra!r}"
    return None, None


def inventory(text, file_size=None):
    """Rows of an inventory, in the columns of gik.parse_idx; a message's length runs to the next one's offset."""
    lines = [line.split(":", 6) for line in text.splitlines() if line.strip()]
    offsets = sorted({int(f[1]) for f in lines})
    ends = dict(zip(offsets, offsets[1:] + [file_size]))
    rows = []
    for lineno, (num, off, date, var, level, ftime, extra) in enumerate(lines, 1):
        msg, _, sub = num.partition(".")
        off = int(off)
        assert date.startswith("d=") and len(date) == 12, date
        ref = datetime.datetime.strptime(date[2:], "%Y%m%d%H").replace(tzinfo=UTC)
        end = ends[off]
        rows.append((lineno, int(msg), int(sub or 0), off, None if end is None else end - off, ref, var, level,
                     ftime, extra, *ftime_hours(ftime), *ensemble_member(extra)))
    return rows


def parse_idx(db, text, file_size=None):
    return query(db, "SELECT lineno, msg_num, sub_num, byte_offset, byte_length, ref_time, variable, level, ftime, "
                     "extra, step_start, step_end, stat, member, member_kind FROM gik.parse_idx(%s, %s) ORDER BY lineno",
                 (text, file_size))


@pytest.mark.parametrize("path", IDX_FIXTURES)
def test_parse_idx_matches_the_inventory_format(db, path):
    text = (DATA / path).read_text()
    want = inventory(text)
    assert len(want) > 10
    assert parse_idx(db, text) == want
    # with the file size, the last message runs to the end of the file
    size = want[-1][3] + 12345
    assert parse_idx(db, text, size) == inventory(text, size)


def test_parse_idx_offsets_match_eccodes(db):
    """The real GFS-Wave inventory and its GRIB file: ranges, reference time and steps are ecCodes'."""
    grib = DATA / "gribberish/gfswave.t18z.atlocn.0p16.f001.grib2"
    rows = parse_idx(db, (DATA / "gribberish/gfswave.t18z.atlocn.0p16.f001.grib2.idx").read_text(), grib.stat().st_size)
    truth = grib_keys(grib, ("offset", "totalLength", "dataDate", "dataTime", "startStep", "endStep"))
    assert len(rows) == len(truth) > 10
    for row, (off, length, date, hhmm, start, end) in zip(rows, truth):
        ref = datetime.datetime.strptime(f"{date}{hhmm:04d}", "%Y%m%d%H%M").replace(tzinfo=UTC)
        assert (row[3], row[4], row[5], row[10], row[11]) == (off, length, ref, float(start), float(end)), row


# --- gik.parse_ecmwf_index against the JSON lines and ecCodes ------------------------------------------

def ecmwf_index(db, text, url=None):
    return query(db, "SELECT byte_offset, byte_length, param, levtype, levelist, ref_time, step, number, type, "
                     "stream, class, expver, domain FROM gik.parse_ecmwf_index(%s, %s) ORDER BY byte_offset", (text, url))


@pytest.mark.parametrize("path", ECMWF_INDEX_FIXTURES)
def test_parse_ecmwf_index_matches_the_json(db, path):
    text = (DATA / path).read_text()
    docs = sorted((json.loads(line) for line in text.splitlines() if line.strip()), key=lambda d: d["_offset"])
    want = [(d["_offset"], d["_length"], d["param"], d["levtype"], d.get("levelist"),
             datetime.datetime.strptime(d["date"] + d["time"], "%Y%m%d%H%M").replace(tzinfo=UTC), d["step"],
             int(d["number"]) if "number" in d else None, d["type"], d["stream"], d["class"], d["expver"],
             d["domain"]) for d in docs]
    assert len(want) > 100
    assert ecmwf_index(db, text) == want


def test_parse_ecmwf_index_ranges_match_eccodes(db):
    """A generated ENS file and its index: every range, parameter, step and member is ecCodes'. An index
    names the end of an accumulation only (MARS "step"), so only the end step is compared."""
    rows = query(db, "SELECT byte_offset, byte_length, param, step, step_end, type, number, member, member_kind "
                     "FROM gik.parse_ecmwf_index(%s) ORDER BY byte_offset", ((MIRROR / (ENS + ".index")).read_text(),))
    truth = grib_keys(MIRROR / (ENS + ".grib2"), ("offset", "totalLength", "shortName", "endStep", "dataType", "number"))
    assert len(rows) == len(truth) > 10
    for row, (off, length, name, end, kind, number) in zip(rows, truth):
        assert row[:6] == (off, length, name, str(end), float(end), kind), row
        assert row[6:] == ((number, number, "perturbed") if kind == "pf" else (None, 0, "control")), row
