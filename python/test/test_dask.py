"""The East Africa 0-24 h exceedance with xarray + dask.distributed (a LocalCluster of worker processes) over the
Icechunk store equals gik.exceedance cell by cell."""
import numpy as np
import pytest
import xarray as xr
from conftest import ECMWF, GEFS
from distributed import Client, LocalCluster

from pg_gik.analysis import exceedance, window_plan
from pg_gik.icechunk import export_runs, open_repository

THRESHOLDS = [0.5, 5.0, 20.0]
EAST_AFRICA = dict(latitude=slice(23, -12), longitude=slice(21, 53))


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as c:
        yield c


@pytest.mark.parametrize("dataset, init, plan", [
    (GEFS, "2025-10-01T00Z", [(6.0, 1.0), (12.0, 1.0), (18.0, 1.0), (24.0, 1.0)]),   # 6-hour buckets
    (ECMWF, "2025-10-03T00Z", [(24.0, 1.0)]),                                         # from the run start
])
def test_exceedance_on_a_local_cluster_equals_gik_exceedance(datasets, conn, client, tmp_path, dataset, init, plan):
    export_runs("", dataset, [init], tmp_path / "repo", longitude="-180..180")
    repo = open_repository(tmp_path / "repo")
    ds = xr.open_zarr(repo.readonly_session("main").store, zarr_format=3, consolidated=False, chunks={})
    ds = ds.sel(init_time=ds.init_time[0], **EAST_AFRICA)
    assert window_plan(ds, "tp", 0, 24) == plan
    prob = exceedance(ds, "tp", 0, 24, THRESHOLDS)
    assert prob.chunks is not None  # a dask graph, computed on the cluster's worker processes
    got = client.compute(prob).result()
    assert sorted(client.scheduler_info()["workers"]) and len(client.scheduler_info()["workers"]) == 2
    rows = conn.execute("SELECT threshold, probability, (grid).ni, (grid).nj, members_used FROM gik.exceedance("
                        "%s, %s, 0, 24, %s::real[], gik.bbox(21, -12, 53, 23), '-180..180') ORDER BY threshold",
                        (dataset, init.replace("T", " ").replace("Z", ":00+00"), THRESHOLDS)).fetchall()
    assert [r[0] for r in rows] == THRESHOLDS
    for k, (thr, probability, ni, nj, used) in enumerate(rows):
        want = np.array(probability, dtype="float32")
        assert want.shape == (nj, ni) == got.shape[1:]
        np.testing.assert_array_equal(got.values[k], want)
        assert int(ds["tp"].sel(step=24).notnull().any(["latitude", "longitude"]).sum()) == used
    assert np.nanmax(got.values[0]) > 0  # rain somewhere: the comparison is not of empty grids
