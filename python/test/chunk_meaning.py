"""What each chunk means: the referenced GRIB message's own ecCodes keys against the chunk key's coordinates.

Reading each reference two ways and comparing (fsspec vs zarr) cannot catch references filed under the wrong
key: a store whose member order is reversed reads fine both ways. Here every chunk's message is opened with
ecCodes and its `number`, `stepRange`, `shortName`, level, initialisation time and grid size must be what the
coordinate arrays and the array (read with zarr, never with pg_gik) say at the chunk's position.

- `chunk_mismatches(group, chunks)` is the check for any store zarr opens (kerchunk JSON or parquet through
  fsspec, Icechunk): `chunks` yields (array name, chunk index tuple, message bytes).
- `kerchunk_mismatches(fo)` applies it to a kerchunk reference set (a dict or a parquet directory).
"""
import datetime as dt

import eccodes
import fsspec
import numpy as np
import zarr
from zarr.storage import FsspecStore

# NOAA .idx level names of ecCodes' (typeOfLevel, level), as pg_gik stores them in gik_level.
IDX_LEVELS = {"surface": "surface", "meanSea": "mean sea level", "heightAboveGround": "{} m above ground",
              "isobaricInhPa": "{} mb", "entireAtmosphere": "entire atmosphere (considered as a single layer)"}


def message_keys(message):
    """The ecCodes keys of one GRIB message that say what it is."""
    h = eccodes.codes_new_from_message(bytes(message))
    try:
        get = lambda k: eccodes.codes_get(h, k)  # noqa: E731
        keys = {k: get(k) for k in ("shortName", "stepRange", "typeOfLevel", "level", "dataDate", "dataTime")}
        keys["number"] = get("number") if eccodes.codes_is_defined(h, "number") else None
        keys["levtype"] = get("levtype") if eccodes.codes_is_defined(h, "levtype") else None
        for k in ("Ni", "Nj"):
            keys[k] = get(k) if eccodes.codes_is_defined(h, k) else None
        return keys
    finally:
        eccodes.codes_release(h)


def _dims(arr):
    """An array's dimension names (Zarr v3 metadata or the v2 _ARRAY_DIMENSIONS attribute)."""
    names = getattr(arr.metadata, "dimension_names", None)
    return list(names) if names else list(arr.attrs["_ARRAY_DIMENSIONS"])


def _level_names(k):
    """The ways a message's level is written: ecCodes typeOfLevel, NOAA idx text, ECMWF levtype[/level]."""
    names = {k["typeOfLevel"], f"{k['typeOfLevel']}/{k['level']}"}
    if k["typeOfLevel"] in IDX_LEVELS:
        names.add(IDX_LEVELS[k["typeOfLevel"]].format(k["level"]))
    if k["levtype"]:
        names |= {k["levtype"], f"{k['levtype']}/{k['level']}"}
    return names


def _hours(v):
    """A step as ecCodes prints it (6, 0.5)."""
    return str(int(v)) if float(v).is_integer() else str(v)


def expected_keys(group, name, index):
    """What the message of chunk `index` of array `name` must say, from the group's coordinates and the array's
    attributes: {ecCodes key: value}."""
    arr = group[name]
    attrs = dict(arr.attrs)
    want = {}
    dims = _dims(arr)
    pos = dict(zip(dims, index))
    coords = {c: group[c] for c in pos if c in group and _dims(group[c]) == [c]}
    if "number" in coords and coords["number"][pos["number"]] != -9:
        want["number"] = int(coords["number"][pos["number"]])
    if "time" in coords:
        t = dt.datetime.fromtimestamp(int(coords["time"][pos["time"]]), dt.timezone.utc)
        want["dataDate"], want["dataTime"] = int(t.strftime("%Y%m%d")), int(t.strftime("%H%M"))
    if "step" in coords:
        end = float(coords["step"][pos["step"]])
        starts = attrs.get("gik_window_start")
        start = float(starts[pos["step"]]) if starts is not None else end
        want["stepRange"] = _hours(end) if start == end else f"{_hours(start)}-{_hours(end)}"
    if len(dims) >= 2 and (dims[-2].startswith("latitude") or dims[-2] == "y"):
        want["Nj"], want["Ni"] = (int(n) for n in arr.chunks[-2:])    # one message per chunk: the whole grid
    if "GRIB_shortName" in attrs:
        want["shortName"] = attrs["GRIB_shortName"]
    if "gik_level" in attrs:
        want["level"] = attrs["gik_level"]
    return want


def chunk_mismatches(group, chunks):
    """Every disagreement between a chunk's coordinates and its message's ecCodes keys, as readable strings
    ("tp 0.2.1.0.0: number 0, the key says 2"); empty when every chunk means what its key says."""
    bad, seen = [], 0
    for name, index, message in chunks:
        seen += 1
        got = message_keys(message)
        key = f"{name} {'.'.join(map(str, index))}"
        for k, v in expected_keys(group, name, index).items():
            if k == "level":
                if v not in _level_names(got):
                    bad.append(f"{key}: level {sorted(_level_names(got))}, the key says {v!r}")
            elif got[k] != v:
                bad.append(f"{key}: {k} {got[k]!r}, the key says {v!r}")
    if not seen:
        bad.append("no chunk was checked")
    return bad


def reference_fs(fo, asynchronous=False):
    """fsspec's ReferenceFileSystem over a kerchunk dict or parquet directory, reaching http(s) URLs."""
    return fsspec.filesystem("reference", fo=fo, remote_protocol="http", asynchronous=asynchronous,
                             remote_options={"asynchronous": asynchronous})


def kerchunk_group(fo):
    """The zarr (format 2) group of a kerchunk reference set, read through fsspec."""
    return zarr.open_group(FsspecStore(reference_fs(fo, asynchronous=True), read_only=True, path=""),
                           mode="r", zarr_format=2)


def kerchunk_chunks(fo):
    """(array, chunk index, message bytes) for every [url, offset, length] reference of a kerchunk reference set."""
    fs = reference_fs(fo)
    refs = fs.references
    keys = sorted(k for k in (refs.keys() if hasattr(refs, "keys") else refs)
                  if "/" in k and not k.rsplit("/", 1)[1].startswith(".") and isinstance(refs[k], list))
    data = fs.cat(keys)
    for k in keys:
        name, chunk = k.rsplit("/", 1)
        yield name, tuple(int(i) for i in chunk.split(".")), data[k]


def kerchunk_mismatches(fo):
    """chunk_mismatches() of a kerchunk reference set (dict {"version": 1, "refs": …} or parquet directory)."""
    return chunk_mismatches(kerchunk_group(fo), kerchunk_chunks(fo))
