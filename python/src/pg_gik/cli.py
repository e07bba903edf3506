"""The pg-gik command: pg-gik icechunk DATASET INIT... --repo PATH_OR_URL, parquet-import FILE... --dataset NAME,
kerchunk-parquet export|import."""
from __future__ import annotations

import argparse
import sys

from .catalog import GikError


def _icechunk(args) -> int:
    from .icechunk import export_runs, repo_target
    target = repo_target(args.repo, endpoint_url=args.endpoint_url, region=args.region,
                         access_key_id=args.access_key_id, secret_access_key=args.secret_access_key)
    results = export_runs(args.conninfo, args.dataset, args.init, target, variables=args.variables,
                          url_style=args.url_style, longitude=args.longitude, branch=args.branch)
    for r in results:
        print(f"{r.run}\tversion {r.version}\t{r.action}\t{r.snapshot or '-'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pg-gik", description="pg_gik's Python client")
    p.add_argument("--conninfo", default="", help="libpq connection string (default: the PG* environment)")
    sub = p.add_subparsers(dest="command", required=True)
    ic = sub.add_parser("icechunk", help="write runs of a dataset into an Icechunk repository (one commit per run)")
    ic.add_argument("dataset")
    ic.add_argument("init", nargs="+", help="initialisation times, e.g. 2025-10-01T00Z")
    ic.add_argument("--repo", required=True, help="a directory, file://PATH or s3://BUCKET/PREFIX")
    ic.add_argument("--variables", nargs="*", default=None, help="index variables or Zarr names (default: all)")
    ic.add_argument("--url-style", choices=("s3", "http"), default="s3")
    ic.add_argument("--longitude", choices=("source", "-180..180"), default="source")
    ic.add_argument("--branch", default="main")
    ic.add_argument("--endpoint-url", help="S3 endpoint of an s3:// repository (e.g. http://127.0.0.1:9000)")
    ic.add_argument("--region", default=None)
    ic.add_argument("--access-key-id", default=None)
    ic.add_argument("--secret-access-key", default=None)
    ic.set_defaults(func=_icechunk)
    from .parquet_bridge import add_commands
    add_commands(sub)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except GikError as e:
        print(f"pg-gik: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
