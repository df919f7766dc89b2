"""``label set|list`` and ``owners set|list``: sensitivity labels and ownership, recorded in the log.

Each ``set`` records a ledgered event (an ``aiops_label`` or ``aiops_owners`` artifact, the output
of a REGISTER run approved by the local user), so who set what, and when, is provable.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from rich.table import Table

from opslineage.cli.common import UsageError, local_reader, print_json, store_from
from opslineage.cli.render import wide_console
from opslineage.governance import LEVELS, SCOPES, parse_level
from opslineage.ingest import cli_actor
from opslineage.model.facets import LabelFacet, OwnersFacet

if TYPE_CHECKING:
    from opslineage.sdk import Artifact, Tracer

__all__ = ["TRACER_NAMESPACE", "add_parsers", "now_text", "record_with"]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-/:@]{0,199}")
TRACER_NAMESPACE = "opslineage.governance"
"""The namespace of the runs that record labels and owners."""


def _name(flag: str, text: str | None) -> str | None:
    """``text`` checked as a namespace or node name (None stays None)."""
    if text is not None and not _NAME.fullmatch(text):
        raise UsageError(
            f"{flag} {text!r} is not a name: letters, digits and . _ - / : @, starting with a letter "
            "or digit, at most 200 characters"
        )
    return text


def add_parsers(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Register ``label`` and ``owners``."""
    label = commands.add_parser(
        "label",
        help="sensitivity labels: which records are public, internal or restricted",
        description="Sensitivity labels (see docs/security.md): a principal not cleared for a record's "
        "level sees its id, digest and edges, never its payload.",
    )
    sub = label.add_subparsers(metavar="SUBCOMMAND", required=True)
    setting = sub.add_parser(
        "set",
        parents=[common],
        help="record a label rule",
        description="Record that the records of a namespace (of one node type, or of one telemetry "
        "source and its snapshots) are at a level from now on; the most specific rule wins.",
    )
    setting.add_argument("--namespace", required=True, metavar="NS", help="the namespace it labels")
    setting.add_argument("--kind", metavar="KIND", help="only nodes of this type (snapshot, feature …)")
    setting.add_argument("--source", metavar="SRC", help="only this source and the snapshots taken of it")
    setting.add_argument("--level", required=True, metavar="LEVEL", help=f"one of {', '.join(LEVELS)}")
    setting.set_defaults(run=run_label_set)
    listing = sub.add_parser("list", parents=[common], help="the label rules in force, oldest first")
    listing.set_defaults(run=run_label_list)

    owners = commands.add_parser(
        "owners",
        help="ownership: who owns and stewards a namespace, source, job, model or policy",
        description="Owners and stewards, shown in node answers and why-chains and alerted by reconcile.",
    )
    sub = owners.add_subparsers(metavar="SUBCOMMAND", required=True)
    setting = sub.add_parser(
        "set",
        parents=[common],
        help="record owners and stewards",
        description="Record the owners and stewards of a namespace, or of one source, job, model or "
        "policy in it; the newest entry of a scope replaces the one before.",
    )
    setting.add_argument("--namespace", required=True, metavar="NS", help="the namespace")
    scope = setting.add_mutually_exclusive_group()
    for name in SCOPES[1:]:
        scope.add_argument(f"--{name}", metavar=name.upper()[0], help=f"only this {name}")
    setting.add_argument("--owner", action="append", default=[], metavar="X", help="an owner (repeatable)")
    setting.add_argument("--steward", action="append", default=[], metavar="Z", help="a steward (repeatable)")
    setting.set_defaults(run=run_owners_set)
    listing = sub.add_parser("list", parents=[common], help="the ownership entries in force")
    listing.set_defaults(run=run_owners_list)


def record_with(args: argparse.Namespace, write: Callable[[Tracer], Artifact]) -> str:
    """Record a governance facet as a ledgered event, ``write(tracer)`` making it, in the store
    the command names; returns the artifact's node id.

    Raises:
        UsageError: the store refused it.
    """
    from opslineage.sdk import Tracer  # noqa: PLC0415 (the SDK loads only to record)

    with (
        store_from(args, create=True) as store,
        Tracer(TRACER_NAMESPACE, store=store, sync=True) as tracer,
    ):
        artifact = write(tracer)
        errors = tracer.stats.errors
    if errors:
        raise UsageError(f"the store refused the record: {tracer.stats.last_error}")
    return f"entity:{artifact.digest}"


