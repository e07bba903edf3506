"""The Zarr layout of a run's references (one RunRefs → coordinate arrays and GRIB arrays with each chunk's
grid index), shared by the VirtualiZarr parser and the Icechunk export."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import __version__
from .catalog import ChunkRef, GikError, RunRefs

DTYPE = np.dtype("float32")
EPOCH_UNITS = "seconds since 1970-01-01T00:00:00"


@dataclass
class Coord:
    name: str
    dims: tuple[str, ...]
    values: np.ndarray
    attrs: dict


@dataclass
class GribArray:
    name: str
    dims: tuple[str, ...]
    shape: tuple[int, ...]
    chunk_shape: tuple[int, ...]
    codec: dict
    attrs: dict
    refs: list[tuple[tuple[int, ...], ChunkRef]]


@dataclass
class Layout:
    attrs: dict
    coords: list[Coord]
    arrays: list[GribArray]


def codec(name: str, adjust_longitude: bool) -> dict:
    """The gribberish codec as gribberish.zarr.codec.GribberishCodec.from_dict accepts it: var, and
    adjust_longitude_range / north_up only when set (it rejects any other key)."""
    conf = {"var": name, "north_up": True}
    if adjust_longitude:
        conf["adjust_longitude_range"] = True
    return {"name": "gribberish", "configuration": conf}


def run_attrs(run: RunRefs) -> dict:
    return {"gik_dataset": run.dataset, "gik_run": run.run_label, "gik_init_time": run.init_time.isoformat(),
            "gik_run_version": run.version, "gik_run_status": run.status, "gik_longitude": run.longitude,
            "pg_gik_client": __version__, "Conventions": "CF-1.7",
            "history": f"pg_gik references of dataset {run.dataset}, run {run.run_label} version {run.version}"}


def run_layout(run: RunRefs, init_time_dim: bool = False, members=None, steps=None) -> Layout:
    """The arrays of one run. Axes: member (if the dataset has members), step (hours of the window ends) and each
    variable's grid dimensions; with init_time_dim a leading init_time axis of length 1, so runs append along it.
    members/steps give the axes explicitly (e.g. a repository's), else those present in the run."""
    mem = run.members if members is None else members
    stp = run.steps if steps is None else steps
    if mem is not None and run.members is None:
        raise GikError(f"run gik://{run.dataset}/{run.run_label} has no members but the target has a member axis")
    extra = sorted(set(run.members or []) - set(mem or [])), sorted(set(run.steps) - set(stp))
    if extra[0] or extra[1]:
        raise GikError(f"run gik://{run.dataset}/{run.run_label} has members {extra[0]} / steps {extra[1]} "
                       "outside the target's axes")
    m_pos = {m: i for i, m in enumerate(mem or [])}
    s_pos = {s: i for i, s in enumerate(stp)}
    lead_dims = (("init_time",) if init_time_dim else ()) + (("member",) if mem is not None else ()) + ("step",)
    lead_shape = ((1,) if init_time_dim else ()) + ((len(mem),) if mem is not None else ()) + (len(stp),)
    t = np.int64(run.init_time.timestamp())
    step_h = np.asarray(stp, dtype="float64")
    coords = [Coord("step", ("step",), step_h, {"long_name": "time since forecast_reference_time",
                                                 "standard_name": "forecast_period", "units": "hours"})]
    vt = t + np.round(step_h * 3600).astype("int64")
    if init_time_dim:
        coords.append(Coord("init_time", ("init_time",), np.array([t]), {
            "long_name": "initial time of forecast", "standard_name": "forecast_reference_time",
            "units": EPOCH_UNITS, "calendar": "proleptic_gregorian"}))
    coords.append(Coord("valid_time", (("init_time",) if init_time_dim else ()) + ("step",),
                        vt.reshape((1, -1)) if init_time_dim else vt,
                        {"long_name": "time", "standard_name": "time", "units": EPOCH_UNITS,
                         "calendar": "proleptic_gregorian"}))
    if mem is not None:
        coords.append(Coord("member", ("member",), np.asarray(mem, dtype="int64"), {
            "long_name": "ensemble member numerical id", "standard_name": "realization", "units": "1",
            "comment": "0 control, N perturbed"}))
    grids: dict[tuple[str, str], object] = {}
    arrays = []
    for v in run.variables.values():
        dlat, dlon = v.grid_dims
        if (dlat, dlon) in grids and grids[(dlat, dlon)] != v.grid:
            raise GikError(f"variable {v.name!r} of run gik://{run.dataset}/{run.run_label} has another grid "
                           f"than the other variables on {dlat}/{dlon}")
        grids[(dlat, dlon)] = v.grid
        coord_names = ["valid_time"]
        attrs = {k: val for k, val in v.attrs.items() if k not in ("coordinates", "gik_window_start")}
        if v.stat:
            wname = f"{v.name}_window_start"
            coord_names.append(wname)
            coords.append(Coord(wname, ("step",), _window_starts(v, s_pos, run), {
                "long_name": f"start of the {v.name} statistical window", "units": "hours",
                "comment": "hours since the initial time; NaN where the variable has no message"}))
        attrs["coordinates"] = " ".join(coord_names)
        refs = []
        for c in v.chunks:
            idx = ((0,) if init_time_dim else ()) + ((m_pos[c.member],) if mem is not None else ()) + (s_pos[c.step],)
            refs.append((idx + (0, 0), c))
        arrays.append(GribArray(v.name, lead_dims + (dlat, dlon), lead_shape + v.grid.shape,
                                (1,) * len(lead_shape) + v.grid.shape, codec(v.name, v.grid.adjust_longitude),
                                attrs, refs))
    for (dlat, dlon), g in grids.items():
        coords.append(Coord(dlat, (dlat,), np.asarray(g.lats, dtype="float64"),
                            {"long_name": "latitude", "standard_name": "latitude", "units": "degrees_north"}))
        coords.append(Coord(dlon, (dlon,), np.asarray(g.lons, dtype="float64"),
                            {"long_name": "longitude", "standard_name": "longitude", "units": "degrees_east"}))
    return Layout(run_attrs(run), coords, arrays)


def _window_starts(v, s_pos, run) -> np.ndarray:
    out = np.full(len(s_pos), np.nan)
    for c in v.chunks:
        i = s_pos[c.step]
        if not np.isnan(out[i]) and out[i] != c.window_start:
            raise GikError(f"variable {v.name!r} of run gik://{run.dataset}/{run.run_label} has windows starting at "
                           f"{out[i]} h and {c.window_start} h ending at step {c.step} h")
        out[i] = c.window_start
    return out
