"""``baseline save|accept`` and ``reconcile``: record the lineage structure as a baseline, and report
(and alert owners of) how the store drifted from it."""

from __future__ import annotations

import argparse
import json
import sys
import time

from rich.table import Table

from opslineage.checks.alerts import AlertChannel, NatsChannel, WebhookChannel, send_alerts
from opslineage.checks.baseline import Baseline, BaselineError, find_baseline, record_baseline
from opslineage.checks.reconcile import DEFAULT_SILENCE_FACTOR, ReconcileReport, reconcile
from opslineage.cli.common import (
    EXIT_CHECK_FAILED,
    UsageError,
    add_nats_tls,
    bus_url,
    local_reader,
    nats_tls,
    print_json,
    store_from,
)
from opslineage.cli.render import wide_console

__all__ = ["add_parsers"]


def _positive(flag: str) -> type[float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} {text!r} is not a number") from None
        if not value > 0 or value == float("inf"):
            raise argparse.ArgumentTypeError(f"{flag} {text!r} must be a positive number")
        return value

    return parse  # type: ignore[return-value]


def add_parsers(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Register the commands."""
    factor = argparse.ArgumentParser(add_help=False)
    factor.add_argument(
        "--silence-factor",
        metavar="K",
        type=_positive("--silence-factor"),
        default=DEFAULT_SILENCE_FACTOR,
        help=f"a source (or periodic job) is silent after K times its usual interval without a snapshot "
        f"(run), on the data's clock (default {DEFAULT_SILENCE_FACTOR:g})",
    )
    baseline = commands.add_parser(
        "baseline",
        help="record the lineage structure as a baseline",
        description="Record the lineage structure as it stands (per job: what it reads and writes, code "
        "versions, schema fingerprints per source, model and policy versions, governance rules, chain "
        "coverage) as a ledgered baseline event, for `opslineage reconcile` to compare against.",
    )
    verbs = baseline.add_subparsers(title="actions", metavar="ACTION", required=True)
    parser = verbs.add_parser("save", parents=[common, factor], help="save a new baseline")
    parser.add_argument("name", metavar="NAME", help="the baseline's name ([A-Za-z0-9._-], up to 100)")
    parser.add_argument("--namespace", metavar="NS", help="only the jobs of this namespace (default: all)")
    parser.set_defaults(run=run_save, verb="save")
    parser = verbs.add_parser(
        "accept", parents=[common, factor], help="take the current state as the new baseline NAME"
    )
    parser.add_argument("name", metavar="NAME", help="an existing baseline's name")
    parser.set_defaults(run=run_save, verb="accept", namespace=None)

    parser = commands.add_parser(
        "reconcile",
        parents=[common, factor],
        help="report drift from a baseline and alert owners",
        description="Compare the store with the newest baseline NAME and report each drift, typed, with "
        "the owners of the node: schema_changed, code_version_changed, model_changed, policy_changed, "
        "rules_changed, edge_added, edge_missing, job_vanished, source_silent, coverage_dropped. Each "
        "drift is alerted once per channel until it changes again. Exit 1 when there is drift.",
    )
    parser.add_argument("name", metavar="NAME", help="the baseline's name")
    parser.add_argument(
        "--watch",
        metavar="SECONDS",
        type=_positive("--watch"),
        help="reconcile again every SECONDS, until interrupted",
    )
    parser.add_argument("--alert-webhook", metavar="URL", help="POST each new drift as JSON to URL")
    parser.add_argument(
        "--bus",
        metavar="URL",
        help="publish each new drift on opslineage.alerts.<namespace> of this NATS server",
    )
    add_nats_tls(parser)
    parser.set_defaults(run=run_reconcile)


def run_save(args: argparse.Namespace) -> int:
    """Save (or accept) a baseline and say what it holds."""
    with store_from(args) as store:
        reader = local_reader(store)
        try:
            with reader.operation(f"baseline {args.verb}"):
                namespace = (
                    find_baseline(reader, args.name).namespace if args.verb == "accept" else args.namespace
                )
                saved = record_baseline(
                    reader, store, args.name, namespace, verb=args.verb, regular_within=args.silence_factor
                )
        except BaselineError as error:
            raise UsageError(str(error)) from None
    summary = _summary(saved)
    if args.json:
        print_json(summary)
    else:
        print(
            f"baseline {saved.name} {'accepted' if args.verb == 'accept' else 'saved'}: {saved.id} "
            f"({summary['jobs']} jobs, {summary['sources']} sources, namespace {saved.namespace or 'all'})"
        )
    return 0


def _summary(saved: Baseline) -> dict[str, object]:
    return {
        "id": saved.id,
        "name": saved.name,
        "namespace": saved.namespace,
        "saved_at": saved.saved_at,
        "clock": saved.structure["clock"],
        "jobs": len(saved.structure["jobs"]),
        "sources": len(saved.structure["sources"]),
    }


def _channels(args: argparse.Namespace) -> list[AlertChannel]:
    channels: list[AlertChannel] = []
    if args.alert_webhook:
        try:
            channels.append(WebhookChannel(args.alert_webhook))
        except ValueError as error:
            raise UsageError(f"--alert-webhook: {error}") from None
    if args.bus:
        channels.append(NatsChannel(bus_url(args.bus), nats_tls(args)))
    return channels


def run_reconcile(args: argparse.Namespace) -> int:
    """Reconcile once, or every ``--watch`` seconds; exit 1 when the last round found drift."""
    channels = _channels(args)
    while True:
        with store_from(args) as store:
            reader = local_reader(store)
            with reader.operation("reconcile", args.name):
                try:
                    report = reconcile(reader, args.name, silence_factor=args.silence_factor)
                except BaselineError as error:
                    raise UsageError(str(error)) from None
                sent = send_alerts(report, channels, reader, store)
        _show(report, sent, args)
        if args.watch is None:
            return EXIT_CHECK_FAILED if report.drifts else 0
        time.sleep(args.watch)


def _show(report: ReconcileReport, sent: dict[str, int], args: argparse.Namespace) -> None:
    if args.json:
        document = {**report.to_dict(), "alerts": sent}
        if args.watch is None:
            print_json(document)
        else:
            sys.stdout.write(json.dumps(document, sort_keys=True) + "\n")
            sys.stdout.flush()
        return
    baseline = report.baseline
    if report.drifts:
        table = Table("kind", "node", "job", "expected", "found", "owners", box=None)
        for drift in report.drifts:
            table.add_row(
                drift.kind,
                drift.node,
                drift.job or "",
                drift.expected or "",
                drift.found or "",
                ", ".join(drift.owners),
            )
        wide_console(220).print(table)
    print(
        f"{len(report.drifts)} drift(s) against baseline {baseline.name} of {baseline.saved_at} "
        f"(data clock {report.clock or 'empty'})"
    )
    for target, count in sent.items():
        print(f"alerted {target}: {count} new")
    sys.stdout.flush()
