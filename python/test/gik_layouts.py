"""GIK [key, value] parquet files in the exact shapes GIK's pipelines write (icpac-igad/grib-index-kerchunk).

- ECMWF index layout (`ecmwf/ecmwf_index_processor.py`: `create_references_from_index` under `step_{hour:03d}/`,
  `save_parquet`): keys `step_006/tp/sfc/ens01/0.0.0` (`{param}/pl/{levelist}/…` for pressure levels), members
  `control`, `ens01`…, a `.zgroup` and a `_kerchunk_metadata` row; a DataFrame of (key, reference) with `key` as
  its index, written by pandas/pyarrow with snappy; references as `json.dumps([url, offset, length])`.
- GEFS grib_tree layout (`gefs/gefs_util.py` `process_unique_groups`/`store_coord_var`/`store_data_var`, written by
  `tutorial/gefs/run_gefs_tutorial.py` `save_parquet_file`): `tp/accum/surface/tp/3.0.0` chunked along
  valid_time, inline coordinates (raw bytes when ASCII-decodable, NULs included, else base64:), `time` holding the
  valid times, a NaN fill; a DataFrame of (key, value bytes: str as UTF-8, lists and dicts as JSON).
"""
import base64
import json

import numpy as np
import pandas as pd


def ecmwf_member_name(number):
    """GIK's member token: control for 0, ensNN for the perturbed members."""
    return "control" if number == 0 else f"ens{number:02d}"


def ecmwf_gik_store(index_files, member):
    """One member's GIK store from ECMWF .index files: {hour: (grib_url, index_path)}, member as a number."""
    store, hours = {}, []
    for hour, (grib_url, index_path) in sorted(index_files.items()):
        with open(index_path) as f:
            entries = [json.loads(line) for line in f if line.strip()]
        for e in entries:
            if int(e.get("number", 0)) != member:
                continue
            if e["levtype"] == "pl" and e.get("levelist"):
                key = f"{e['param'].lower()}/pl/{e['levelist']}/{ecmwf_member_name(member)}/0.0.0"
            else:
                key = f"{e['param'].lower()}/{e['levtype']}/{ecmwf_member_name(member)}/0.0.0"
            store[f"step_{hour:03d}/{key}"] = [grib_url, e["_offset"], e["_length"]]
        hours.append(hour)
    store[".zgroup"] = json.dumps({"zarr_format": 2})
    store["_kerchunk_metadata"] = json.dumps({"member": ecmwf_member_name(member), "hours_processed": hours,
                                              "total_refs": len(store) - 1})
    return store


def write_ecmwf_gik_parquet(store, path):
    """ecmwf_index_processor.save_parquet: (key, reference) rows, key as the index, pyarrow with snappy."""
    rows = [(k, json.dumps(v) if isinstance(v, (list, dict)) else v) for k, v in store.items()]
    df = pd.DataFrame(rows, columns=["key", "reference"]).set_index("key")
    df.to_parquet(path, engine="pyarrow", compression="snappy")


def _inline(refs, key, dtype):
    """The numbers of a kerchunk inline value ("base64:…" little-endian)."""
    return np.frombuffer(base64.b64decode(refs[key][len("base64:"):]), dtype=dtype)


