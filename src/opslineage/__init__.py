"""opslineage: lineage and tamper-evident audit trails for AIOps pipelines.

The public surface is small: the :class:`Tracer` that pipelines use to record lineage,
:func:`open_store` to read what was recorded, and the version.
"""

from opslineage._version import __version__
from opslineage.sdk import Tracer
from opslineage.store import open_store

__all__ = ["Tracer", "__version__", "open_store"]
