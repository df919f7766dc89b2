"""What every command shares: ``--store``/``--json``, the local reader, time parsing, output, progress bars."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import msgspec
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from opslineage.query import Principal, Reader
from opslineage.store import Store, default_store_url, open_store

__all__ = [
    "EXIT_CHECK_FAILED",
    "EXIT_USAGE",
    "UsageError",
    "as_of",
    "common_options",
    "local_reader",
    "print_json",
    "progress",
    "store_from",
]

EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """Bad usage or bad input: the CLI prints the reason and exits 2."""


def common_options() -> argparse.ArgumentParser:
    """The options every command takes."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--store",
        metavar="URL",
        default=None,
        help="lineage store URL (default: $OPSLINEAGE_STORE, else sqlite:///./opslineage.db)",
    )
    parent.add_argument("--json", action="store_true", help="machine-readable JSON on stdout")
    return parent


def store_from(args: argparse.Namespace, *, create: bool = False) -> Store:
    """Open the store the command was pointed at."""
    return open_store(args.store or default_store_url(), create=create)


def local_reader(store: Store) -> Reader:
    """The store as the local user reads it: a user who can open a store is its administrator."""
    return Reader(store, Principal.local_admin())


def as_of(reader: Reader, text: str | None) -> int | None:
    """The sequence number ``--as-of TIME`` names (ISO 8601; a date alone means its midnight UTC)."""
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--as-of {text!r} is not an ISO 8601 time (e.g. 2026-01-05T14:30:00Z)") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return reader.sequence_at(when)


def print_json(value: Any) -> None:
    """Write one JSON document to stdout."""
    sys.stdout.write(msgspec.json.format(msgspec.json.encode(value), indent=2).decode() + "\n")


@contextmanager
def progress(description: str, total: float | None, *, enabled: bool = True) -> Iterator[Progress]:
    """A progress bar on stderr, shown only when stderr is a terminal."""
    console = Console(stderr=True)
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not (enabled and console.is_terminal),
    )
    bar.add_task(description, total=total)
    if bar.disable:  # not started at all: rich before 15 writes a blank line when a disabled bar stops
        yield bar
        return
    with bar:
        yield bar
