"""Write the small generated GRIB2 files of this folder with ecCodes (run: /usr/bin/python3 make_generated.py).

- lambert.grib2: a 5 x 4 Lambert conformal grid (template 3.30), simple packing, values 0..19 in
  scanning order. pg_gik decodes non-regular grids in scanning order only.
- scan_ineg_jpos.grib2: a regular lat/lon 6 x 4 grid stored east to west and south to north
  (scanningMode 192), longitudes 357..2 across 0 degrees, latitudes 10..13, simple packing with a
  bitmap. Each value is 100 * lat + lon (lon in -3..2), so north-up output is easy to check; the
  point at lat 11, lon 0 is missing.
- hrrr_like_lambert.grib2: a 60 x 40 Lambert conformal grid with HRRR's projection (sphere of
  6371229 m, LaD = Latin1 = Latin2 = 38.5, LoV 262.5, 3 km cells) over Colorado, stored south to
  north (scanningMode 64) as HRRR is; value = index in scanning order.
- polar_north.grib2: a 30 x 20 north polar stereographic grid (LaD 60, orientation 249, 25 km, from
  ecCodes' polar_stereographic_sfc_grib2 sample), stored south to north; value = index.
- polar_south.grib2: the same over the south pole (projectionCentreFlag 128), orientation 100.
- mercator.grib2: an 80 x 30 Mercator grid (template 3.10, LaD 20, 50 km), first point 5N 160E,
  crossing 180 degrees; value = index.
- reduced_gg_n32.grib2: ecCodes' reduced Gaussian N32 sample (6114 points), value = index.
- octahedral_o32.grib2: an octahedral reduced Gaussian O32 grid (pl = 20 + 4i), value = index.
- regular_gg_n32.grib2: ecCodes' regular Gaussian N32 sample (128 x 64), value = index.
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


def from_sample(name):
    with open(f"/usr/share/eccodes/samples/{name}.tmpl", "rb") as f:
        return ec.codes_grib_new_from_file(f)


def index_values(h):
    """Values 0, 1, 2, ... in scanning order (24 bits: exact)."""
    if ec.codes_get(h, "gridType") == "reduced_gg":
        n = int(sum(ec.codes_get_array(h, "pl")))
    elif ec.codes_is_defined(h, "Nx"):
        n = ec.codes_get(h, "Nx") * ec.codes_get(h, "Ny")
    else:
        n = ec.codes_get(h, "Ni") * ec.codes_get(h, "Nj")
    ec.codes_set(h, "bitsPerValue", 24)
    ec.codes_set_values(h, np.arange(n, dtype=float))
    return h


def sphere(h, radius):
    ec.codes_set(h, "shapeOfTheEarth", 1)
    ec.codes_set(h, "scaleFactorOfRadiusOfSphericalEarth", 0)
    ec.codes_set(h, "scaledValueOfRadiusOfSphericalEarth", radius)


def hrrr_like_lambert():
    h = new_handle()
    ec.codes_set(h, "gridDefinitionTemplateNumber", 30)
    sphere(h, 6371229)
    for key, val in [("Nx", 60), ("Ny", 40), ("latitudeOfFirstGridPointInDegrees", 37.0),
                     ("longitudeOfFirstGridPointInDegrees", 253.0), ("LaDInDegrees", 38.5),
                     ("LoVInDegrees", 262.5), ("Latin1InDegrees", 38.5), ("Latin2InDegrees", 38.5),
                     ("DxInMetres", 3000), ("DyInMetres", 3000), ("scanningMode", 64)]:
        ec.codes_set(h, key, val)
    return index_values(h)


def polar(south):
    h = from_sample("polar_stereographic_sfc_grib2")
    sphere(h, 6371229)
    for key, val in [("Nx", 30), ("Ny", 20), ("LaDInDegrees", -60 if south else 60),
                     ("orientationOfTheGridInDegrees", 100 if south else 249),
                     ("projectionCentreFlag", 128 if south else 0),
                     ("latitudeOfFirstGridPointInDegrees", -55.0 if south else 55.0),
                     ("longitudeOfFirstGridPointInDegrees", 60.0 if south else 200.0),
                     ("DxInMetres", 25000), ("DyInMetres", 25000), ("scanningMode", 64)]:
        ec.codes_set(h, key, val)
    return index_values(h)


def mercator():
    h = new_handle()
    ec.codes_set(h, "gridDefinitionTemplateNumber", 10)
    sphere(h, 6371229)
    ni, nj, d, lad, lat1, lon1 = 80, 30, 50000.0, 20.0, 5.0, 160.0
    r = 6371229 * np.cos(np.radians(lad))
    y1 = r * np.log(np.tan(np.pi / 4 + np.radians(lat1) / 2)) + (nj - 1) * d
    lat2 = np.degrees(2 * np.arctan(np.exp(y1 / r)) - np.pi / 2)
    lon2 = (lon1 + np.degrees((ni - 1) * d / r)) % 360
    for key, val in [("Ni", ni), ("Nj", nj), ("LaDInDegrees", lad),
                     ("latitudeOfFirstGridPointInDegrees", lat1), ("longitudeOfFirstGridPointInDegrees", lon1),
                     ("latitudeOfLastGridPointInDegrees", round(float(lat2), 6)),
                     ("longitudeOfLastGridPointInDegrees", round(float(lon2), 6)),
                     ("DiInMetres", d), ("DjInMetres", d), ("scanningMode", 64)]:
        ec.codes_set(h, key, val)
    return index_values(h)


def octahedral():
    h = from_sample("reduced_gg_pl_32_grib2")
    n = 32
    pl = [20 + 4 * i for i in range(n)]
    ec.codes_set_array(h, "pl", pl + pl[::-1])
    return index_values(h)


def main():
    for name, make in [("lambert.grib2", lambert), ("scan_ineg_jpos.grib2", scan_ineg_jpos),
                       ("hrrr_like_lambert.grib2", hrrr_like_lambert),
                       ("polar_north.grib2", lambda: polar(False)), ("polar_south.grib2", lambda: polar(True)),
                       ("mercator.grib2", mercator),
                       ("reduced_gg_n32.grib2", lambda: index_values(from_sample("reduced_gg_pl_32_grib2"))),
                       ("octahedral_o32.grib2", octahedral),
                       ("regular_gg_n32.grib2", lambda: index_values(from_sample("regular_gg_sfc_grib2")))]:
        h = make()
        with open(HERE / name, "wb") as f:
            ec.codes_write(h, f)
        ec.codes_release(h)


if __name__ == "__main__":
    main()
