"""Icechunk export: runs of a dataset as virtual references in an Icechunk repository, one commit per run,
appended along init_time, each reference carrying its GRIB object's ETag (or Last-Modified) checksum."""
from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass

import icechunk as ic
import numpy as np
import zarr
from icechunk.credentials import HttpAccess
from zarr.core.sync import sync

from . import __version__
from .catalog import GikError, RunRefs, format_init, parse_init, read_run, run_row
from .layout import DTYPE, Layout, run_layout
from .registry import s3_endpoint

SOURCE_PREFIXES = ("s3://noaa-gefs-pds/", "s3://ecmwf-forecasts/")
RUNS_ATTR = "pg_gik_runs"          # root attribute: {"2025-10-01T00Z": version, ...}
PER_RUN_ATTRS = ("gik_run", "gik_init_time", "gik_run_version", "gik_run_status", "history")


@dataclass(frozen=True)
class ExportResult:
    run: str
    version: int
    action: str                    # "created", "appended", "updated" or "unchanged"
    snapshot: str | None           # the commit's snapshot id (None when unchanged)


# -- repositories ----------------------------------------------------------------------------------------

def repo_target(spec, endpoint_url=None, region=None, access_key_id=None, secret_access_key=None,
                anonymous=None) -> ic.Storage:
    """Icechunk storage for a directory (or file://PATH) or s3://BUCKET/PREFIX (with an endpoint: any
    S3-compatible server, path-style requests). An ic.Storage is returned as is."""
    if isinstance(spec, ic.Storage):
        return spec
    spec = os.fspath(spec)
    if spec.startswith("s3://"):
        bucket, _, prefix = spec[len("s3://"):].partition("/")
        if not bucket:
            raise GikError(f"repository URL {spec!r} has no bucket")
        kw = {}
        if access_key_id or secret_access_key:
            kw.update(access_key_id=access_key_id, secret_access_key=secret_access_key)
        elif anonymous is not None:
            kw.update(anonymous=anonymous)
        else:
            kw.update(from_env=True)
        return ic.s3_storage(bucket=bucket, prefix=prefix.strip("/") or None, region=region or "us-east-1",
                             endpoint_url=endpoint_url, allow_http=bool(endpoint_url and endpoint_url.startswith("http://")),
                             force_path_style=bool(endpoint_url), **kw)
    if "://" in spec and not spec.startswith("file://"):
        raise GikError(f"unsupported repository {spec!r}: use a directory, file://PATH or s3://BUCKET/PREFIX")
    return ic.local_filesystem_storage(os.path.abspath(spec[len("file://"):] if spec.startswith("file://") else spec))


def container_store(prefix: str, endpoint: str | None):
    """The object store config of a virtual chunk container (anonymous S3 through endpoint, or HTTP)."""
    if prefix.startswith("s3://"):
        if endpoint:
            return ic.s3_store(region="us-east-1", endpoint_url=endpoint, allow_http=endpoint.startswith("http://"),
                               anonymous=True, force_path_style=True)
        return ic.s3_store(region="us-east-1", anonymous=True)
    if prefix.startswith(("http://", "https://")):
        return ic.http_store()
    raise GikError(f"no virtual chunk container for URL prefix {prefix!r}")


def container_credentials(prefixes) -> dict:
    """Authorisation of virtual chunk reads under each prefix (anonymous S3, plain HTTP)."""
    return ic.containers_credentials({p: (ic.s3_anonymous_credentials() if p.startswith("s3://") else HttpAccess)
                                      for p in prefixes})


def open_repository(storage, prefixes=None) -> ic.Repository:
    """An existing repository with virtual chunk reads authorised for its containers (or the prefixes given)."""
    storage = repo_target(storage)
    _reachable(storage)
    if not ic.Repository.exists(storage):
        raise GikError(f"no Icechunk repository at {storage}")
    if prefixes is None:
        cfg = ic.Repository.fetch_config(storage)
        prefixes = list((cfg.virtual_chunk_containers or {}).keys()) if cfg else []
    return ic.Repository.open(storage, authorize_virtual_chunk_access=container_credentials(prefixes))


def _reachable(storage):
    try:
        ic.Repository.exists(storage)
    except Exception as e:  # noqa: BLE001 - icechunk raises its own error types for every storage failure
        raise GikError(f"cannot reach the Icechunk repository {storage}: {e}") from e


