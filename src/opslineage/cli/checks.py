"""``verify --layers`` (the judged layers' options and report) and ``rules register``: judging
the lineage from the command line."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

from rich.table import Table

from opslineage.checks.findings import LayerReport
from opslineage.checks.rules import RulesError, RuleSet, load_rules
from opslineage.checks.verify import parse_layers, verify_layers
from opslineage.cli.common import UsageError, option_time, print_json, progress, store_from
from opslineage.cli.render import wide_console
from opslineage.model.facets import RulesFacet
from opslineage.query import Reader

__all__ = ["add_layer_options", "add_parsers", "judge", "layers_of", "print_layers"]

SHOWN = 50
"""Findings listed in text (``--json`` has every one)."""


def add_layer_options(parser: argparse.ArgumentParser) -> None:
    """The options of ``verify`` that choose and scope the layers."""
    parser.add_argument(
        "--layers",
        default="all",
        metavar="LIST",
        help="which layers to check, comma-separated: integrity (the log and the index, bytes unchanged), "
        "data (inputs, windows, causal order, schemas, deterministic transforms run again), model (digests, "
        "registration, predictions scored again), policy (versions in force, rules evaluated again, actions "
        "as decided, governance rules); default all",
    )
    parser.add_argument(
        "--rules",
        type=Path,
        metavar="FILE",
        help="check actions against the governance rules in this TOML file (default: the rules registered "
        "with `opslineage rules register` in force when each action started)",
    )
    parser.add_argument("--namespace", metavar="NS", help="judge only what was recorded in this namespace")
    parser.add_argument(
        "--since", metavar="TIME", help="judge only what happened at or after TIME (ISO 8601, by eventTime)"
    )


def layers_of(args: argparse.Namespace) -> tuple[str, ...]:
    """The layers ``--layers`` names.

    Raises:
        UsageError: it names an unknown layer.
    """
    try:
        return parse_layers(args.layers)
    except ValueError as error:
        raise UsageError(
            f"--layers {args.layers!r}: {error} (layers: integrity, data, model, policy, all)"
        ) from None


def judge(args: argparse.Namespace, reader: Reader, layers: tuple[str, ...]) -> LayerReport | None:
    """Run the judged layers ``layers`` names, with a progress bar; None when it names none."""
    if not set(layers) - {"integrity"}:
        return None
    rules = _rules(args.rules) if args.rules else None
    since = option_time("--since", args.since)
    with progress("judge", reader.log_length(), enabled=not args.json) as bar:
        return verify_layers(
            reader,
            layers,
            namespace=args.namespace,
            since=since,
            rules=rules,
            on_progress=lambda done, _: bar.update(bar.task_ids[0], completed=done),
        )


def _rules(path: Path) -> RuleSet:
    try:
        return load_rules(path)
    except RulesError as error:
        raise UsageError(str(error)) from None


def print_layers(report: LayerReport) -> None:
    """The judged layers' report as text."""
    for layer, (passed, total) in report.correctness().items():
        print(f"{layer}: {passed} of {total} checks passed")
    if report.stochastic:
        print(
            f"{len(report.stochastic)} feature set(s) from stochastic transforms, not run again (see --json)"
        )
    if report.ok:
        return
    table = Table(
        "layer", "check", "node", "expected", "found", box=None, title=f"{len(report.findings)} finding(s)"
    )
    for finding in report.findings[:SHOWN]:
        table.add_row(finding.layer, finding.check, finding.node, finding.expected, finding.found)
    wide_console().print(table)
    if len(report.findings) > SHOWN:
        print(f"... and {len(report.findings) - SHOWN} more (all of them: --json)")


def add_parsers(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Register ``rules register``."""
    parser = commands.add_parser(
        "rules",
        help="governance rules: register a rules file in the log",
        description="Governance rules that `verify` checks every action against (see docs/verification.md).",
    )
    sub = parser.add_subparsers(metavar="SUBCOMMAND", required=True)
    register = sub.add_parser(
        "register",
        parents=[common],
        help="record a rules file as the rules in force from now on",
        description="Check a TOML rules file and record it in the log, so that the rules in force at any "
        "time are provable; `verify` then checks each action against the rules in force when it started.",
    )
    register.add_argument("file", type=Path, metavar="FILE", help="the TOML rules file")
    register.add_argument("--steward", metavar="NAME", help="who registers them (recorded as approver)")
    register.set_defaults(run=run_register)


def run_register(args: argparse.Namespace) -> int:
    """Record a rules file; print what was registered."""
    from opslineage.sdk import Tracer  # noqa: PLC0415 (the SDK loads only to record)

    rules = _rules(args.file)
    facet = RulesFacet(
        name=rules.name,
        registered_at=Tracer.timestamp(datetime.now(UTC)),
        rules=[rule.to_dict() for rule in rules.rules],
        roles={role: list(members) for role, members in rules.roles.items()},
        file_digest=rules.file_digest,
        steward=args.steward,
    )
    with (
        store_from(args, create=True) as store,
        Tracer("opslineage.governance", store=store, sync=True) as tracer,
    ):
        artifact = tracer.register_rules(facet)
    if args.json:
        print_json({"name": rules.name, "node": f"entity:{artifact.digest}", "rules": len(rules.rules)})
    else:
        print(f"registered {rules.name}: {len(rules.rules)} rule(s), entity:{artifact.digest}")
    return 0
