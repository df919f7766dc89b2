"""``quality``: the lineage's coverage figures per namespace (and per day or week), as a table or
JSON (see :mod:`opslineage.checks.quality` and ``docs/quality.md``)."""

from __future__ import annotations

import argparse

from rich.table import Table

from opslineage.checks.quality import FIGURES, PERIODS, Coverage, QualityReport, Ratio, quality
from opslineage.checks.verify import correctness
from opslineage.cli.common import local_reader, option_time, print_json, progress, store_from
from opslineage.cli.render import wide_console

__all__ = ["add_parser"]


def add_parser(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Register the command."""
    parser = commands.add_parser(
        "quality",
        parents=[common],
        help="coverage metrics of the lineage, per namespace and period",
        description="The share of actions with a complete why-chain to registered sources, of predictions "
        "with a model digest, of feature sets with a code version, of actions with an effect record and of "
        "effects with a verdict; each with its numerator and denominator ('no data' when there are no items).",
    )
    parser.add_argument("--namespace", metavar="NS", help="only this namespace (default: each one)")
    parser.add_argument(
        "--since",
        metavar="TIME",
        help="only items recorded at or after this time (ISO 8601; without an offset, UTC)",
    )
    parser.add_argument("--by", choices=PERIODS, help="also split the figures by day or ISO week")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Compute and print the figures."""
    since = option_time("--since", args.since)
    with store_from(args) as store:
        reader = local_reader(store)
        with reader.operation("quality"), progress("quality", None, enabled=not args.json) as bar:
            task = bar.task_ids[0]
            report = quality(
                reader,
                namespace=args.namespace,
                since=since,
                by=args.by,
                correctness=correctness(reader, args.namespace, since),
                on_progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    if args.json:
        print_json(report.to_dict())
    else:
        _print(report)
    return 0


def _cell(ratio: Ratio) -> str:
    value = ratio.value
    return "no data" if value is None else f"{value:.1%} ({ratio.numerator}/{ratio.denominator})"


def _print(report: QualityReport) -> None:
    console = wide_console()
    if not report.namespaces:
        console.print(
            "no actions, predictions, feature sets or effects" + (" since then" if report.since else "")
        )
        return
    rows: list[Coverage] = [*report.namespaces, *report.periods]
    table = Table("namespace", *(["period"] if report.by else []), *FIGURES, box=None, title="coverage")
    for coverage in rows:
        period = [coverage.period or "all"] if report.by else []
        table.add_row(coverage.namespace or "", *period, *(_cell(coverage.figures[f]) for f in FIGURES))
    console.print(table)
    if report.correctness is not None:
        checks = Table("layer", "checks passed", box=None, title="correctness")
        for layer, ratio in report.correctness.items():
            checks.add_row(layer, _cell(ratio))
        console.print(checks)
