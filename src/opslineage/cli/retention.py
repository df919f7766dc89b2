"""``retention set|list|apply`` and ``hold add|release|list``: retention by crypto-shredding, and
legal holds, each recorded as a ledgered event (see :mod:`opslineage.store.retention`).

``retention apply`` shreds, per namespace and UTC month, the sealed artifact contents past their
rule and not held, and records each shred (an ``aiops_shred`` artifact) naming the data keys it
destroyed and the rule; ``--dry-run`` only says what it would do.
"""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime
from typing import Any

from opslineage.cli.common import UsageError, local_reader, print_json, store_from
from opslineage.cli.govern import TRACER_NAMESPACE, _name, now_text, record_with
from opslineage.ingest import cli_actor
from opslineage.model.facets import HoldFacet, RetentionFacet, ShredFacet
from opslineage.sdk import Tracer
from opslineage.store import Store
from opslineage.store.retention import apply_shred, holds_from_contents, plan_retention, rules_from_contents

__all__ = ["add_parsers", "parse_keep"]

_KEEP = re.compile(r"(\d{1,5})([dw])")
_MAX_REASON = 500


def parse_keep(text: str) -> int:
    """``400d`` → 400 days; ``8w`` → 56.

    Raises:
        argparse.ArgumentTypeError: not a whole number of days or weeks.
    """
    match = _KEEP.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a retention such as 400d or 8w")
    return int(match[1]) * (7 if match[2] == "w" else 1)


