"""What every command shares: ``--store``/``--json``, the local reader, time parsing, output, progress bars."""

from __future__ import annotations

import argparse
import ssl
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from opslineage.ledger.access_log import AccessLog
from opslineage.query import Horizon, Principal, Reader
from opslineage.store import Store, default_store_url, open_store, sqlite_path

__all__ = [
    "EXIT_BROKEN_PIPE",
    "EXIT_CHECK_FAILED",
    "EXIT_USAGE",
    "UsageError",
    "bus_url",
    "common_options",
    "horizon",
    "local_reader",
    "option_time",
    "print_json",
    "progress",
    "store_from",
]

EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a writer the pipe's reader left


class UsageError(Exception):
    """Bad usage or bad input: the CLI prints the reason and exits 2."""


def common_options(*, store: bool = True) -> argparse.ArgumentParser:
    """The options every command takes: ``--json``, and ``--store`` unless the command reads none."""
    parent = argparse.ArgumentParser(add_help=False)
    if store:
        parent.add_argument(
            "--store",
            metavar="URL",
            default=None,
            help="lineage store URL (default: $OPSLINEAGE_STORE, else sqlite:///./opslineage.db)",
        )
    parent.add_argument("--json", action="store_true", help="machine-readable JSON on stdout")
    return parent


def store_from(args: argparse.Namespace, *, create: bool = False, parents: bool = False) -> Store:
    """Open the store the command was pointed at; with ``create``, a SQLite file is made if missing,
    in a directory that must exist unless ``parents`` (a mistyped path is refused, not created)."""
    url = args.store or default_store_url()
    path = sqlite_path(url)
    if create and not parents and path is not None:
        folder = Path(path).parent
        if not folder.is_dir():
            raise UsageError(
                f"--store {url}: no directory {folder} (create it, or run `opslineage init` there)"
            )
    return open_store(url, create=create)


def bus_url(url: str) -> str:
    """``--bus URL`` checked as a NATS server URL, at once rather than after waiting for it."""
    from opslineage.bus.streams import check_bus_url  # noqa: PLC0415 (nats-py loads only for --bus)

    try:
        return check_bus_url(url)
    except ValueError as error:
        raise UsageError(f"--bus: {error}") from None


def add_nats_tls(parser: argparse.ArgumentParser) -> None:
    """The ``--nats-ca``, ``--nats-cert`` and ``--nats-key`` options of a command that talks to NATS."""
    parser.add_argument(
        "--nats-ca",
        type=Path,
        metavar="FILE",
        help="verify the NATS server's certificate against this PEM CA file (default: the system's CAs); "
        "implies TLS",
    )
    parser.add_argument(
        "--nats-cert", type=Path, metavar="FILE", help="a PEM client certificate for NATS (mutual TLS)"
    )
    parser.add_argument("--nats-key", type=Path, metavar="FILE", help="the PEM private key of --nats-cert")


def nats_tls(args: argparse.Namespace) -> ssl.SSLContext | None:
    """The TLS context :func:`add_nats_tls`'s options ask for (None: none given), checked at once."""
    from opslineage.bus.streams import tls_context  # noqa: PLC0415 (nats-py loads only for NATS)

    try:
        return tls_context(args.nats_ca, args.nats_cert, args.nats_key)
    except ValueError as error:
        raise UsageError(f"--nats-ca/--nats-cert/--nats-key: {error}") from None


def local_reader(store: Store) -> Reader:
    """The store as the local user reads it: a user who can open a store is its administrator.
    Every read is recorded in the store's access log, client ``cli`` (a read the access log
    cannot record is refused: exit 2)."""
    return Reader(store, Principal.local_admin(), AccessLog(store), "cli")


def horizon(reader: Reader, args: argparse.Namespace) -> Horizon:
    """How far ``--as-of`` (commit time) and ``--event-time-before`` (eventTime) let a read see."""
    return reader.horizon(
        option_time("--as-of", args.as_of), option_time("--event-time-before", args.event_time_before)
    )


def option_time(flag: str, text: str | None) -> datetime | None:
    """The time an option names (ISO 8601; without an offset, UTC; a date alone, its midnight)."""
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{flag} {text!r} is not an ISO 8601 time (e.g. 2026-01-05T14:30:00Z)") from None
    when = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    try:
        when.astimezone(UTC)
    except OverflowError:
        raise UsageError(f"{flag} {text!r} is outside the years 1 to 9999 in UTC") from None
    return when


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
