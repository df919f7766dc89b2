"""The recorded contents of artifacts, read a chunk at a time through the Reader, and the
times they record (ISO 8601, read as UTC): what the analyses and the quality figures walk."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from opslineage.query.reader import Reader
from opslineage.store import NodeRecord

__all__ = ["CHUNK", "artifact_contents", "recorded_time"]

CHUNK = 500
"""Artifacts whose contents are fetched in one round trip."""


def artifact_contents(
    reader: Reader, records: Sequence[NodeRecord]
) -> Iterator[tuple[NodeRecord, dict[str, Any]]]:
    """Each record with recorded content, with it (a ``{"redacted": …}`` marker when withheld),
    fetched a chunk at a time."""
    for start in range(0, len(records), CHUNK):
        chunk = records[start : start + CHUNK]
        contents = reader.contents([record.id for record in chunk])
        for record in chunk:
            content = contents.get(record.id)
            if isinstance(content, dict):
                yield record, content


def recorded_time(value: object) -> datetime | None:
    """A recorded ISO 8601 time in UTC (no offset: UTC), None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
