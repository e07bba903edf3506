"""Where GRIB objects are read from: obstore stores for VirtualiZarr's ObjectStoreRegistry, one per URL prefix
(s3://bucket/ through the catalog's S3 endpoint, anonymous; http(s)://host/ directly)."""
from __future__ import annotations

from obspec_utils.registry import ObjectStoreRegistry
from obstore.store import HTTPStore, S3Store

from .catalog import connect, url_prefix

DEFAULT_REGION = "us-east-1"


def s3_endpoint(conninfo) -> str | None:
    """The database's gik.s3_endpoint setting (a mirror such as http://127.0.0.1:18765), or None for AWS."""
    conn = connect(conninfo)
    try:
        value = conn.execute("SELECT current_setting('gik.s3_endpoint', true)").fetchone()[0]
    finally:
        if conn is not conninfo:
            conn.close()
    return value or None


def store_for(prefix: str, endpoint: str | None = None):
    """An obstore store that serves the URLs under prefix."""
    if prefix.startswith("s3://"):
        bucket = prefix[len("s3://"):].strip("/")
        opts = {"skip_signature": True, "region": DEFAULT_REGION}
        if endpoint:
            return S3Store(bucket, endpoint=endpoint, virtual_hosted_style_request=False,
                           client_options={"allow_http": endpoint.startswith("http://")}, **opts)
        return S3Store(bucket, **opts)
    if prefix.startswith(("http://", "https://")):
        return HTTPStore.from_url(prefix, client_options={"allow_http": prefix.startswith("http://")})
    raise ValueError(f"no object store for URL prefix {prefix!r} (s3://, http:// or https://)")


def registry_for(urls, endpoint: str | None = None) -> ObjectStoreRegistry:
    """An ObjectStoreRegistry with a store for the prefix of each URL (or prefix) given."""
    prefixes = sorted({url_prefix(u) for u in urls})
    return ObjectStoreRegistry({p: store_for(p, endpoint) for p in prefixes})
