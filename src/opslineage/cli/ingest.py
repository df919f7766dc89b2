"""``opslineage ingest FILE``: load OpenLineage events from JSON lines or a JSON array, all or nothing."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

import msgspec
from rich.progress import Progress

from opslineage.cli.common import UsageError, print_json, progress, store_from
from opslineage.ingest import IngestPipeline, cli_actor, parse
from opslineage.model import InvalidEvent, ParsedEvent
from opslineage.model.events import MAX_DEPTH

__all__ = ["add_parser", "read_events"]

CHUNK = 2_000
STDIN = Path("-")
_decode_array = msgspec.json.Decoder(list[msgspec.Raw]).decode


def add_parser(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Register the command."""
    parser = commands.add_parser(
        "ingest",
        parents=[common],
        help="ingest OpenLineage events (JSON lines or a JSON array)",
        description="Ingest OpenLineage events (run, job and dataset events). One invalid event rejects "
        "the whole file; events already stored are skipped (ingest is idempotent).",
    )
    parser.add_argument("file", type=Path, help="file of events; '-' reads standard input")
    parser.set_defaults(run=run)


def read_events(path: Path) -> Iterator[tuple[int, bytes]]:
    """Yield ``(line, event JSON)`` from a JSON-lines file or a file holding one JSON array."""
    try:
        data = sys.stdin.buffer.read() if path == STDIN else path.read_bytes()
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error.strerror}") from None
    start = len(data) - len(data.lstrip())
    if data[start : start + 1] == b"[":
        yield from _array_items(path, data)
        return
    for number, line in enumerate(data.split(b"\n"), start=1):
        if line.strip():
            yield number, line


def _array_items(path: Path, data: bytes) -> Iterator[tuple[int, bytes]]:
    """Each item of a JSON array as its own bytes, with the line it starts on; the parser checks
    each one as strictly as a line of JSON lines."""
    try:
        items = _decode_array(data)
    except msgspec.DecodeError as error:
        raise UsageError(f"{path}: malformed JSON array: {error}; nothing was ingested") from None
    except RecursionError:
        raise UsageError(
            f"{path}: an item of the array is nested deeper than {MAX_DEPTH} levels; nothing was ingested"
        ) from None
    line, counted = 1, 0
    for item in items:
        position = data.find(item, counted)  # items are in order, with only , and blanks between
        line += data.count(b"\n", counted, position)
        counted = position
        yield line, bytes(item)


def _parsed_chunks(path: Path, bar: Progress) -> Iterator[list[ParsedEvent]]:
    chunk: list[ParsedEvent] = []
    for line, event in read_events(path):
        try:
            chunk.append(parse(event))
        except InvalidEvent as error:
            raise UsageError(f"{path}, line {line}: {error.reason}; nothing was ingested") from None
        if len(chunk) == CHUNK:
            bar.advance(bar.task_ids[0], len(chunk))
            yield chunk
            chunk = []
    if chunk:
        bar.advance(bar.task_ids[0], len(chunk))
        yield chunk


def run(args: argparse.Namespace) -> int:
    """Ingest the file in one transaction, recorded as written by ``cli:<user>``."""
    with store_from(args, create=True) as store, progress(f"ingest {args.file.name}", None) as bar:
        result = IngestPipeline(store).ingest_many(_parsed_chunks(args.file, bar), actor=cli_actor())
    if args.json:
        print_json(
            {
                "file": str(args.file),
                "accepted": result.accepted,
                "duplicates": result.duplicates,
                "first_seq": result.first_seq,
                "last_seq": result.last_seq,
            }
        )
    else:
        print(
            f"ingested {result.accepted} event(s) from {args.file}"
            + (f", {result.duplicates} already stored" if result.duplicates else "")
        )
    return 0
