"""``archive``: move old event bodies and artifact contents from the hot store into segments."""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime, timedelta

from opslineage.cli.common import UsageError, local_reader, print_json, progress, store_from
from opslineage.store import ARCHIVE_DIR_ENV
from opslineage.store.archive import SEGMENT_EVENTS, archive_store

__all__ = ["add_parser", "parse_age"]

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_AGE = re.compile(r"(\d+)([smhdw])")


def add_parser(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Register the command."""
    parser = commands.add_parser(
        "archive",
        parents=[common],
        help="move old event bodies and artifacts into compressed archive segments",
        description="Move the bodies of events committed before a cut-off, and the artifacts they "
        "brought, into zstd-compressed, content-addressed segment files. The hot store keeps every "
        "id, digest, node and edge; queries, exports and verify read archived data transparently.",
    )
    cutoff = parser.add_mutually_exclusive_group(required=True)
    cutoff.add_argument(
        "--older-than",
        metavar="AGE",
        type=parse_age,
        help="archive events committed more than AGE ago: a number and a unit, s m h d or w (e.g. 30d)",
    )
    cutoff.add_argument(
        "--through-seq", metavar="N", type=int, help="archive events with sequence number up to N"
    )
    parser.add_argument(
        "--archive-dir",
        metavar="DIR",
        help=f"where segments go, remembered by the store (default: the remembered one, ${ARCHIVE_DIR_ENV}, "
        "or STORE.archive beside a SQLite store; a PostgreSQL store needs one the first time)",
    )
    parser.add_argument(
        "--segment-events",
        metavar="N",
        type=int,
        default=SEGMENT_EVENTS,
        help=f"events per segment (default {SEGMENT_EVENTS}); a cold read decompresses one segment",
    )
    parser.set_defaults(run=run)


def parse_age(text: str) -> timedelta:
    """``30d`` → 30 days; units s, m, h, d and w."""
    match = _AGE.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not an age such as 30d, 12h or 90m")
    return timedelta(**{_UNITS[match[2]]: int(match[1])})


def run(args: argparse.Namespace) -> int:
    """Archive, then report what moved and the compression ratio."""
    if args.segment_events < 1:
        raise UsageError("--segment-events must be at least 1")
    if args.through_seq is not None and args.through_seq < 0:
        raise UsageError("--through-seq must not be negative")
    with store_from(args) as store:
        reader = local_reader(store)
        through = args.through_seq
        if through is None:
            through = reader.sequence_at(datetime.now(UTC) - args.older_than)
        archived = reader.archived_through()
        with progress("archive", max(0, through - archived), enabled=not args.json) as bar:
            report = archive_store(
                store,
                through,
                args.archive_dir,
                segment_events=args.segment_events,
                on_progress=lambda done: bar.update(bar.task_ids[0], completed=done),
            )
    summary = report.to_dict()
    if args.json:
        print_json(summary)
        return 0
    moved, total = summary["moved"], summary["archive"]
    if moved["events"]:
        print(
            f"archived {moved['events']:,} events and {moved['artifacts']:,} artifacts (through seq {through})"
            f" into {moved['segments']} segment(s) under {report.directory}:"
            f" {_size(moved['raw_bytes'])} -> {_size(moved['stored_bytes'])}, {moved['compression_ratio']}x"
        )
    else:
        print(f"nothing to archive through seq {through}")
    if total["segments"]:
        print(
            f"the archive holds {total['events']:,} events in {total['segments']} segment(s):"
            f" {_size(total['raw_bytes'])} -> {_size(total['stored_bytes'])}, {total['compression_ratio']}x"
        )
    return 0


def _size(count: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:,.0f} {unit}" if unit == "B" else f"{count:,.1f} {unit}"
        count /= 1000  # type: ignore[assignment]
    raise AssertionError("unreachable")
