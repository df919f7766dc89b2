"""opslineage: lineage and tamper-evident audit trails for AIOps pipelines.

The public surface is small: the :class:`Tracer` that pipelines use to record lineage,
:func:`open_store` to read what was recorded, and the version. Importing the package loads only
the SDK; :func:`open_store` loads the store when first named.
"""

from typing import Any

from opslineage._version import __version__
from opslineage.sdk import Tracer

__all__ = ["Tracer", "__version__", "open_store"]


def __getattr__(name: str) -> Any:
    """Load :func:`open_store` (and the store) on first use."""
    if name == "open_store":
        from opslineage.store import open_store  # noqa: PLC0415 (lazy by design: the SDK stays light)

        return open_store
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
