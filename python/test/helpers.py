"""Test helpers of the pg_gik package: what each chunk of a written store means, checked against the GRIB message
it references (ecCodes keys), and the loopback mirror's files behind a reference URL."""
from __future__ import annotations

import itertools
import os
import pathlib
import re

import numpy as np

ROOT = pathlib.Path(os.environ.get("GIK_TEST_ROOT", "/tmp/pg_gik_test"))
MIRROR = ROOT / "mirror"
HTTP = os.environ.get("GIK_HTTP", "http://127.0.0.1:18765")

MEMBER_DIMS = ("member", "number")
LEVEL_TYPES = {"surface": ("surface", 0), "sfc": ("surface", 0)}


def mirror_file(url: str, roots=None) -> pathlib.Path:
    """The local file behind a reference URL: s3://bucket/key or http://HOST:PORT/bucket/key of a mirror whose
    directory is roots[http://HOST:PORT] (default: the shared mirror)."""
    roots = {HTTP: MIRROR, **(roots or {})}
    if url.startswith("s3://"):
        return roots.get("s3", MIRROR) / url[len("s3://"):]
    for base, root in roots.items():
        if base != "s3" and url.startswith(base.rstrip("/") + "/"):
            return pathlib.Path(root) / url[len(base.rstrip("/")) + 1:]
    if url.startswith("/"):
        return pathlib.Path(url)
    raise AssertionError(f"no mirror file for reference URL {url}")


def read_range(url: str, offset: int, length: int, roots=None) -> bytes:
    with open(mirror_file(url, roots), "rb") as f:
        f.seek(offset)
        return f.read(length)


def message_keys(message: bytes) -> dict:
    """ecCodes' own keys of one GRIB message (ecCodes as the independent reader)."""
    import eccodes
    h = eccodes.codes_new_from_message(message)
    try:
        get = lambda k: eccodes.codes_get(h, k) if eccodes.codes_is_defined(h, k) else None  # noqa: E731
        return {"number": get("number"), "stepRange": str(get("stepRange")), "shortName": get("shortName"),
                "typeOfLevel": get("typeOfLevel"), "level": get("level"),
                "totalLength": eccodes.codes_get(h, "totalLength")}
    finally:
        eccodes.codes_release(h)


def message_values(message: bytes) -> np.ndarray:
    """The message's values, north-up (nj, ni), missing as NaN, by ecCodes."""
    import eccodes
    h = eccodes.codes_new_from_message(message)
    try:
        nj, ni = eccodes.codes_get(h, "Nj"), eccodes.codes_get(h, "Ni")
        vals = eccodes.codes_get_values(h).astype("float64")
        if eccodes.codes_get(h, "bitmapPresent"):
            vals[vals == eccodes.codes_get(h, "missingValue")] = np.nan
        grid = vals.reshape(nj, ni)
        return grid[::-1] if eccodes.codes_get(h, "jScansPositively") else grid
    finally:
        eccodes.codes_release(h)


def expected_level(gik_level: str):
    """(typeOfLevel, level) ecCodes gives for a pg_gik level name."""
    if gik_level in LEVEL_TYPES:
        return LEVEL_TYPES[gik_level]
    m = re.fullmatch(r"(?:pl/|)(\d+)(?: mb)?", gik_level)
    if m:
        return "isobaricInhPa", int(m.group(1))
    m = re.fullmatch(r"(\d+) m above ground", gik_level)
    if m:
        return "heightAboveGround", int(m.group(1))
    raise AssertionError(f"no ecCodes level known for pg_gik level {gik_level!r}")


def _hours(h) -> str:
    return f"{float(h):g}"


def check_chunk_meaning(arrays, read_chunk) -> int:
    """For every chunk of every GRIB array, the referenced message's ecCodes keys (number, stepRange, shortName,
    typeOfLevel/level) must be those its key's coordinates say. arrays: iterable of (name, dims, shape of the chunk
    grid, attrs, coords) with coords {dim: values} (member/number, step in hours) and optionally
    "window_start" (hours, along step); read_chunk(name, idx) returns the chunk's message bytes or None (absent).
    Asserts on the first mismatch; returns the number of chunks checked (asserted > 0)."""
    checked = 0
    for name, dims, grid, attrs, coords in arrays:
        lead = [d for d in dims if d in MEMBER_DIMS or d in ("step", "init_time", "time")]
        level = expected_level(attrs["gik_level"])
        for idx in itertools.product(*(range(n) for n in grid)):
            msg = read_chunk(name, idx)
            if msg is None:
                continue
            pos = dict(zip(dims, idx))
            keys = message_keys(msg)
            where = f"{name} chunk {'.'.join(map(str, idx))} ({', '.join(f'{d}={pos[d]}' for d in lead)})"
            assert keys["totalLength"] == len(msg), f"{where}: not exactly one GRIB message"
            mdim = next((d for d in dims if d in MEMBER_DIMS), None)
            if mdim is not None:
                assert keys["number"] == int(coords[mdim][pos[mdim]]), \
                    f"{where}: member {coords[mdim][pos[mdim]]} but the message is number {keys['number']}"
            step = coords["step"][pos["step"]]
            ws = coords.get("window_start")
            start = None if ws is None or attrs.get("gik_stat", "") == "" else ws[pos["step"]]
            want = _hours(step) if start is None or float(start) == float(step) else f"{_hours(start)}-{_hours(step)}"
            assert keys["stepRange"] == want, f"{where}: stepRange {keys['stepRange']}, the key says {want}"
            assert keys["shortName"] == attrs["GRIB_shortName"], \
                f"{where}: shortName {keys['shortName']}, the array is {attrs['GRIB_shortName']}"
            assert (keys["typeOfLevel"], keys["level"]) == level, \
                f"{where}: level {keys['typeOfLevel']}/{keys['level']}, the array is {attrs['gik_level']}"
            checked += 1
    assert checked > 0, "no chunk was checked"
    return checked


def zarr_group_arrays(group, window_start=None):
    """check_chunk_meaning's arrays from an open zarr group (v2 or v3): its GRIB arrays (GRIB_shortName attribute)
    with their coordinates read from the group. window_start(name, attrs) → the window starts along step (default:
    the NAME_window_start coordinate, else the gik_window_start attribute)."""
    out = []
    for name, arr in group.arrays():
        attrs = dict(arr.attrs)
        if "GRIB_shortName" not in attrs:
            continue
        dims = tuple(attrs.get("_ARRAY_DIMENSIONS") or arr.metadata.dimension_names)
        coords = {d: np.asarray(group[d][:]) for d in dims if d in MEMBER_DIMS or d == "step"}
        if window_start is not None:
            coords["window_start"] = window_start(name, attrs)
        elif f"{name}_window_start" in group:
            coords["window_start"] = np.asarray(group[f"{name}_window_start"][:])
        elif attrs.get("gik_window_start") is not None:
            coords["window_start"] = [np.nan if x is None else x for x in attrs["gik_window_start"]]
        grid = tuple(s // c for s, c in zip(arr.shape, arr.chunks))
        out.append((name, dims, grid, attrs, coords))
    return out