def _open_or_create(storage, prefixes, endpoint) -> ic.Repository:
    """The repository, created when absent, with a virtual chunk container for each prefix."""
    _reachable(storage)
    exists = ic.Repository.exists(storage)
    cfg = (ic.Repository.fetch_config(storage) if exists else None) or ic.RepositoryConfig.default()
    have = set((cfg.virtual_chunk_containers or {}).keys())
    for p in prefixes:
        if p not in have:
            cfg.set_virtual_chunk_container(ic.VirtualChunkContainer(p, container_store(p, endpoint)))
    creds = container_credentials(sorted(have | set(prefixes)))
    try:
        if exists:
            repo = ic.Repository.open(storage, config=cfg, authorize_virtual_chunk_access=creds)
            if not set(prefixes) <= have:
                repo.save_config()
        else:
            repo = ic.Repository.create(storage, config=cfg, authorize_virtual_chunk_access=creds)
    except Exception as e:  # noqa: BLE001
        raise GikError(f"cannot open the Icechunk repository {storage}: {e}") from e
    return repo


# -- export ----------------------------------------------------------------------------------------------

def export_runs(conninfo, dataset: str, init_times, repo, variables=None, members=None, steps=None,
                url_style: str = "s3", longitude: str = "source", branch: str = "main",
                endpoint: str | None = None, checksum: str = "etag") -> list[ExportResult]:
    """Write runs (current versions) of a dataset into an Icechunk repository (a path, s3:// URL or ic.Storage),
    one commit per run, appended along init_time. A run already there at the same version makes no commit; at an
    older version it is rewritten in a new commit; a newer version in the repository is an error. Each reference
    carries its GRIB object's ETag (checksum='etag', Last-Modified when there is none), Last-Modified
    ('last_modified') or nothing (None). endpoint: the S3 endpoint of the s3:// source containers (default: the
    database's gik.s3_endpoint). A failed run leaves the branch at its last commit."""
    if checksum not in ("etag", "last_modified", None):
        raise GikError(f"invalid checksum {checksum!r}: use 'etag', 'last_modified' or None")
    if isinstance(init_times, (str, dt.datetime)):
        init_times = [init_times]
    storage = repo_target(repo)
    if endpoint is None:
        endpoint = s3_endpoint(conninfo)
    results = []
    for init in init_times:
        label = format_init(init)
        version = run_row(conninfo, dataset, init)[1]
        if _held_version(storage, branch, dataset, label) == version:   # nothing to read or write
            results.append(ExportResult(label, version, "unchanged", None))
            continue
        run = read_run(conninfo, dataset, parse_init(init), variables, members, steps, longitude)
        prefixes = sorted(set(SOURCE_PREFIXES) | set(run.url_prefixes(url_style)))
        r = _open_or_create(storage, prefixes, endpoint)
        results.append(_write_run(r, run, url_style, branch, checksum))
    return results


def _held_version(storage, branch: str, dataset: str, label: str) -> int | None:
    """The version of a run the repository's branch holds (None: no repository, branch or run)."""
    _reachable(storage)
    if not ic.Repository.exists(storage):
        return None
    try:
        session = ic.Repository.open(storage).readonly_session(branch=branch)
    except Exception:  # noqa: BLE001 - no such branch: the write reports it
        return None
    runs, root = _repo_state(session)
    return runs.get(label) if root is not None and root.attrs.get("gik_dataset") == dataset else None


def _repo_state(session) -> tuple[dict, zarr.Group | None]:
    try:
        root = zarr.open_group(session.store, mode="r", zarr_format=3)
    except (FileNotFoundError, zarr.errors.GroupNotFoundError, KeyError):
        return {}, None
    return dict(root.attrs.get(RUNS_ATTR) or {}), root


def _write_run(repo: ic.Repository, run: RunRefs, url_style: str, branch: str, checksum) -> ExportResult:
    label = run.run_label
    try:
        session = repo.writable_session(branch)
    except Exception as e:  # noqa: BLE001
        raise GikError(f"cannot write branch {branch!r} of the Icechunk repository: {e}") from e
    runs, root = _repo_state(session)
    if root is not None and root.attrs.get("gik_dataset") not in (None, run.dataset):
        raise GikError(f"the repository holds dataset {root.attrs.get('gik_dataset')!r}, not {run.dataset!r}")
    held = runs.get(label)
    if held is not None and held == run.version:
        return ExportResult(label, run.version, "unchanged", None)
    if held is not None and held > run.version:
        raise GikError(f"the repository holds version {held} of gik://{run.dataset}/{label}, newer than the "
                       f"catalog's version {run.version}: refusing to go back")
    if root is None:
        # the axes of a complete run of the dataset, so that later runs (more members or steps) append
        members = None if run.members is None else sorted(set(run.dataset_members or []) | set(run.members))
        layout = run_layout(run, init_time_dim=True, members=members,
                            steps=sorted(set(run.dataset_steps) | set(run.steps)))
        _create(session, layout)
        t_index, action = 0, "created"
    else:
        layout = run_layout(run, init_time_dim=True, members=_axis(root, "member"), steps=list(root["step"][:]))
        t_index, action = _place(session, root, layout, run, label, held is not None)
    _set_refs(session, layout, t_index, url_style, checksum, replace=(action == "updated"))
    runs[label] = run.version
    attrs = {k: v for k, v in layout.attrs.items() if k not in PER_RUN_ATTRS}
    attrs[RUNS_ATTR] = dict(sorted(runs.items()))
    zarr.open_group(session.store, mode="r+", zarr_format=3).attrs.update(attrs)
    message = f"pg_gik: {run.dataset} run {label} version {run.version} ({action}; pg_gik client {__version__})"
    snap = session.commit(message, metadata={"gik_dataset": run.dataset, "gik_run": label,
                                             "gik_run_version": run.version, "pg_gik_client": __version__})
    return ExportResult(label, run.version, action, snap)


