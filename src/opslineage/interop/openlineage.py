"""OpenLineage export: every stored event, whole, as JSON lines.

The file is the store's own content in the format it was ingested in: each line is one
RunEvent exactly as accepted (artifact contents joined back in, unknown facets untouched), in
sequence order. Ingesting it into an empty store (``opslineage ingest FILE``) rebuilds the same
graph: the same node ids and digests, and, since sequence numbers follow the file's order, the
same :meth:`~opslineage.store.Store.state_digest`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import BinaryIO

import msgspec

from opslineage.query import Reader, as_reader
from opslineage.store import Store

__all__ = ["export_openlineage"]

CHUNK = 1_000
_encode = msgspec.json.Encoder().encode


def export_openlineage(
    source: Reader | Store, out: BinaryIO, on_progress: Callable[[int], None] | None = None
) -> int:
    """Write every event the store holds when called, one JSON object per line.

    Events appended while the export runs are left for the next one, so the file is the store
    as it stood at one sequence number.

    Args:
        source: what to read: a reader, or a store (read as its local administrator).
        out: a binary stream to write the lines to.
        on_progress: called after each chunk with the number of events written so far.

    Returns:
        The number of events written.
    """
    reader = as_reader(source)
    last = reader.log_length()
    after = written = 0
    while after < last:
        chunk = reader.event_page(after=after, limit=min(CHUNK, last - after))
        if not chunk:
            break
        out.write(b"".join(_encode(stored.event) + b"\n" for stored in chunk))
        after = chunk[-1].seq
        written += len(chunk)
        if on_progress is not None:
            on_progress(written)
    return written
