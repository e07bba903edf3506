"""Ensemble precipitation products on a dataset pg_gik wrote (Icechunk or a ManifestStore), with xarray and dask:
the same accumulation windows and exceedance as gik.accumulations() and gik.exceedance()."""
from __future__ import annotations

import numpy as np
import xarray as xr

from .catalog import GikError

MM_PER_UNIT = {"m": 1000.0, "kg m**-2": 1.0, "kg m-2": 1.0, "mm": 1.0}


def window_plan(ds: xr.Dataset, var: str, start: float, end: float) -> list[tuple[float, float]]:
    """(step, weight) pairs whose signed sum is the accumulation over [start, end] hours: consecutive windows
    (the fewest messages), else the difference of two windows from the run start (cumulative fields)."""
    steps = [float(s) for s in _hours(ds["step"].values)]
    starts = [float(w) for w in ds[f"{var}_window_start"].values]
    windows = [(w, s) for w, s in zip(starts, steps) if not np.isnan(w)]
    plan, cur = [], float(start)
    while cur < end:
        nxt = max((s for w, s in windows if w == cur and s <= end), default=None)
        if nxt is None:
            break
        plan.append((nxt, 1.0))
        cur = nxt
    if cur == end:
        return plan
    from0 = {s for w, s in windows if w == 0}
    if end in from0 and (start == 0 or start in from0):
        return [(end, 1.0)] + ([] if start == 0 else [(float(start), -1.0)])
    raise GikError(f"the windows of {var} cannot cover [{start}, {end}] h exactly "
                   f"(windows: {', '.join(f'{w:g}-{s:g}' for w, s in windows)})")


def window_total(ds: xr.Dataset, var: str, start: float, end: float) -> xr.DataArray:
    """Each member's precipitation over [start, end] hours in mm (differences clipped at 0), lazily."""
    scale = MM_PER_UNIT.get(ds[var].attrs.get("units") or ds[var].attrs.get("GRIB_units"))
    if scale is None:
        raise GikError(f"cannot convert {var} from {ds[var].attrs.get('units')!r} to mm")
    plan = window_plan(ds, var, start, end)
    step_values = _hours(ds["step"].values)
    # as gik.grid_sum and gik.grid_mul: weighted sum in float64, rounded to float32, then scaled in float64
    parts = [ds[var].isel(step=int(np.flatnonzero(step_values == s)[0])).astype("float64") * w for s, w in plan]
    total = sum(parts[1:], parts[0]).astype("float32")
    if any(w < 0 for _, w in plan):
        total = total.clip(min=0)
    return total if scale == 1 else (total.astype("float64") * scale).astype("float32")


def exceedance(ds: xr.Dataset, var: str, start: float, end: float, thresholds, member_dim: str = "member"):
    """Per threshold (mm) the fraction of members whose total over [start, end] h is >= it, counting only members
    with a value at the cell (NaN where none has), as float32 — gik.exceedance's definition."""
    total = window_total(ds, var, start, end)
    thr = xr.DataArray(np.asarray(thresholds, dtype="float32"), dims="threshold")
    valid = total.notnull().sum(member_dim)
    hits = (total >= thr).sum(member_dim)
    prob = (hits / valid.where(valid > 0)).astype("float32").assign_coords(threshold=thr)
    return prob.transpose("threshold", ...)


def _hours(values) -> np.ndarray:
    values = np.asarray(values)
    if values.dtype.kind == "m":
        return values / np.timedelta64(1, "h")
    return values.astype("float64")