def _axis(root, name):
    return [int(x) for x in root[name][:]] if name in root else None


def _create(session, layout: Layout):
    g = zarr.group(store=session.store, zarr_format=3, attributes={})
    for c in layout.coords:
        shape = c.values.shape
        a = g.create_array(c.name, shape=shape, chunks=shape if c.dims != ("init_time",) else (1,),
                           dtype=c.values.dtype, fill_value=np.nan if c.values.dtype.kind == "f" else 0,
                           dimension_names=c.dims, attributes=c.attrs, compressors=None)
        a[...] = c.values
    for arr in layout.arrays:
        g.create_array(arr.name, shape=arr.shape, chunks=arr.chunk_shape, dtype=DTYPE, fill_value=np.nan,
                       serializer=arr.codec, compressors=None, filters=None, dimension_names=arr.dims,
                       attributes=arr.attrs)


def _place(session, root, layout: Layout, run: RunRefs, label: str, rewrite: bool) -> tuple[int, str]:
    """The init_time index the run goes to (an existing one for a rewrite, else appended), after checking that
    its variables and grids are the repository's."""
    g = zarr.open_group(session.store, mode="r+", zarr_format=3)
    names = {a.name for a in layout.arrays}
    missing = names - set(g.array_keys())
    if missing:
        raise GikError(f"run gik://{run.dataset}/{label} has variables {sorted(missing)} that the repository has not")
    for c in layout.coords:
        if c.dims == (c.name,) and c.name not in ("step", "member", "init_time"):
            have = g[c.name][:]
            if have.shape != c.values.shape or not np.allclose(have, c.values):
                var = next(a.name for a in layout.arrays if c.name in a.dims)
                raise GikError(f"variable {var!r} of gik://{run.dataset}/{label} is on another grid than in the "
                               f"repository ({c.name}: {c.values.size} values from {c.values[0]} vs "
                               f"{have.size} from {have[0]}): two grids in one variable")
        if c.name.endswith("_window_start"):
            have = g[c.name][:]
            both = ~np.isnan(have) & ~np.isnan(c.values)
            if not np.array_equal(have[both], c.values[both]):
                raise GikError(f"{c.name} of gik://{run.dataset}/{label} differs from the repository's")
            g[c.name][:] = np.where(np.isnan(have), c.values, have)
    t = int(run.init_time.timestamp())
    times = list(g["init_time"][:])
    if rewrite:
        return times.index(t), "updated"
    if t in times:
        raise GikError(f"the repository has init_time {label} but no record of its pg_gik version")
    n = len(times)
    g["init_time"].resize((n + 1,))
    g["init_time"][n] = t
    vt = g["valid_time"]
    vt.resize((n + 1,) + vt.shape[1:])
    vt[n] = next(c.values for c in layout.coords if c.name == "valid_time")[0]
    for name in names:
        a = g[name]
        a.resize((n + 1,) + a.shape[1:])
    return n, "appended"


def _set_refs(session, layout: Layout, t_index: int, url_style: str, checksum, replace: bool):
    store = session.store
    for arr in layout.arrays:
        if replace:
            _delete_run_chunks(store, arr.name, t_index)
        specs = []
        for idx, c in arr.refs:
            kw = {}
            if checksum == "etag" and c.etag:
                kw["etag_checksum"] = _etag(c.etag)
            elif checksum in ("etag", "last_modified") and c.last_modified:
                kw["last_updated_at_checksum"] = c.last_modified
            specs.append(ic.VirtualChunkSpec([t_index] + list(idx[1:]), c.location(url_style), c.offset,
                                             c.length, **kw))
        failed = store.set_virtual_refs(arr.name, specs, validate_containers=True)
        if failed:
            raise GikError(f"Icechunk refused {len(failed)} references of {arr.name} (first: {failed[0]})")


def _delete_run_chunks(store, name: str, t_index: int):
    """Remove the chunks a run's earlier version had (a new version may have fewer messages)."""
    sync(store.delete_dir(f"{name}/c/{t_index}"))


def _etag(etag: str) -> str:
    """The ETag as Icechunk must carry it to match HTTP's If-Match: Icechunk strips one pair of quotes."""
    return etag if etag.startswith('""') else f'"{etag}"' if etag.startswith('"') else f'""{etag}""'
