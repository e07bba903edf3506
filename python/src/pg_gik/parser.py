"""VirtualiZarr parsers: parser(url, registry) -> ManifestStore for gik://DATASET/INIT URLs."""
from __future__ import annotations

import numpy as np
from virtualizarr.manifests import ChunkManifest, ManifestArray, ManifestGroup, ManifestStore
from virtualizarr.manifests.manifest import INLINED_CHUNK_PATH
from virtualizarr.manifests.utils import create_v3_array_metadata

from .catalog import GikError, parse_gik_url, read_run
from .layout import DTYPE, Coord, GribArray, run_layout

BYTES_CODEC = [{"name": "bytes", "configuration": {"endian": "little"}}]


class GikParser:
    """A VirtualiZarr parser of runs in a pg_gik catalog: GikParser(conninfo)("gik://gefs_0p25/2025-10-01T00Z",
    registry) returns a ManifestStore with one array per variable, level and statistic (float32, NaN fill, one
    GRIB message per chunk, the gribberish codec) on dims member, step, latitude, longitude (init_time first with
    init_time_dim=True, to append runs). Coordinates come from pg_gik's grid description in the chosen longitude
    convention ('source', '-180..180'). url_style 's3' keeps the stored URLs, 'http' uses gik.resolve_url()."""

    dataset: str | None = None
    default_members = None
    default_variables = None

    def __init__(self, conninfo: str = "", variables=None, members=None, steps=None, longitude: str = "source",
                 url_style: str = "s3", init_time_dim: bool = False):
        if url_style not in ("s3", "http"):
            raise GikError(f"invalid url_style {url_style!r}: use 's3' or 'http'")
        self.conninfo = conninfo
        self.variables = self.default_variables if variables is None else variables
        self.members = self.default_members if members is None else members
        self.steps = steps
        self.longitude = longitude
        self.url_style = url_style
        self.init_time_dim = init_time_dim

    def __call__(self, url: str, registry=None) -> ManifestStore:
        dataset, init = parse_gik_url(url)
        if self.dataset is not None and dataset != self.dataset:
            raise GikError(f"{type(self).__name__} reads dataset {self.dataset!r}, not {url!r}")
        run = read_run(self.conninfo, dataset, init, self.variables, self.members, self.steps, self.longitude)
        layout = run_layout(run, init_time_dim=self.init_time_dim)
        arrays = {c.name: _inline_array(c) for c in layout.coords}
        arrays.update({a.name: self._grib_array(a) for a in layout.arrays})
        return ManifestStore(ManifestGroup(arrays=arrays, attributes=layout.attrs), registry=registry)

    def _grib_array(self, a: GribArray) -> ManifestArray:
        meta = create_v3_array_metadata(shape=a.shape, data_type=DTYPE, chunk_shape=a.chunk_shape,
                                        fill_value=float("nan"), codecs=[a.codec], attributes=a.attrs,
                                        dimension_names=a.dims)
        grid = tuple(s // c for s, c in zip(a.shape, a.chunk_shape))
        paths = np.full(grid, "", dtype=np.dtypes.StringDType())
        offsets = np.zeros(grid, dtype=np.uint64)
        lengths = np.zeros(grid, dtype=np.uint64)
        for idx, c in a.refs:
            paths[idx], offsets[idx], lengths[idx] = c.location(self.url_style), c.offset, c.length
        return ManifestArray(metadata=meta, chunkmanifest=ChunkManifest.from_arrays(
            paths=paths, offsets=offsets, lengths=lengths))


def _inline_array(c: Coord) -> ManifestArray:
    """A coordinate as one inlined chunk of little-endian bytes."""
    vals = np.ascontiguousarray(c.values, dtype=c.values.dtype.newbyteorder("<"))
    fill = float("nan") if vals.dtype.kind == "f" else 0
    meta = create_v3_array_metadata(shape=vals.shape, data_type=vals.dtype, chunk_shape=vals.shape,
                                    fill_value=fill, codecs=BYTES_CODEC, attributes=c.attrs, dimension_names=c.dims)
    one = (1,) * vals.ndim
    return ManifestArray(metadata=meta, chunkmanifest=ChunkManifest.from_arrays(
        paths=np.full(one, INLINED_CHUNK_PATH, dtype=np.dtypes.StringDType()),
        offsets=np.zeros(one, dtype=np.uint64), lengths=np.full(one, vals.nbytes, dtype=np.uint64),
        inlined={(0,) * vals.ndim: vals.tobytes()}))


class GEFSParser(GikParser):
    """GikParser for NOAA GEFS 0.25° (dataset gefs_0p25): precipitation (APCP:surface) of the control
    and the 30 perturbed members by default."""
    dataset = "gefs_0p25"
    default_variables = ["APCP:surface"]
    default_members = list(range(31))

    def __call__(self, url: str, registry=None) -> ManifestStore:
        return super().__call__(_with_dataset(url, self.dataset), registry)


class ECMWFParser(GikParser):
    """GikParser for ECMWF IFS ENS 0.25° (dataset ecmwf_ens_0p25): total precipitation (tp/sfc) of the
    control and the 50 perturbed members by default."""
    dataset = "ecmwf_ens_0p25"
    default_variables = ["tp/sfc"]
    default_members = list(range(51))

    def __call__(self, url: str, registry=None) -> ManifestStore:
        return super().__call__(_with_dataset(url, self.dataset), registry)


def _with_dataset(url: str, dataset: str) -> str:
    """gik://INIT (no dataset) means the parser's dataset."""
    if url.startswith("gik://") and "/" not in url[len("gik://"):].strip("/"):
        return f"gik://{dataset}/{url[len('gik://'):].strip('/')}"
    return url