def add_parsers(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Register ``retention`` and ``hold``."""
    retention = commands.add_parser(
        "retention",
        help="retention rules, and shredding the sealed payloads past them",
        description="Payloads past their retention are crypto-shredded: their data key (per namespace "
        "and UTC month) is destroyed and their ciphertext removed; ids, digests, edges and the log remain.",
    )
    sub = retention.add_subparsers(metavar="SUBCOMMAND", required=True)
    setting = sub.add_parser("set", parents=[common], help="record a retention rule")
    setting.add_argument("--namespace", required=True, metavar="NS", help="the namespace it covers")
    setting.add_argument("--kind", metavar="KIND", help="only artifacts of this type (snapshot, feature …)")
    setting.add_argument("--keep", required=True, type=parse_keep, metavar="AGE", help="e.g. 400d or 8w")
    setting.set_defaults(run=run_set)
    listing = sub.add_parser("list", parents=[common], help="the retention rules in force")
    listing.set_defaults(run=run_list)
    applying = sub.add_parser("apply", parents=[common], help="shred what is past its retention")
    applying.add_argument("--dry-run", action="store_true", help="say what would be shredded; change nothing")
    applying.set_defaults(run=run_apply)

    hold = commands.add_parser("hold", help="legal holds: records exempt from shredding until released")
    sub = hold.add_subparsers(metavar="SUBCOMMAND", required=True)
    for verb, run, text in (
        ("add", run_hold_add, "place a hold"),
        ("release", run_hold_release, "release one"),
    ):
        action = sub.add_parser(verb, parents=[common], help=text)
        action.add_argument("node", nargs="?", metavar="NODE", help="an artifact's node id (entity:sha256:…)")
        action.add_argument("--namespace", metavar="NS", help="a whole namespace (instead of NODE)")
        action.add_argument("--reason", required=True, metavar="TEXT", help="why (a case, a request)")
        action.set_defaults(run=run)
    listing = sub.add_parser("list", parents=[common], help="the holds in force")
    listing.set_defaults(run=run_hold_list)


def run_set(args: argparse.Namespace) -> int:
    """Record a retention rule; print it."""
    facet = RetentionFacet(
        namespace=_name("--namespace", args.namespace) or "",
        kind=_name("--kind", args.kind),
        keep_days=args.keep,
        set_at=now_text(),
        set_by=cli_actor(),
    )
    node = record_with(args, lambda tracer: tracer.set_retention(facet))
    if args.json:
        print_json({"node": node, **_fields(facet)})
    else:
        scope = f" kind {facet.kind}" if facet.kind else ""
        print(f"retention {facet.namespace}{scope}: keep {facet.keep_days} days: {node}")
    return 0


def _fields(facet: RetentionFacet | HoldFacet) -> dict[str, Any]:
    """A facet's fields, without the producer and schema keys."""
    return {name: getattr(facet, name) for name in facet.__struct_fields__ if not name.startswith("_")}


def _recorded(args: argparse.Namespace, node_type: str) -> list[dict[str, Any]]:
    """The contents of every ``node_type`` artifact, oldest first, read through the audited read path."""
    with store_from(args) as store:
        reader = local_reader(store)
        with reader.operation(f"{node_type} list"):
            records = reader.artifact_records(node_type)
            contents = reader.contents(record.id for record in records)
    return [contents[record.id] for record in records if isinstance(contents.get(record.id), dict)]


def run_list(args: argparse.Namespace) -> int:
    """Print the retention rules in force."""
    rules = [rule.to_dict() for rule in rules_from_contents(_recorded(args, "retention"))]
    if args.json:
        print_json(rules)
    for rule in [] if args.json else rules:
        scope = f" kind {rule['kind']}" if rule.get("kind") else ""
        print(f"{rule['namespace']}{scope}: keep {rule['keep_days']} days (set by {rule.get('set_by')})")
    return 0


def run_apply(args: argparse.Namespace) -> int:
    """Shred what is past its retention (or, with --dry-run, say what would be)."""
    with store_from(args) as store:
        plans = plan_retention(store, datetime.now(UTC))
        done = []
        for plan in plans:
            summary = plan.to_dict()
            if not args.dry_run and plan.blocked is None:
                apply_shred(store, plan)
                summary["shred_event"] = _record_shred(store, plan.to_dict())
            done.append(summary)
    if args.json:
        print_json({"dry_run": args.dry_run, "scopes": done})
        return 0
    verb = "would shred" if args.dry_run else "shredded"
    for scope in done:
        if scope["blocked"]:
            print(f"{scope['namespace']} {scope['period']}: not shredded: {scope['blocked']}")
        else:
            event = f" ({scope['shred_event']})" if "shred_event" in scope else ""
            print(
                f"{scope['namespace']} {scope['period']}: {verb} {scope['artifacts'] + scope['archived']} "
                f"content(s), {scope['held']} held, keep {scope['rule'].get('keep_days')} days{event}"
            )
    if not done:
        print("nothing is past its retention")
    return 0


def _record_shred(store: Store, summary: dict[str, Any]) -> str:
    facet = ShredFacet(
        namespace=summary["namespace"],
        period=summary["period"],
        data_keys=summary["data_keys"],
        artifacts=summary["artifacts"] + summary["archived"],
        held=summary["held"],
        rule=summary["rule"],
        shredded_at=now_text(),
        shredded_by=cli_actor(),
    )
    with Tracer(TRACER_NAMESPACE, store=store, sync=True) as tracer:
        artifact = tracer.record_shred(facet)
    if tracer.stats.errors:
        raise UsageError(f"shredded, but the shred was not recorded: {tracer.stats.last_error}")
    return f"entity:{artifact.digest}"


def _hold(args: argparse.Namespace, *, active: bool) -> int:
    if (args.node is None) == (args.namespace is None):
        raise UsageError("name one NODE (an artifact, entity:sha256:…) or one --namespace")
    if not args.reason.strip() or len(args.reason) > _MAX_REASON or not args.reason.isprintable():
        raise UsageError(f"--reason must be 1 to {_MAX_REASON} printable characters")
    namespace = _name("--namespace", args.namespace)
    if args.node is not None:
        if not args.node.startswith("entity:sha256:"):
            raise UsageError(f"NODE {args.node!r} is not an artifact's node id (entity:sha256:…)")
        with store_from(args) as store:
            namespace = local_reader(store).resolve(args.node).namespace or ""
    facet = HoldFacet(
        namespace=namespace or "",
        node=args.node,
        reason=args.reason,
        active=active,
        set_at=now_text(),
        set_by=cli_actor(),
    )
    node = record_with(args, lambda tracer: tracer.set_hold(facet))
    if args.json:
        print_json({"node": node, **_fields(facet)})
    else:
        print(f"hold {'placed on' if active else 'released from'} {args.node or namespace}: {node}")
    return 0


def run_hold_add(args: argparse.Namespace) -> int:
    """Place a legal hold."""
    return _hold(args, active=True)


def run_hold_release(args: argparse.Namespace) -> int:
    """Release a legal hold."""
    return _hold(args, active=False)


def run_hold_list(args: argparse.Namespace) -> int:
    """Print the holds in force."""
    holds = [hold.to_dict() for hold in holds_from_contents(_recorded(args, "hold"))]
    if args.json:
        print_json(holds)
        return 0
    for hold in holds:
        print(f"{hold.get('node') or hold['namespace']}: {hold['reason']} (set by {hold.get('set_by')})")
    return 0
