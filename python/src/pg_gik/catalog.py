"""The one reader of a run's chunk references: gik.manifest() (Zarr v3) plus each GRIB file's identity
(gik.file) and each variable's grid (gik.field_grid, gik.output_grid). Every output builds on read_run()."""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

import psycopg

LONGITUDES = ("source", "-180..180", "0..360")
URL_STYLES = ("s3", "http")


class GikError(Exception):
    """An error of pg_gik's client, naming the dataset, run, URL or repository at fault."""


class RunNotFound(GikError, LookupError):
    """The catalog has no such run."""


@dataclass(frozen=True)
class ChunkRef:
    """One GRIB message: its keys (member, window) and where it is (stored URL, resolved URL, byte range),
    with the GRIB object's identity when ingested (ETag, Last-Modified, size)."""
    member: int | None
    step: float
    window_start: float | None
    url: str
    http_url: str
    offset: int
    length: int
    etag: str | None
    last_modified: dt.datetime | None
    file_size: int | None

    def location(self, url_style: str) -> str:
        return self.http_url if url_style == "http" else self.url


@dataclass(frozen=True)
class Grid:
    """A variable's output grid, from pg_gik's grid description (never from GRIB bytes): north-up rows,
    west-to-east columns in the chosen longitude convention. adjust_longitude: the source columns must be
    rolled to 0..360 → -180..180 (what gribberish's adjust_longitude_range does)."""
    grid_type: str
    nj: int
    ni: int
    lats: tuple[float, ...]
    lons: tuple[float, ...]
    source: tuple
    adjust_longitude: bool

    @property
    def shape(self) -> tuple[int, int]:
        return self.nj, self.ni


@dataclass
class VariableRefs:
    """One Zarr variable (one field: variable, level, statistic) of a run and its references."""
    name: str
    field_id: int
    gik_variable: str
    level: str
    stat: str
    attrs: dict
    grid_dims: tuple[str, str]
    grid: Grid
    chunks: list[ChunkRef] = field(default_factory=list)


@dataclass
class RunRefs:
    """A run's references as the catalog holds them now (its current version)."""
    dataset: str
    init_time: dt.datetime
    run_id: int
    version: int
    status: str
    longitude: str
    variables: dict[str, VariableRefs]
    dataset_members: list[int] | None = None   # what a complete run of the dataset has
    dataset_steps: list[float] = field(default_factory=list)

    @property
    def members(self) -> list[int] | None:
        """The members present, ascending; None for a dataset without members."""
        ms = {c.member for v in self.variables.values() for c in v.chunks}
        return None if ms == {None} else sorted(m for m in ms if m is not None)

    @property
    def steps(self) -> list[float]:
        """The step ends (hours) present in any variable, ascending."""
        return sorted({c.step for v in self.variables.values() for c in v.chunks})

    @property
    def run_label(self) -> str:
        return format_init(self.init_time)

    def url_prefixes(self, url_style: str) -> list[str]:
        """The URL prefixes (scheme://bucket-or-host/) the references point into."""
        return sorted({url_prefix(c.location(url_style)) for v in self.variables.values() for c in v.chunks})


# -- names of runs ---------------------------------------------------------------------------------------

_INIT = re.compile(r"^(\d{4})-?(\d{2})-?(\d{2})(?:[T ](\d{2})(?::?(\d{2}))?(?::?\d{2})?)?\s*(Z|[+-]00(?::?00)?)?$", re.I)


def parse_init(value) -> dt.datetime:
    """An initialisation time from a datetime (naive = UTC) or text: 2025-10-01T00Z, 2025-10-01T00:00Z,
    20251001T00, 2025-10-01 00:00+00, 2025-10-01 (00 UTC)."""
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)
    m = _INIT.match(str(value).strip())
    if not m:
        raise GikError(f"invalid initialisation time {value!r}: use e.g. 2025-10-01T00Z")
    y, mo, d, h, mi = (int(g) if g else 0 for g in m.groups()[:5])
    return dt.datetime(y, mo, d, h, mi, tzinfo=dt.timezone.utc)


def format_init(t: dt.datetime) -> str:
    """The run's name in gik:// URLs and commit messages: 2025-10-01T00Z (minutes when not 0)."""
    t = parse_init(t)
    return t.strftime("%Y-%m-%dT%HZ") if t.minute == 0 else t.strftime("%Y-%m-%dT%H:%MZ")


