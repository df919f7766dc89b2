"""Replay of real telemetry recorded as ``timestamp,value`` CSV files.

This module owns loading one-metric series in the format of the Numenta Anomaly Benchmark (NAB), e.g.
``realAWSCloudwatch/ec2_cpu_utilization_24ae8d.csv``: a ``timestamp,value`` header, then one row per
sample with a ``YYYY-MM-DD HH:MM:SS`` timestamp (read as UTC) and a number. A loaded series carries the
SHA-256 digest of the exact file bytes so a pipeline can record which input it replayed. Row order is kept
as in the file (some NAB files repeat or reorder timestamps). It depends on nothing else in opslineage.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["HEADER", "CsvSeries"]

HEADER = ("timestamp", "value")


def _parse_row(row: list[str], where: str) -> tuple[datetime, float]:
    if len(row) != len(HEADER):
        raise ValueError(f"{where}: expected 2 fields 'timestamp,value', got {len(row)}: {row!r}")
    stamp, raw = row[0].strip(), row[1].strip()
    try:
        when = datetime.fromisoformat(stamp)
    except ValueError:
        raise ValueError(f"{where}: bad timestamp {stamp!r}, expected 'YYYY-MM-DD HH:MM:SS'") from None
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{where}: non-numeric value {raw!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"{where}: non-finite value {raw!r}")
    return when, value


@dataclass(frozen=True)
class CsvSeries:
    """One replayable metric series loaded from a ``timestamp,value`` CSV file.

    Attributes:
        path: The file it was loaded from.
        name: The file's stem, e.g. ``"ec2_cpu_utilization_24ae8d"``.
        digest: SHA-256 hex digest of the file's bytes.
        rows: ``(timestamp, value)`` pairs in file order; timestamps are UTC-aware.
    """

    path: Path
    name: str
    digest: str
    rows: list[tuple[datetime, float]]

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> CsvSeries:
        """Load and validate a series.

        Args:
            path: A CSV file whose header is ``timestamp,value``; blank lines are ignored.

        Returns:
            The series.

        Raises:
            OSError: When the file cannot be read.
            ValueError: When the file is malformed; the message names the file and the line.
        """
        file = Path(path)
        data = file.read_bytes()
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ValueError(f"{file}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        reader = csv.reader(io.StringIO(text, newline=""))
        header = next(reader, None)
        if header is None or tuple(h.strip().lower() for h in header) != HEADER:
            found = "an empty file" if header is None else repr(",".join(header))
            raise ValueError(f"{file}, line 1: missing header 'timestamp,value', found {found}")
        rows = []
        try:
            for row in reader:
                if row and any(cell.strip() for cell in row):
                    rows.append(_parse_row(row, f"{file}, line {reader.line_num}"))
        except csv.Error as exc:
            raise ValueError(f"{file}, line {reader.line_num}: {exc}") from None
        return cls(file, file.stem, hashlib.sha256(data).hexdigest(), rows)

    def windows(self, size: int, *, drop_partial: bool = False) -> Iterator[list[tuple[datetime, float]]]:
        """Yield consecutive, non-overlapping chunks of ``size`` rows, in order.

        Args:
            size: Rows per chunk (at least 1).
            drop_partial: Skip a shorter final chunk instead of yielding it.

        Raises:
            ValueError: When ``size`` is below 1.
        """
        if size < 1:
            raise ValueError(f"window size must be at least 1, got {size}")
        for begin in range(0, len(self.rows), size):
            chunk = self.rows[begin : begin + size]
            if len(chunk) == size or not drop_partial:
                yield chunk

    def records(self, metric: str = "value") -> list[dict[str, float]]:
        """Return the values as metric rows (``{metric: value}``), ready for ``rolling_features``."""
        return [{metric: value} for _, value in self.rows]
