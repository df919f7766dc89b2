"""``access-log``: who read or was refused what, when, from where, from the store's access log.

The access log is the Merkle log of every read (``docs/security.md``, "The access log");
``opslineage verify`` checks it with the lineage log. Reading it needs ``access-log:read``
(auditor, admin; the local user of a store is its admin), and is itself recorded.
"""

from __future__ import annotations

import argparse
import sys

import msgspec
from rich.table import Table

from opslineage.cli.common import UsageError, local_reader, option_time, store_from
from opslineage.cli.render import wide_console
from opslineage.governance import OUTCOMES
from opslineage.query.reader import ACCESS_LOG_LIMIT, AccessRecord

__all__ = ["add_parser"]


def _limit(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) <= ACCESS_LOG_LIMIT:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to {ACCESS_LOG_LIMIT}, not {text!r}")
    return int(text)


def add_parser(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Register ``access-log``."""
    parser = commands.add_parser(
        "access-log",
        parents=[common],
        help="the audit trail of reads and refusals (auditor, admin)",
        description="Access events oldest first: the operation, who (actor and role), when, where from, "
        "the outcome (allowed, redacted, denied) with its reason, and the node ids it named. "
        "--json prints one JSON object per line.",
    )
    parser.add_argument("--actor", metavar="ID", help="only this actor (token:NAME, local:USER, anonymous)")
    parser.add_argument("--node", metavar="ID", help="only events that named this node id")
    parser.add_argument("--since", metavar="TIME", help="only events at or after this time (ISO 8601)")
    parser.add_argument("--outcome", choices=OUTCOMES, help="only events with this outcome")
    parser.add_argument(
        "--after", type=int, default=0, metavar="SEQ", help="only events after this sequence number"
    )
    parser.add_argument(
        "--limit", type=_limit, default=1000, metavar="N", help="at most N events (default 1000)"
    )
    parser.set_defaults(run=run_access_log)


def run_access_log(args: argparse.Namespace) -> int:
    """Print the access events the filters select."""
    if args.after < 0:
        raise UsageError(f"--after {args.after}: a sequence number is at least 0")
    since = option_time("--since", args.since)
    with store_from(args) as store:
        records = local_reader(store).access_log(
            actor=args.actor,
            node=args.node,
            since=since,
            outcome=args.outcome,
            limit=args.limit,
            after=args.after,
        )
    if args.json:
        for record in records:
            sys.stdout.write(msgspec.json.encode(record.to_dict()).decode() + "\n")
        return 0
    _print_table(records)
    return 0


def _print_table(records: list[AccessRecord]) -> None:
    table = Table("seq", "at", "operation", "actor", "role", "client", "outcome", "reason", "nodes", box=None)
    for record in records:
        nodes = ", ".join(record.nodes[:3]) + (
            f" (+{len(record.nodes) - 3})" if len(record.nodes) > 3 else ""
        )
        table.add_row(
            str(record.seq),
            record.at,
            record.name + (f" {record.target}" if record.target else ""),
            record.actor,
            record.role or "",
            record.client or "",
            record.outcome,
            record.reason or "",
            nodes,
        )
    wide_console().print(table)
    print(f"{len(records)} access event(s)")