def parse_gik_url(url: str) -> tuple[str, dt.datetime]:
    """(dataset, init_time) of gik://DATASET/INIT."""
    m = re.match(r"^gik://([a-z][a-z0-9_]*)/([^/?#]+)/?$", url or "")
    if not m:
        raise GikError(f"invalid pg_gik URL {url!r}: expected gik://DATASET/INIT, e.g. gik://gefs_0p25/2025-10-01T00Z")
    return m.group(1), parse_init(m.group(2))


def url_prefix(url: str) -> str:
    """scheme://bucket/ of s3://bucket/key, scheme://host[:port]/ of an http(s) URL."""
    m = re.match(r"^([a-z][a-z0-9+.-]*://[^/]+/)", url)
    if not m:
        raise GikError(f"reference URL {url!r} has no scheme://host/ prefix")
    return m.group(1)


# -- reading ---------------------------------------------------------------------------------------------

def connect(conninfo) -> psycopg.Connection:
    """A psycopg 3 connection from a conninfo string ("" = the PG* environment) or an existing connection."""
    if isinstance(conninfo, psycopg.Connection):
        return conninfo
    try:
        return psycopg.connect(conninfo or "", autocommit=True)
    except psycopg.OperationalError as e:
        raise GikError(f"cannot connect to the pg_gik database ({conninfo or 'PG* environment'}): {e}") from e


def _sql_error(e: psycopg.Error, what: str) -> GikError:
    state = e.sqlstate or "?????"
    return GikError(f"{what}: {e.diag.message_primary or e} (SQLSTATE {state})")


def list_runs(conn, dataset: str) -> list[tuple[dt.datetime, int, str]]:
    """(init_time, version, status) of every run of a dataset."""
    return conn.execute(
        "SELECT r.init_time, r.version, r.status FROM gik.run r JOIN gik.dataset d USING (dataset_id) "
        "WHERE d.name = %s ORDER BY r.init_time", (dataset,)).fetchall()


_RUN_SQL = """
SELECT r.run_id, r.version, r.status, d.members, d.steps FROM gik.run r JOIN gik.dataset d USING (dataset_id)
WHERE r.dataset_id = (gik.dataset_named(%(ds)s)).dataset_id AND r.init_time = %(t)s
"""

# Data variables' zarr.json and every chunk of the run.
_MANIFEST_SQL = """
SELECT m.kind, m.variable, m.value, m.member, m.step_start, m.step_end, m.url, m.byte_offset, m.byte_length
FROM gik.manifest(%(ds)s, %(t)s, NULL, %(vars)s, 's3', 3) m
WHERE m.kind = 'chunk' OR (m.kind = 'metadata' AND m.value -> 'codecs' -> 0 ->> 'name' = 'gribberish')
"""

# Each current GRIB file of the run: its identity when ingested and its resolved URL (joined in Python: the
# planner cannot estimate gik.manifest's rows, and a nested loop over them costs seconds).
_FILES_SQL = """
SELECT DISTINCT ON (f.url) f.url, gik.resolve_url(f.url), f.grib_etag, f.grib_last_modified, f.size
FROM gik.file f WHERE f.run_id = %(run)s AND f.valid_to IS NULL
ORDER BY f.url, f.file_id DESC
"""

_GRID_SQL = """
SELECT f.field_id, (g).grid_type, (o).ni, (o).nj, gik.grid_lats(g, %(lon)s), gik.grid_lons(g, %(lon)s),
       (g).ni, (g).nj, (g).lat_first, (g).lon_first, (g).lat_last, (g).lon_last, (g).di, (g).dj, (g).scanning_mode,
       (o).lon_first
FROM gik.field f
CROSS JOIN LATERAL gik.field_grid(f.field_id) g
CROSS JOIN LATERAL (SELECT CASE WHEN (g).grid_type = 'regular_ll' THEN gik.output_grid(g, %(lon)s) END AS o) x
WHERE f.dataset_id = (gik.dataset_named(%(ds)s)).dataset_id
  AND f.variable = %(v)s AND f.level = %(l)s AND f.stat = %(s)s
"""


def run_row(conninfo, dataset: str, init_time) -> tuple:
    """(run_id, version, status, dataset members, dataset steps) of a run, or RunNotFound naming the runs there are."""
    t = parse_init(init_time)
    conn = connect(conninfo)
    try:
        try:
            run = conn.execute(_RUN_SQL, {"ds": dataset, "t": t}).fetchone()
        except psycopg.Error as e:
            raise _sql_error(e, f"dataset {dataset!r}") from e
        if run is None:
            runs = [format_init(r[0]) for r in list_runs(conn, dataset)]
            raise RunNotFound(f"dataset {dataset!r} has no run {format_init(t)} (gik://{dataset}/{format_init(t)}); "
                              f"runs: {', '.join(runs) if runs else 'none'}")
        return run
    finally:
        if conn is not conninfo:
            conn.close()


