"""Write the small generated GRIB2 files of this folder with ecCodes (run: /usr/bin/python3 make_generated.py).

- lambert.grib2: a 5 x 4 Lambert conformal grid (template 3.30), simple packing, values 0..19 in
  scanning order. pg_gik decodes non-regular grids in scanning order only.
- scan_ineg_jpos.grib2: a regular lat/lon 6 x 4 grid stored east to west and south to north
  (scanningMode 192), longitudes 357..2 across 0 degrees, latitudes 10..13, simple packing with a
  bitmap. Each value is 100 * lat + lon (lon in -3..2), so north-up output is easy to check; the
  point at lat 11, lon 0 is missing.
"""
import pathlib

import eccodes as ec
import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
SAMPLE = "/usr/share/eccodes/samples/GRIB2.tmpl"


def new_handle():
    """A handle on ecCodes' GRIB2 sample (regular_ll, simple packing)."""
    with open(SAMPLE, "rb") as f:
        return ec.codes_grib_new_from_file(f)


def lambert():
    h = new_handle()
    ec.codes_set(h, "gridDefinitionTemplateNumber", 30)
    for key, val in [("Nx", 5), ("Ny", 4), ("latitudeOfFirstGridPointInDegrees", 30.0),
                     ("longitudeOfFirstGridPointInDegrees", 250.0), ("LaDInDegrees", 38.5),
                     ("LoVInDegrees", 262.5), ("Latin1InDegrees", 38.5), ("Latin2InDegrees", 38.5),
                     ("DxInMetres", 100000), ("DyInMetres", 100000)]:
        ec.codes_set(h, key, val)
    ec.codes_set_values(h, np.arange(20, dtype=float))
    return h


def scan_ineg_jpos():
    h = new_handle()
    ni, nj = 6, 4
    for key, val in [("Ni", ni), ("Nj", nj), ("iScansNegatively", 1), ("jScansPositively", 1),
                     ("latitudeOfFirstGridPointInDegrees", 10.0), ("latitudeOfLastGridPointInDegrees", 13.0),
                     ("longitudeOfFirstGridPointInDegrees", 2.0), ("longitudeOfLastGridPointInDegrees", 357.0),
                     ("iDirectionIncrementInDegrees", 1.0), ("jDirectionIncrementInDegrees", 1.0),
                     ("bitsPerValue", 16), ("bitmapPresent", 1)]:
        ec.codes_set(h, key, val)
    miss = 9999.0
    ec.codes_set(h, "missingValue", miss)
    vals = []
    for j in range(nj):            # scanning order: rows south to north, each east to west
        lat = 10 + j
        for i in range(ni):
            lon = 2 - i
            vals.append(miss if (lat, lon) == (11, 0) else 100.0 * lat + lon)
    ec.codes_set_values(h, np.array(vals))
    return h


def main():
    for name, make in [("lambert.grib2", lambert), ("scan_ineg_jpos.grib2", scan_ineg_jpos)]:
        h = make()
        with open(HERE / name, "wb") as f:
            ec.codes_write(h, f)
        ec.codes_release(h)


if __name__ == "__main__":
    main()
