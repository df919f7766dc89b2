"""``opslineage ingest FILE``: load OpenLineage events from JSON lines or a JSON array, all or nothing."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path

from rich.progress import Progress

from opslineage.cli.common import UsageError, print_json, progress, store_from
from opslineage.ingest import IngestPipeline, cli_actor, parse
from opslineage.model import InvalidEvent, ParsedEvent
from opslineage.model.events import MAX_EVENT_BYTES

__all__ = ["add_parser", "read_events"]

CHUNK = 2_000


def add_parser(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Register the command."""
    parser = commands.add_parser(
        "ingest",
        parents=[common],
        help="ingest OpenLineage events (JSON lines or a JSON array)",
        description="Ingest OpenLineage RunEvents. One invalid event rejects the whole file; "
        "events already stored are skipped (ingest is idempotent).",
    )
    parser.add_argument("file", type=Path, help="file of events; '-' is not accepted, give a path")
    parser.set_defaults(run=run)


def read_events(path: Path) -> Iterator[tuple[int, bytes | dict]]:
    """Yield ``(line, event)`` from a JSON-lines file or a file holding one JSON array."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error.strerror}") from None
    start = len(data) - len(data.lstrip())
    if data[start : start + 1] == b"[":
        yield from _array_items(path, data.decode("utf-8", errors="strict"))
        return
    for number, line in enumerate(data.split(b"\n"), start=1):
        if line.strip():
            yield number, line


def _array_items(path: Path, text: str) -> Iterator[tuple[int, dict]]:
    decoder = json.JSONDecoder()
    line, counted = 1, 0

    def skip(position: int) -> int:
        while position < len(text) and text[position] in " \t\r\n":
            position += 1
        return position

    def line_at(position: int) -> int:
        nonlocal line, counted
        line += text.count("\n", counted, position)
        counted = position
        return line

    position = skip(text.index("[") + 1)
    if text.startswith("]", position):
        return
    while True:
        try:
            item, end = decoder.raw_decode(text, position)
        except json.JSONDecodeError as error:
            raise UsageError(
                f"{path}, line {error.lineno}: malformed JSON: {error.msg}; nothing was ingested"
            ) from None
        if end - position > MAX_EVENT_BYTES:
            raise UsageError(
                f"{path}, line {line_at(position)}: event is over the limit of {MAX_EVENT_BYTES} bytes"
            )
        yield line_at(position), item
        position = skip(end)
        if text.startswith("]", position) and skip(position + 1) == len(text):
            return
        if not text.startswith(",", position):
            raise UsageError(f"{path}, line {line_at(position)}: malformed JSON: expected ',' or a final ']'")
        position = skip(position + 1)


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
