"""Run completeness: the members each step holds (gik.run_members), the fewest members a product may use
(gik.min_members), and the newest published run across the mirrors (gik.latest_run). The mirror's files are
the oracle: what exists on disk is what was published."""
import contextlib

import pytest

from conftest import FAULT, MIRROR, connect, error_of, query, scalar

LADDER = "2025-10-03 00:00+00"   # GEFS 31 members, steps 0-24/6, member 7's f012 never published (APCP from f006)


def published(day, member, step):
    """Whether the mirror holds the index of a GEFS 00z file."""
    token = "gec00" if member == 0 else f"gep{member:02d}"
    return (MIRROR / "noaa-gefs-pds" / f"gefs.{day}" / "00" / "atmos" / "pgrb2sp25"
            / f"{token}.t00z.pgrb2s.0p25.f{step:03d}.idx").exists()


@pytest.fixture(scope="module")
def ladder(db_setup):
    conn = connect()
    query(conn, "SELECT gik.drop_dataset('rc_gefs') FROM gik.dataset WHERE name = 'rc_gefs'")
    query(conn, "SELECT gik.clone_dataset('gefs_0p25', 'rc_gefs', '{APCP}')")
    query(conn, "SELECT gik.ingest_run('rc_gefs', %s, steps => gik.step_list('6-24/6'), allow_missing => true)", (LADDER,))
    yield conn
    query(conn, "SELECT gik.drop_dataset('rc_gefs')")
    conn.close()


def test_run_members_match_the_published_files(ladder):
    rows = query(ladder, "SELECT step, members_present, members_expected, members, members_missing FROM gik.run_members"
                         " WHERE dataset = 'rc_gefs' AND init_time = %s ORDER BY step", (LADDER,))
    assert [r[0] for r in rows] == [6, 12, 18, 24]  # APCP only: f000 has none
    for step, present, expected, members, missing in rows:
        on_disk = [m for m in range(31) if published("20251003", m, step)]
        assert expected == 31
        assert members == on_disk and present == len(on_disk)
        assert missing == [m for m in range(31) if m not in on_disk]
    assert [r[4] for r in rows if r[0] == 12] == [[7]]  # the one file the mirror lacks


def test_min_members_decides_fail_or_go_on(ladder):
    sql = "SELECT members_used, members_missing FROM gik.exceedance('rc_gefs', %s, 0, 24, '{10}')"
    with contextlib.closing(connect()) as conn:
        query(conn, "SET gik.min_members = 30")
        assert query(conn, sql, (LADDER,))[0] == (30, ["rc_gefs:7"])
        query(conn, "SET gik.min_members = 31")
        code, msg, detail = error_of(conn, sql, (LADDER,))
    assert code == "P0002" and "only 30 of 31 members" in msg and "gik.min_members (31)" in msg
    assert detail == "Missing: rc_gefs:7."


@pytest.fixture
def small_gefs(db):
    """GEFS members 0-2, steps 0-24/6: what the mirror holds for 2025-10-01, -02 and -03."""
    query(db, "SELECT gik.drop_dataset('rc_small') FROM gik.dataset WHERE name = 'rc_small'")
    query(db, "SELECT gik.clone_dataset('gefs_0p25', 'rc_small')")
    query(db, "UPDATE gik.dataset SET steps = gik.step_list('0-24/6'), members = '{0,1,2}' WHERE name = 'rc_small'")
    query(db, "UPDATE gik.dataset_source s SET members = '{0,1,2}', member_tokens = '{gec00,gep01,gep02}'"
              " FROM gik.dataset d WHERE d.dataset_id = s.dataset_id AND d.name = 'rc_small'")
    query(db, "INSERT INTO gik.mirror (prefix, name, priority, url_prefix) VALUES"
              " ('s3://noaa-gefs-pds/', 'rc_lacking', 21, %s)", (f"{FAULT}/fault/status/404/noaa-gefs-pds/",))
    yield db
    query(db, "DELETE FROM gik.mirror WHERE name = 'rc_lacking'")
    query(db, "SELECT gik.drop_dataset('rc_small')")


@pytest.mark.parametrize("as_of,mirrors,want", [
    ("2025-10-03 06:00+00", "", "2025-10-03 00:00+00"),
    ("2025-10-02 23:00+00", "", "2025-10-02 00:00+00"),
    ("2025-10-03 06:00+00", "rc_lacking,aws", "2025-10-03 00:00+00"),  # the second mirror has it
    ("2025-10-03 06:00+00", "rc_lacking", None),                       # no mirror has any run
    ("2025-09-20 00:00+00", "", None),                                 # nothing in the lookback
])
def test_latest_run_across_mirrors(small_gefs, as_of, mirrors, want):
    assert all(published(d, m, 24) for d in ("20251001", "20251002", "20251003") for m in range(3))
    query(small_gefs, "SET gik.mirrors = %s", (mirrors,))
    got = scalar(small_gefs, "SELECT gik.latest_run('rc_small', %s, '3 days')", (as_of,))
    query(small_gefs, "RESET gik.mirrors")
    want_t = scalar(small_gefs, "SELECT %s::timestamptz", (want,)) if want else None
    assert got == want_t


def test_latest_run_needs_every_member_of_the_last_step(small_gefs):
    """A run whose last step lacks one member's file is not complete: member 7 of the ladder at f012."""
    query(small_gefs, "UPDATE gik.dataset SET steps = gik.step_list('0-12/6'), members = '{6,7}' WHERE name = 'rc_small'")
    query(small_gefs, "UPDATE gik.dataset_source s SET members = '{6,7}', member_tokens = '{gep06,gep07}'"
                      " FROM gik.dataset d WHERE d.dataset_id = s.dataset_id AND d.name = 'rc_small'")
    assert not published("20251003", 7, 12) and published("20251003", 6, 12)
    # 2025-10-01 and -02 have no members 6 and 7 at all: nothing is complete
    assert scalar(small_gefs, "SELECT gik.latest_run('rc_small', '2025-10-03 06:00+00', '3 days')") is None
    code, _, _ = error_of(small_gefs, "SELECT gik.latest_run('rc_small', NULL)")
    assert code == "22023"
