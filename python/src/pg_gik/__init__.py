"""pg_gik's Python client: VirtualiZarr parsers, the Icechunk export and the catalog reader they share."""
__version__ = "0.2.0"

from .catalog import GikError, RunNotFound, read_run  # noqa: E402
from .parser import ECMWFParser, GEFSParser, GikParser  # noqa: E402
from .registry import registry_for  # noqa: E402

__all__ = ["GikParser", "GEFSParser", "ECMWFParser", "GikError", "RunNotFound", "read_run", "registry_for",
           "__version__"]