def gefs_gik_store(refs, member, var="tp"):
    """One GEFS member's GIK grib_tree store (tp/accum/surface/tp/{i}.0.0 along valid_time) made from a pg_gik
    kerchunk export of APCP, as GIK's stage 3 builds it from its templates."""
    za = json.loads(refs[f"{var}/.zarray"])
    grid = [k for k in refs if k.startswith("latitude") and k.endswith("/0")][0].split("/")[0]
    steps = _inline(refs, "step/0", "<f8")
    init = int(_inline(refs, "time/0", "<i8")[0])
    ny, nx = za["shape"][-2:]
    keys = sorted((k for k in refs if k.startswith(f"{var}/0.{member}.") and isinstance(refs[k], list)),
                  key=lambda k: int(k.split(".")[2]))
    chunk_steps = [steps[int(k.split(".")[2])] for k in keys]
    valid = np.array([init + 3600 * s for s in chunk_steps], dtype="<i8")
    root = f"{var}/accum/surface"
    store = {".zgroup": json.dumps({"zarr_format": 2})}
    for grp, attrs in ((var, {"name": "Total Precipitation"}), (f"{var}/accum", {"stepType": "accum"}),
                       (root, {"coordinates": "surface latitude longitude step time valid_time",
                               "typeOfLevel": "surface"})):
        store[f"{grp}/.zgroup"] = json.dumps({"zarr_format": 2})
        store[f"{grp}/.zattrs"] = json.dumps(attrs)

    def coord(name, data, dims, attrs):
        store[f"{root}/{name}/.zarray"] = json.dumps(
            {"chunks": list(data.shape), "compressor": None, "dtype": data.dtype.str, "fill_value": None,
             "filters": None, "order": "C", "shape": list(data.shape), "zarr_format": 2})
        store[f"{root}/{name}/.zattrs"] = json.dumps(dict(attrs, _ARRAY_DIMENSIONS=dims))
        raw = data.tobytes()
        try:
            value = raw.decode("ascii")            # store_coord_var keeps ASCII-decodable bytes raw
        except UnicodeDecodeError:
            value = "base64:" + base64.b64encode(raw).decode("ascii")
        store[f"{root}/{name}/" + (".".join("0" * data.ndim) if data.ndim else "0")] = value

    seconds = {"units": "seconds since 1970-01-01T00:00:00", "calendar": "proleptic_gregorian"}
    coord("time", valid, ["valid_time"], dict(seconds, long_name="initial time of forecast",
                                              standard_name="forecast_reference_time"))
    coord("valid_time", valid, ["valid_time"], dict(seconds, long_name="time", standard_name="time"))
    coord("step", np.array(chunk_steps, dtype="<f8"), ["valid_time"],
          {"long_name": "time since forecast_reference_time", "standard_name": "forecast_period", "units": "hours"})
    coord("surface", np.array(0.0), [], {})
    coord("latitude", _inline(refs, f"{grid}/0", "<f8"), ["latitude"], {"units": "degrees_north"})
    coord("longitude", _inline(refs, f"{grid.replace('latitude', 'longitude')}/0", "<f8"), ["longitude"],
          {"units": "degrees_east"})
    store[f"{root}/{var}/.zarray"] = json.dumps(       # store_data_var: a null fill becomes NaN (bare NaN in JSON)
        {"chunks": [1, ny, nx], "compressor": None, "dtype": "<f8", "fill_value": float("nan"),
         "filters": [{"dtype": "float64", "id": "grib", "var": var}], "order": "C", "shape": [len(keys), ny, nx],
         "zarr_format": 2})
    lat = _inline(refs, f"{grid}/0", "<f8")
    lon = _inline(refs, f"{grid.replace('latitude', 'longitude')}/0", "<f8")
    store[f"{root}/{var}/.zattrs"] = json.dumps(        # kerchunk's scan_grib attributes, as GIK keeps them
        {"GRIB_Nx": nx, "GRIB_Ny": ny, "GRIB_gridType": "regular_ll", "GRIB_shortName": var, "GRIB_stepType": "accum",
         "GRIB_typeOfLevel": "surface", "GRIB_units": "kg m**-2", "GRIB_paramId": 228228, "units": "kg m**-2",
         "GRIB_latitudeOfFirstGridPointInDegrees": lat[0], "GRIB_longitudeOfFirstGridPointInDegrees": lon[0],
         "GRIB_latitudeOfLastGridPointInDegrees": lat[-1], "GRIB_longitudeOfLastGridPointInDegrees": lon[-1],
         "GRIB_iDirectionIncrementInDegrees": abs(lon[1] - lon[0]),
         "GRIB_jDirectionIncrementInDegrees": abs(lat[1] - lat[0]),
         "_ARRAY_DIMENSIONS": ["valid_time", "latitude", "longitude"]})
    for i, k in enumerate(keys):
        store[f"{root}/{var}/{i}.0.0"] = refs[k]
    return store


def write_gefs_gik_parquet(store, path):
    """run_gefs_tutorial.save_parquet_file: (key, value) rows, values as UTF-8 / JSON bytes, pandas' default writer."""
    rows = []
    for k, v in store.items():
        if isinstance(v, str):
            rows.append((k, v.encode("utf-8")))
        elif isinstance(v, (list, dict)):
            rows.append((k, json.dumps(v).encode("utf-8")))
        else:
            rows.append((k, str(v).encode("utf-8")))
    pd.DataFrame(rows, columns=["key", "value"]).to_parquet(path)