def read_run(conninfo, dataset: str, init_time, variables=None, members=None, steps=None,
             longitude: str = "source") -> RunRefs:
    """The references of one run (current version): variables as gik.manifest() takes them (index variables
    'APCP', 'APCP:surface', 'tp/sfc'-style names are passed through; Zarr names), members and steps (hours)
    to keep (None: all), longitude convention 'source', '-180..180' or '0..360'."""
    if longitude not in LONGITUDES:
        raise GikError(f"invalid longitude convention {longitude!r}: use one of {', '.join(LONGITUDES)}")
    t = parse_init(init_time)
    conn = connect(conninfo)
    try:
        run_id, version, status, d_members, d_steps = run_row(conn, dataset, t)
        var_list = None if variables is None else [_index_variable(v) for v in _as_list(variables)]
        try:
            rows = conn.execute(_MANIFEST_SQL, {"ds": dataset, "t": t, "vars": var_list}).fetchall()
            files = {r[0]: r[1:] for r in conn.execute(_FILES_SQL, {"run": run_id})}
        except psycopg.Error as e:
            raise _sql_error(e, f"run gik://{dataset}/{format_init(t)}") from e
        keep_m = None if members is None else {int(m) for m in _as_list(members)}
        keep_s = None if steps is None else {float(s) for s in _as_list(steps)}
        out: dict[str, VariableRefs] = {}
        for kind, name, value, *rest in rows:
            if kind == "metadata":
                out[name] = _variable(conn, dataset, name, value, longitude)
        for kind, name, value, member, s0, s1, url, off, n in rows:
            if kind != "chunk":
                continue
            http_url, etag, lm, size = files.get(url, (url, None, None, None))
            if (keep_m is not None and member not in keep_m) or (keep_s is not None and s1 not in keep_s):
                continue
            v = out[name]
            stat = v.stat != ""
            v.chunks.append(ChunkRef(member, float(s1), float(s0) if stat else None, url, http_url or url,
                                     int(off), int(n), etag, lm, size))
        out = {k: v for k, v in out.items() if v.chunks}
        if not out:
            raise GikError(f"run gik://{dataset}/{format_init(t)} has no references for the selection "
                           f"(variables={variables}, members={members}, steps={steps})")
        return RunRefs(dataset, t, run_id, version, status, longitude, dict(sorted(out.items())),
                       d_members, [float(x) for x in d_steps])
    finally:
        if conn is not conninfo:
            conn.close()


def _as_list(x):
    return [x] if isinstance(x, (str, int, float)) else list(x)


def _index_variable(v: str) -> str:
    """'tp/sfc' (ECMWF param/levtype, as GIK names it) → 'tp:sfc'; anything else as given."""
    return v.replace("/", ":", 1) if re.fullmatch(r"[A-Za-z0-9_]+/[A-Za-z0-9_]+", v) else v


def _variable(conn, dataset: str, name: str, meta: dict, longitude: str) -> VariableRefs:
    attrs = meta["attributes"]
    dims = meta["dimension_names"]
    rows = conn.execute(_GRID_SQL, {"ds": dataset, "v": attrs["gik_variable"], "l": attrs["gik_level"],
                                    "s": attrs.get("gik_stat", ""), "lon": longitude}).fetchall()
    (fid, gtype, ni, nj, lats, lons, sni, snj, la0, lo0, la1, lo1, di, dj, scan, out_lo0), = rows
    if gtype != "regular_ll":
        raise GikError(f"variable {name!r} of dataset {dataset!r} is on a {gtype} grid: only regular lat/lon "
                       "grids have generated coordinates")
    src_lon0 = lo0 - 360 if (scan & 128 == 0 and lo0 > lo1) else lo0
    # gribberish can only roll a global 0..360 grid to -180..180; other changes of convention it cannot make.
    adjust = abs(out_lo0 - src_lon0) > 1e-9
    if adjust and not (longitude == "-180..180" and src_lon0 >= 0 and abs(ni * di - 360) < 1e-6):
        raise GikError(f"variable {name!r} of dataset {dataset!r}: the gribberish codec cannot give longitudes "
                       f"{longitude} for a grid starting at {src_lon0}; use longitude='source'")
    grid = Grid(gtype, nj, ni, tuple(lats), tuple(lons), (gtype, sni, snj, la0, lo0, la1, lo1, di, dj, scan), adjust)
    return VariableRefs(name, fid, attrs["gik_variable"], attrs["gik_level"], attrs.get("gik_stat", ""),
                        attrs, (dims[-2], dims[-1]), grid)
