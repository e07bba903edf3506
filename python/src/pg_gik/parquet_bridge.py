"""The parquet bridge: GIK [key, value] parquet files and kerchunk parquet references in and out of pg_gik.

- `import_gik_parquet` loads GIK's `[key, value]` parquet files through `gik.import_gik_table` (optionally then
  writing the runs to Icechunk);
- `export_kerchunk_parquet` writes `gik.manifest` in kerchunk's parquet reference layout (fsspec's
  `LazyReferenceMapper`: `.zmetadata` plus `VAR/refs.N.parq` with columns path, offset, size, raw);
- `import_kerchunk_parquet` reads that layout back and feeds `gik.import_kerchunk`.

Every import is one transaction: an error leaves the catalog as it was. Nothing here reads GRIB bytes.
"""
import argparse
import base64
import json
import math
import os
import pathlib
import shutil
import tempfile

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq

from .catalog import GikError, format_init, parse_init

# fsspec's LazyReferenceMapper layout.
ZMETADATA = ".zmetadata"
REF_COLUMNS = ("path", "offset", "size", "raw")
DEFAULT_RECORD_SIZE = 100_000
# offset and size are required: fastparquet (fsspec's default reader) reads optional integers as float64.
# The pandas metadata says so too, as kerchunk's own files (written by fastparquet) do.
REF_SCHEMA = pa.schema(
    [pa.field("path", pa.string()), pa.field("offset", pa.int64(), nullable=False),
     pa.field("size", pa.int64(), nullable=False), pa.field("raw", pa.binary())],
    metadata={"pandas": json.dumps({
        "index_columns": [], "column_indexes": [], "partition_columns": [],
        "columns": [{"name": n, "field_name": n, "pandas_type": pt, "numpy_type": nt, "metadata": None}
                    for n, pt, nt in (("path", "unicode", "object"), ("offset", "int64", "int64"),
                                      ("size", "int64", "int64"), ("raw", "bytes", "object"))],
        "creator": {"library": "pg_gik"}})})


class BridgeError(GikError):
    """A parquet bridge failure, naming the file, key or run at fault (sqlstate: the database's, when it raised)."""

    def __init__(self, message, sqlstate=None):
        super().__init__(message)
        self.sqlstate = sqlstate


def _database_error(what, err):
    """A BridgeError for a failed statement: what was attempted, PostgreSQL's message and SQLSTATE."""
    diag = err.diag
    text = diag.message_primary or str(err).strip()
    if diag.message_detail:
        text += f" ({diag.message_detail})"
    return BridgeError(f"{what}: {text}" + (f" [SQLSTATE {diag.sqlstate}]" if diag.sqlstate else ""),
                       sqlstate=diag.sqlstate)


def _init(value):
    """An initialisation time (datetime or text such as 2025-10-01T00Z) as a UTC datetime; None stays None."""
    return None if value is None else parse_init(value)


# GIK [key, value] parquet files ------------------------------------------------------------------------------

def _value_bytes(v):
    """A GIK value as bytes: strings as UTF-8, binary as is, lists (a reference) as JSON."""
    if v is None or isinstance(v, bytes):
        return v
    if isinstance(v, str):
        return v.encode("utf-8")
    return json.dumps(v).encode("utf-8")