def _record(args: argparse.Namespace, facet: LabelFacet | OwnersFacet) -> str:
    """Record ``facet`` as a ledgered event; returns the artifact's node id."""
    if isinstance(facet, LabelFacet):
        return record_with(args, lambda tracer: tracer.set_label(facet))
    return record_with(args, lambda tracer: tracer.set_owners(facet))


def now_text() -> str:
    """Now, as the SDK writes times."""
    from opslineage.sdk import Tracer  # noqa: PLC0415 (the SDK loads only to record)

    return Tracer.timestamp(datetime.now(UTC))


def run_label_set(args: argparse.Namespace) -> int:
    """Record a label rule; print it."""
    try:
        level = parse_level(args.level)
    except ValueError as error:
        raise UsageError(f"--level: {error}") from None
    facet = LabelFacet(
        namespace=_name("--namespace", args.namespace) or "",
        level=level,  # type: ignore[arg-type]  # parse_level checked it is one of LEVELS
        kind=_name("--kind", args.kind),
        source=_name("--source", args.source),
        set_at=now_text(),
        set_by=cli_actor(),
    )
    node = _record(args, facet)
    scope = " ".join(f"{k} {v}" for k, v in (("kind", facet.kind), ("source", facet.source)) if v)
    if args.json:
        print_json(
            {
                "node": node,
                "namespace": facet.namespace,
                "level": level,
                "kind": facet.kind,
                "source": facet.source,
                "set_by": facet.set_by,
                "set_at": facet.set_at,
            }
        )
    else:
        print(f"labelled {facet.namespace}{' ' + scope if scope else ''} {level}: {node}")
    return 0


def run_label_list(args: argparse.Namespace) -> int:
    """Print the label rules in force."""
    with store_from(args) as store:
        rules = local_reader(store).label_rules()
    if args.json:
        print_json([rule.to_dict() for rule in rules])
        return 0
    table = Table("namespace", "kind", "source", "level", "set by", "set at", box=None)
    for rule in rules:
        table.add_row(
            rule.namespace,
            rule.kind or "",
            rule.source or "",
            rule.level,
            rule.set_by or "",
            rule.set_at or "",
        )
    wide_console().print(table)
    print(f"{len(rules)} rule(s); records no rule names are internal")
    return 0


def run_owners_set(args: argparse.Namespace) -> int:
    """Record an ownership entry; print it."""
    named = [(scope, getattr(args, scope)) for scope in SCOPES[1:] if getattr(args, scope) is not None]
    scope, name = named[0] if named else ("namespace", None)
    if not args.owner and not args.steward:
        raise UsageError("give at least one --owner or --steward")
    for person in (*args.owner, *args.steward):
        if not person.strip() or len(person) > 200:
            raise UsageError(f"an owner or steward must be 1 to 200 characters, not {person!r}")
    facet = OwnersFacet(
        namespace=_name("--namespace", args.namespace) or "",
        scope=scope,  # type: ignore[arg-type]  # one of SCOPES, by the parser
        name=_name(f"--{scope}", name),
        owners=list(args.owner),
        stewards=list(args.steward),
        set_at=now_text(),
        set_by=cli_actor(),
    )
    node = _record(args, facet)
    if args.json:
        print_json(
            {
                "node": node,
                "namespace": facet.namespace,
                "scope": scope,
                "name": name,
                "owners": facet.owners,
                "stewards": facet.stewards,
                "set_by": facet.set_by,
                "set_at": facet.set_at,
            }
        )
    else:
        what = facet.namespace + (f" {scope} {name}" if name else "")
        print(
            f"owners of {what}: {', '.join(facet.owners) or 'none'}"
            f"{'; stewards ' + ', '.join(facet.stewards) if facet.stewards else ''}: {node}"
        )
    return 0


def run_owners_list(args: argparse.Namespace) -> int:
    """Print the ownership entries in force."""
    with store_from(args) as store:
        entries = local_reader(store).ownership()
    if args.json:
        print_json(entries)
        return 0
    table = Table("namespace", "scope", "name", "owners", "stewards", "set by", box=None)
    for entry in entries:
        table.add_row(
            entry["namespace"],
            entry["scope"],
            entry.get("name", ""),
            ", ".join(entry["owners"]),
            ", ".join(entry["stewards"]),
            entry.get("set_by", ""),
        )
    wide_console().print(table)
    print(f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'} in force")
    return 0
