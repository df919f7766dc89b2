"""The lineage store: the interface every backend implements, and :func:`open_store` to pick one.

The interface is a few protocols, one per concern (:mod:`opslineage.store.interfaces`), that
:class:`Store` combines; its answers are the plain records of :mod:`opslineage.store.records`.
Backends keep SQL dialect details to themselves. ``sqlite:///PATH`` is the embedded default;
``postgresql://…`` (or ``postgres://…``) names a PostgreSQL database.
"""

from __future__ import annotations

import os

from opslineage.store._plan import derive_rows
from opslineage.store.base import ARCHIVE_DIR_ENV, Store, event_leaf, leaf_data
from opslineage.store.interfaces import (
    AccessLogStorage,
    ArchiveTier,
    ArtifactReader,
    Encryption,
    EventLog,
    GraphReader,
    LogStorage,
    Settings,
    TokenRow,
    TokenTable,
)
from opslineage.store.records import (
    FACET_WINDOW,
    AccessEventRow,
    AccessRow,
    ArtifactRow,
    CheckpointRow,
    Cut,
    EdgeRow,
    EventRow,
    Horizon,
    HotRows,
    IndexEdge,
    IndexNode,
    IndexRows,
    IngestResult,
    NodeContent,
    NodeQuery,
    NodeRecord,
    RawEvent,
    SegmentInfo,
    StoredEvent,
    StoreError,
    StoreUnavailable,
    Walk,
)
from opslineage.store.sqlite import SQLiteStore

__all__ = [
    "ARCHIVE_DIR_ENV",
    "DEFAULT_STORE_URL",
    "FACET_WINDOW",
    "AccessEventRow",
    "AccessLogStorage",
    "AccessRow",
    "ArchiveTier",
    "ArtifactReader",
    "ArtifactRow",
    "CheckpointRow",
    "Cut",
    "EdgeRow",
    "Encryption",
    "EventLog",
    "EventRow",
    "GraphReader",
    "Horizon",
    "HotRows",
    "IndexEdge",
    "IndexNode",
    "IndexRows",
    "IngestResult",
    "LogStorage",
    "NodeContent",
    "NodeQuery",
    "NodeRecord",
    "RawEvent",
    "SegmentInfo",
    "Settings",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "StoredEvent",
    "TokenRow",
    "TokenTable",
    "Walk",
    "default_store_url",
    "derive_rows",
    "event_leaf",
    "leaf_data",
    "open_store",
    "sqlite_path",
]

DEFAULT_STORE_URL = "sqlite:///./opslineage.db"


def default_store_url() -> str:
    """``$OPSLINEAGE_STORE`` if set, else an ``opslineage.db`` file in the current directory."""
    return os.environ.get("OPSLINEAGE_STORE") or DEFAULT_STORE_URL


def open_store(url: str | None = None, *, create: bool = True) -> Store:
    """Open the store at ``url`` (default: :func:`default_store_url`).

    Args:
        url: ``sqlite:///relative.db``, ``sqlite:////absolute.db`` or a plain ``*.db`` path (SQLite);
            ``postgresql://user@host:port/database`` or ``postgres://…`` (PostgreSQL: the database
            must exist, and the store's tables are created in it).
        create: make an empty store when none exists; when false, a missing store is an error.

    Raises:
        StoreError: the URL names no supported backend, or the store is missing or unreadable
            (for PostgreSQL also: the server is unreachable or the database does not exist).
    """
    url = url or default_store_url()
    path = sqlite_path(url)
    if path is not None:
        return SQLiteStore(path, create=create)
    from opslineage.store.postgres import PostgresStore  # noqa: PLC0415 (psycopg loads only when used)

    return PostgresStore(url, create=create)


def sqlite_path(url: str) -> str | None:
    """The file a SQLite store URL names; None for a PostgreSQL URL.

    Raises:
        StoreError: the URL names no supported backend.
    """
    scheme = url.partition("://")[0] if "://" in url else None
    if scheme in ("postgresql", "postgres"):
        return None
    if url.startswith("sqlite:///"):
        return url[len("sqlite:///") :]
    if scheme is None:
        return url
    raise StoreError(
        f"unsupported store URL {url!r}: scheme {scheme!r} (supported: sqlite:///PATH, postgresql://HOST/DATABASE)"
    )