def read_gik_parquet(path):
    """The (key, value bytes) rows of one GIK parquet file (columns key and value or reference; the key may be
    pandas' index, as ecmwf_index_processor writes it). Raises BridgeError naming the file when it is not one."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise BridgeError(f'GIK parquet file "{path}" does not exist')
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as e:
        raise BridgeError(f'"{path}" is not a parquet file: {e}') from e
    names = table.column_names
    value_col = "value" if "value" in names else "reference" if "reference" in names else None
    if "key" not in names or value_col is None:
        hint = (" It looks like kerchunk's parquet reference layout: use kerchunk-parquet import on its directory."
                if set(REF_COLUMNS) <= set(names) else "")
        raise BridgeError(f'"{path}" is not a GIK reference file: it needs a key column and a value (or reference) '
                          f'column, and has {", ".join(names) or "no columns"}.{hint}')
    key_type = table.schema.field("key").type
    if not (pa.types.is_string(key_type) or pa.types.is_large_string(key_type)):
        raise BridgeError(f'"{path}" is not a GIK reference file: its key column is {key_type}, not text')
    keys = table.column("key").to_pylist()
    values = table.column(value_col).to_pylist()
    rows = []
    for i, (k, v) in enumerate(zip(keys, values)):
        if k is None or v is None:
            raise BridgeError(f'"{path}" row {i}: a GIK reference row needs a key and a value'
                              + (f' (key "{k}" has none)' if k is not None else ""))
        rows.append((k, _value_bytes(v)))
    if not rows:
        raise BridgeError(f'"{path}" holds no GIK reference rows')
    return rows


def import_gik_parquet(conninfo, files, dataset, init_time=None, member=None, url_prefix=None, window_reset=None,
                       learn_templates=None, icechunk=None):
    """Import GIK [key, value] parquet files into a dataset with gik.import_gik_table, in one transaction (each
    file is one reference set: its name is the staging table's source). With icechunk (a repository path, URL or
    icechunk.Storage) the imported runs are then written to Icechunk with pg_gik.icechunk.export_runs, which
    needs each field's grid: learn_templates (default: on with icechunk) fetches one message per field that the
    files carry no metadata for (GIK's ECMWF layout has none). Returns the runs imported as dicts (init_time,
    version, refs, and icechunk: the export's ExportResult)."""
    if isinstance(files, (str, os.PathLike)):
        files = [files]
    if not files:
        raise BridgeError("no GIK parquet file given")
    init_time = _init(init_time)
    export_runs = _icechunk_writer() if icechunk is not None else None
    if learn_templates is None:
        learn_templates = icechunk is not None
    staged = [(str(f), read_gik_parquet(f)) for f in files]     # every file is read and checked before any write
    names = [s for s, _ in staged]
    if len(set(names)) != len(names):
        raise BridgeError(f"the same file is given twice: {sorted({n for n in names if names.count(n) > 1})}")
    try:
        with psycopg.connect(conninfo) as conn:
            with conn.cursor() as cur:
                cur.execute("CREATE TEMP TABLE gik_parquet_staging (source text, key text, value bytea) ON COMMIT DROP")
                with cur.copy("COPY gik_parquet_staging (source, key, value) FROM STDIN") as copy:
                    for source, rows in staged:
                        for k, v in rows:
                            copy.write_row((source, k, v))
                cur.execute("""SELECT init_time, version, refs FROM gik.import_gik_table(
                                   %s, 'gik_parquet_staging'::regclass, init_time => %s, member => %s,
                                   url_prefix => %s, window_reset => %s, learn_templates => %s)""",
                            (dataset, init_time, member, url_prefix, window_reset, learn_templates))
                runs = [dict(init_time=r[0], version=r[1], refs=r[2]) for r in cur.fetchall()]
    except psycopg.Error as e:
        raise _database_error(f'import of {", ".join(names)} into dataset "{dataset}" failed', e) from e
    if export_runs is not None:
        for r, result in zip(runs, export_runs(conninfo, dataset, [r["init_time"] for r in runs], icechunk)):
            r["icechunk"] = result
    return runs


def _icechunk_writer():
    """pg_gik.icechunk.export_runs, checked before anything is imported."""
    try:
        from pg_gik.icechunk import export_runs
    except ImportError as e:
        raise BridgeError(f"--icechunk needs pg_gik.icechunk.export_runs, which cannot be imported: {e}") from e
    return export_runs


def _icechunk_repo():
    """pg_gik.icechunk.repo_target (a directory, file://PATH or s3://BUCKET/PREFIX as pg-gik icechunk takes)."""
    _icechunk_writer()
    from pg_gik.icechunk import repo_target
    return repo_target


# kerchunk parquet references (fsspec LazyReferenceMapper) -----------------------------------------------------

def _chunk_grid(zarray):
    """The number of chunks along each axis of a Zarr v2 array ([1] for a scalar, as fsspec counts it)."""
    return [math.ceil(s / c) for s, c in zip(zarray["shape"], zarray["chunks"])] or [1]


def _chunk_number(chunk, grid):
    """The C-order position of a chunk key ("0.1.2") on its chunk grid."""
    idx = [int(c) for c in chunk.split(".")]
    if len(idx) != len(grid) or any(not 0 <= i < n for i, n in zip(idx, grid)):
        raise ValueError(f"chunk {chunk} is outside the chunk grid {grid}")
    n = 0
    for i, size in zip(idx, grid):
        n = n * size + i
    return n


def _chunk_key(number, grid):
    """The chunk key ("0.1.2") at a C-order position of a chunk grid."""
    idx = []
    for size in reversed(grid):
        idx.append(number % size)
        number //= size
    return ".".join(str(i) for i in reversed(idx))


def _runs_selected(conn, dataset, init_from, init_to):
    """The initialisation times of a dataset's runs in the selection (every run when init_from is None)."""
    return [r[0] for r in conn.execute(
        """SELECT r.init_time FROM gik.run r JOIN gik.dataset d USING (dataset_id)
           WHERE d.name = %(d)s AND (%(lo)s::timestamptz IS NULL
                 OR r.init_time BETWEEN %(lo)s AND coalesce(%(hi)s::timestamptz, %(lo)s))
           ORDER BY 1""", dict(d=dataset, lo=init_from, hi=init_to))]


def _write_refs(path, rows):
    """One refs.N.parq file: columns path, offset, size, raw as fsspec's LazyReferenceMapper reads them."""
    table = pa.table([pa.array([r[i] for r in rows], REF_SCHEMA.field(i).type) for i in range(4)], schema=REF_SCHEMA)
    pq.write_table(table, path, compression="zstd", write_statistics=False)


def write_kerchunk_parquet(refs, out_dir, record_size=DEFAULT_RECORD_SIZE):
    """Write a kerchunk reference dict ({key: JSON text | "base64:…" | [url, offset, length]}) as fsspec's parquet
    layout in out_dir, replacing it atomically (a failure leaves out_dir as it was)."""
    out_dir = pathlib.Path(out_dir)
    metadata, fields = {}, {}
    for key, value in refs.items():
        if key.rsplit("/", 1)[-1].startswith(".z"):
            metadata[key] = json.loads(value) if isinstance(value, (str, bytes)) else value
        else:
            field, chunk = key.rsplit("/", 1) if "/" in key else ("", key)
            fields.setdefault(field, {})[chunk] = value
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        for field, chunks in fields.items():
            zarray = metadata.get(f"{field}/.zarray")
            if zarray is None:
                raise BridgeError(f'chunk "{field}/{next(iter(chunks))}" has no array ({field}/.zarray)')
            grid = _chunk_grid(zarray)
            total = math.prod(grid)
            slots = {}
            for chunk, value in chunks.items():
                try:
                    slots[_chunk_number(chunk, grid)] = value
                except ValueError as e:
                    raise BridgeError(f'chunk "{field}/{chunk}": {e}') from e
            (tmp / field).mkdir(parents=True, exist_ok=True)
            for record in range(math.ceil(total / record_size)):
                first = record * record_size
                if not any(first <= n < first + record_size for n in slots):
                    continue                                     # fsspec reads an absent record as missing chunks
                rows = []
                for n in range(first, first + record_size):      # every record has record_size rows, as kerchunk's
                    v = slots.get(n)
                    if v is None:
                        rows.append((None, 0, 0, None))
                    elif isinstance(v, list):
                        rows.append((v[0], v[1], v[2]) + (None,) if len(v) == 3 else (v[0], 0, 0, None))
                    else:
                        raw = v.encode() if isinstance(v, str) else v
                        rows.append((None, 0, 0, base64.b64decode(raw[7:]) if raw.startswith(b"base64:") else raw))
                _write_refs(tmp / field / f"refs.{record}.parq", rows)
        (tmp / ZMETADATA).write_text(json.dumps({"metadata": metadata, "record_size": record_size}))
        os.chmod(tmp, 0o755)
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            out_dir.rename(old)
            tmp.rename(out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def export_kerchunk_parquet(conninfo, dataset, out_dir, init_from=None, init_to=None, variables=None,
                            url_style="s3", record_size=DEFAULT_RECORD_SIZE):
    """Export a run (init_from), a range of runs ([init_from, init_to]) or every run of a dataset from gik.manifest
    (Zarr format 2) as kerchunk parquet references in out_dir. Returns the number of chunk references written."""
    init_from, init_to = _init(init_from), _init(init_to)
    try:
        with psycopg.connect(conninfo) as conn:
            conn.execute("SELECT gik.dataset_named(%s)", (dataset,))
            if not _runs_selected(conn, dataset, init_from, init_to):
                which = ("no run" if init_from is None else f"no run at {format_init(init_from)}" if init_to is None
                         else f"no run between {format_init(init_from)} and {format_init(init_to)}")
                raise BridgeError(f'dataset "{dataset}" has {which}', sqlstate="P0002")
            rows = conn.execute("""SELECT key, value::text, kind FROM gik.manifest(%s, %s, %s, %s, %s, 2)""",
                                (dataset, init_from, init_to, variables, url_style)).fetchall()
    except psycopg.Error as e:
        raise _database_error(f'export of dataset "{dataset}" failed', e) from e
    refs = {k: (v if kind == "metadata" else json.loads(v)) for k, v, kind in rows}
    write_kerchunk_parquet(refs, out_dir, record_size)
    return sum(1 for _, _, kind in rows if kind == "chunk")


def read_kerchunk_parquet(ref_dir):
    """A kerchunk v1 document {"version": 1, "refs": {...}} from a kerchunk parquet reference directory (metadata
    as JSON text, inline data as base64:, references as [url, offset, length]). Errors name the file at fault."""
    ref_dir = pathlib.Path(ref_dir)
    meta_path = ref_dir / ZMETADATA
    if not meta_path.is_file():
        raise BridgeError(f'"{ref_dir}" is not a kerchunk parquet reference directory: it has no {ZMETADATA}')
    try:
        meta = json.loads(meta_path.read_text())
        metadata, record_size = meta["metadata"], int(meta["record_size"])
    except (ValueError, KeyError, TypeError) as e:
        raise BridgeError(f'"{meta_path}" is not kerchunk parquet metadata '
                          f'(JSON with metadata and record_size): {e}') from e
    refs = {k: json.dumps(v) for k, v in metadata.items()}
    for key, zarray in metadata.items():
        if not (key == ".zarray" or key.endswith("/.zarray")):
            continue
        field = key[: -len("/.zarray")] if "/" in key else ""
        grid = _chunk_grid(zarray)
        total = math.prod(grid)
        prefix = f"{field}/" if field else ""
        for record in range(math.ceil(total / record_size)):
            path = ref_dir / field / f"refs.{record}.parq"
            if not path.exists():
                continue                                          # as fsspec: no record file, no chunks
            try:
                table = pq.read_table(path)
            except (pa.ArrowException, OSError) as e:
                raise BridgeError(f'"{path}" is not a parquet file: {e}') from e
            missing = [c for c in ("path", "offset", "size") if c not in table.column_names]
            if missing:
                raise BridgeError(f'"{path}" is not a kerchunk reference file: it has no {", ".join(missing)} column')
            cols = {c: table.column(c).to_pylist() if c in table.column_names else [None] * table.num_rows
                    for c in REF_COLUMNS}
            first = record * record_size
            for i, (url, offset, size, raw) in enumerate(zip(*(cols[c] for c in REF_COLUMNS))):
                n = first + i
                if n >= total:
                    break
                k = prefix + _chunk_key(n, grid)
                if raw is not None:
                    refs[k] = "base64:" + base64.b64encode(raw).decode("ascii")
                elif url is not None:
                    refs[k] = [url] if (offset, size) == (0, 0) else [url, offset, size]
    return {"version": 1, "refs": refs}


def import_kerchunk_parquet(conninfo, ref_dir, dataset, init_time=None, member=None, url_prefix=None,
                            window_reset=None):
    """Import a kerchunk parquet reference directory into a dataset with gik.import_kerchunk (one transaction).
    Returns the runs imported as dicts (init_time, version, refs)."""
    init_time = _init(init_time)
    doc = read_kerchunk_parquet(ref_dir)
    try:
        with psycopg.connect(conninfo) as conn:
            rows = conn.execute("""SELECT init_time, version, refs FROM gik.import_kerchunk(
                                       %s, %s::json, init_time => %s, member => %s, url_prefix => %s,
                                       window_reset => %s)""",
                                (dataset, json.dumps(doc), init_time, member, url_prefix, window_reset)).fetchall()
    except psycopg.Error as e:
        raise _database_error(f'import of "{ref_dir}" into dataset "{dataset}" failed', e) from e
    return [dict(init_time=r[0], version=r[1], refs=r[2]) for r in rows]


# Command line -----------------------------------------------------------------------------------------------

def _print_runs(runs):
    """One line per imported run."""
    for r in runs:
        ic = r.get("icechunk")
        print(f"{format_init(r['init_time'])} version {r['version']}: {r['refs']} references"
              + (f"; icechunk: {ic.action} {ic.snapshot or ''}".rstrip() if ic else ""))


def _conninfo(args):
    """The connection string: pg-gik's --conninfo (default: the PG* environment)."""
    return getattr(args, "conninfo", None) or ""


def _cmd_parquet_import(args):
    """pg-gik parquet-import."""
    repo = None
    if args.icechunk is not None:
        repo = _icechunk_repo()(args.icechunk, endpoint_url=args.endpoint_url, region=args.region)
    _print_runs(import_gik_parquet(_conninfo(args), args.files, args.dataset, init_time=args.init_time,
                                   member=args.member, url_prefix=args.url_prefix, window_reset=args.window_reset,
                                   learn_templates=args.learn_templates, icechunk=repo))
    return 0


def _cmd_kerchunk_export(args):
    """pg-gik kerchunk-parquet export."""
    n = export_kerchunk_parquet(_conninfo(args), args.dataset, args.out, init_from=args.init_from,
                                init_to=args.init_to, variables=args.variables, url_style=args.url_style,
                                record_size=args.record_size)
    print(f"{n} references written to {args.out}")
    return 0


def _cmd_kerchunk_import(args):
    """pg-gik kerchunk-parquet import."""
    _print_runs(import_kerchunk_parquet(_conninfo(args), args.dir, args.dataset, init_time=args.init_time,
                                        member=args.member, url_prefix=args.url_prefix,
                                        window_reset=args.window_reset))
    return 0


def _import_options(p):
    """The options that fill in what the references do not say (as gik.import_kerchunk's)."""
    p.add_argument("--dataset", required=True, help="the dataset to import into (created when it does not exist)")
    p.add_argument("--init-time", help="initialisation time (e.g. 2025-10-01T00Z), when the references do not give it")
    p.add_argument("--member", type=int, help="ensemble member, when the references do not give it")
    p.add_argument("--url-prefix", help="put before relative URLs")
    p.add_argument("--window-reset", type=int, help="statistical windows restart every N hours (GEFS APCP: 6)")


def add_commands(subparsers):
    """Register parquet-import and kerchunk-parquet {export,import} on pg-gik's subparsers; each sets
    args.func(args) -> exit status and reads the connection string from args.conninfo (pg-gik's --conninfo)."""
    p = subparsers.add_parser("parquet-import", help="import GIK [key, value] parquet files",
                              description="Import GIK [key, value] parquet files (one reference set per file) "
                                          "with gik.import_gik_table, in one transaction.")
    p.add_argument("files", nargs="+", metavar="FILE")
    _import_options(p)
    p.add_argument("--icechunk", metavar="REPO",
                   help="then write the imported runs to this Icechunk repository (pg_gik.icechunk.export_runs)")
    p.add_argument("--endpoint-url", help="S3 endpoint of an s3:// --icechunk repository (e.g. http://127.0.0.1:9000)")
    p.add_argument("--region", default=None, help="region of an s3:// --icechunk repository")
    p.add_argument("--learn-templates", action=argparse.BooleanOptionalAction, default=None,
                   help="fetch one message per field for its template (default: only with --icechunk)")
    p.set_defaults(func=_cmd_parquet_import)

    k = subparsers.add_parser("kerchunk-parquet", help="kerchunk parquet references (fsspec LazyReferenceMapper)")
    ks = k.add_subparsers(dest="kerchunk_command", required=True)
    e = ks.add_parser("export", help="write a dataset's runs as kerchunk parquet references")
    e.add_argument("dataset")
    e.add_argument("out", help="output directory (replaced)")
    e.add_argument("--init-from", help="the run, or the first run of a range (default: every run)")
    e.add_argument("--init-to", help="the last run of the range")
    e.add_argument("--variables", nargs="*", default=None, help="index variables or Zarr names (default: all)")
    e.add_argument("--url-style", choices=("s3", "http"), default="s3")
    e.add_argument("--record-size", type=int, default=DEFAULT_RECORD_SIZE, help="references per refs.N.parq file")
    e.set_defaults(func=_cmd_kerchunk_export)
    i = ks.add_parser("import", help="import a kerchunk parquet reference directory")
    i.add_argument("dir")
    _import_options(i)
    i.set_defaults(func=_cmd_kerchunk_import)
