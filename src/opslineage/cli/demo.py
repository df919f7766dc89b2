"""``opslineage demo``: run a realistic AIOps pipeline into the store and explain one remediation.

With ``--bus`` the lineage goes to a NATS JetStream stream instead, for ``opslineage worker`` to store.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from opslineage.cli.common import (
    UsageError,
    add_nats_tls,
    bus_url,
    local_reader,
    nats_tls,
    print_json,
    progress,
    store_from,
)
from opslineage.cli.render import why_tree, wide_console
from opslineage.query import why_view
from opslineage.store import Store, default_store_url

if TYPE_CHECKING:
    from opslineage.bus import NatsTransport
    from opslineage.demo import DemoConfig, DemoResult

__all__ = ["add_parser"]

_SUMMARY_KINDS = {
    "source": "sources",
    "snapshot": "snapshots",
    "feature": "feature sets",
    "model": "model versions",
    "prediction": "predictions",
    "policy": "policy versions",
    "decision": "decisions",
    "action": "actions",
    "effect": "effects",
}


def add_parser(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Register the command."""
    parser = commands.add_parser(
        "demo",
        parents=[common],
        help="run a simulated AIOps pipeline end to end and explain a remediation",
        description="Simulate a fleet with incidents (or replay CSV telemetry), detect anomalies, apply "
        "versioned remediation policies, remediate, observe the effects — all recorded as lineage — then "
        "print a summary and the why-chain of one remediation. Deterministic for a seed; re-running adds nothing.",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--services", type=int, help="services in the simulated fleet (default 6; a replay has one per CSV)"
    )
    parser.add_argument(
        "--hours",
        type=float,
        default=24.0,
        help="simulated hours (default 24); with --telemetry-csv, the first H hours of each file (default: all of it)",
    )
    parser.add_argument(
        "--telemetry-csv",
        type=Path,
        nargs="+",
        metavar="FILE",
        default=[],
        help="replay these timestamp,value CSV series (e.g. NAB) instead of simulating a fleet; files of "
        "different dates are shifted to start together, at the earliest file's first row, so the run has "
        "one clock (each snapshot records its shift, original time = recorded - shift; `why` shows it)",
    )
    parser.add_argument(
        "--bus",
        metavar="URL",
        help="send the lineage to this NATS JetStream server (nats://HOST:PORT, or tls://HOST:PORT) instead of a store; "
        "`opslineage worker` stores it",
    )
    add_nats_tls(parser)
    parser.add_argument("--stream", help="with --bus: the stream (default: the bus's, OPSLINEAGE)")
    parser.add_argument(
        "--subject", help="with --bus: the subject prefix (default: the bus's, opslineage.events)"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run the demo and print what it did."""
    from opslineage.demo import MIN_HOURS, DemoConfig  # noqa: PLC0415 (numpy loads only when the demo runs)

    if args.telemetry_csv and args.services is not None:
        raise UsageError(
            "--services sizes the simulated fleet; a replay has one service per --telemetry-csv file"
        )
    services = 6 if args.services is None else args.services
    if services < 1:
        raise UsageError("--services must be at least 1")
    if args.hours < MIN_HOURS:
        raise UsageError(
            f"--hours must be at least {MIN_HOURS:g}: the first model trains on the first quarter"
        )
    for path in args.telemetry_csv:
        if not path.is_file():
            raise UsageError(f"--telemetry-csv {path}: no such file")
    config = DemoConfig(seed=args.seed, services=services, hours=args.hours, telemetry_csv=args.telemetry_csv)
    if args.bus:
        return _run_on_bus(args, config)
    with store_from(args, create=True) as store:
        result = _run(args, config, store)
        example = _example(result)
        chain = local_reader(store).why("run:" + example) if example else None
    if args.json:
        print_json(
            {
                "store": store.url,
                "counts": result.counts,
                "incidents": result.incidents,
                "decisions": {"evaluated": result.decisions, "not_fired": result.not_fired},
                "remediations": [
                    {
                        "action": f"run:{r.run_id}",
                        "target": r.target,
                        "type": r.action,
                        "status": r.status,
                        "policy": r.policy,
                        "model": r.model,
                        "incident": r.incident,
                        "outcome": r.outcome,
                    }
                    for r in result.remediations
                ],
                "model_versions": {
                    k: [v for v, _ in versions] for k, versions in result.model_versions.items()
                },
                "policy_versions": {
                    k: [v for v, _ in versions] for k, versions in result.policy_versions.items()
                },
                "why": chain.to_dict() if chain else None,
            }
        )
        return 0
    _print_summary(result, store.url)
    if chain is not None:
        console = wide_console()
        console.print(f"\n[bold]Why did run:{example} happen, and did it help?[/]")
        console.print(why_tree(why_view(chain)))
        console.print(f"\nExplore: opslineage why run:{example}   ·   opslineage ls --kind action")
    return 0


def _run(
    args: argparse.Namespace, config: DemoConfig, store: Store | None, transport: NatsTransport | None = None
) -> DemoResult:
    from opslineage.demo import run_demo  # noqa: PLC0415 (numpy loads only when the demo runs)

    with progress("demo", None, enabled=not args.json) as bar:
        try:
            return run_demo(
                store,
                config,
                lambda done, total: bar.update(bar.task_ids[0], completed=done, total=total),
                transport=transport,
            )
        except (ValueError, RuntimeError) as error:  # bad telemetry; lineage the store did not take
            raise UsageError(str(error)) from None


def _run_on_bus(args: argparse.Namespace, config: DemoConfig) -> int:
    """Send the demo's lineage through NATS; the worker stores it, so there is no why-chain to print here."""
    from opslineage.bus import DEFAULT_STREAM, DEFAULT_SUBJECT, NatsTransport  # noqa: PLC0415 (nats-py)

    args.stream = args.stream or DEFAULT_STREAM
    args.subject = args.subject or DEFAULT_SUBJECT
    tls = nats_tls(args)
    try:
        transport = NatsTransport(bus_url(args.bus), stream=args.stream, subject=args.subject, tls=tls)
    except ValueError as error:
        raise UsageError(str(error)) from None
    result = _run(args, config, None, transport)
    example = _example(result)
    stats = transport.stats
    if args.json:
        print_json(
            {
                "bus": args.bus,
                "stream": args.stream,
                "events": result.counts["events"],
                "published": stats.published,
                "duplicates": stats.duplicates,
                "pending": transport.pending,
                "remediations": [f"run:{r.run_id}" for r in result.remediations],
                "example": f"run:{example}" if example else None,
            }
        )
        return 0
    _print_summary(result, f"{args.bus} (stream {args.stream})")
    if transport.pending:
        print(
            f"NATS did not take {transport.pending} event(s) yet: they are kept in {transport.spill_dir} "
            "and sent by the next run for this stream."
        )
    store = args.store or default_store_url()
    flags = "" if args.stream == DEFAULT_STREAM else f" --stream {args.stream}"
    flags += "" if args.subject == DEFAULT_SUBJECT else f" --subject {args.subject}"
    print(f"\nStore them: opslineage worker --bus {args.bus}{flags} --store {store}")
    if example:
        print(f"Then explain one: opslineage why run:{example} --store {store}")
    return 0


def _example(result: DemoResult) -> str | None:
    """A remediation worth explaining: resolved, under the newest policy version if possible."""
    newest = {versions[-1][0] for versions in result.policy_versions.values()}
    ranked = sorted(
        result.remediations,
        key=lambda r: (r.outcome == "resolved", r.policy in newest, r.incident is not None),
    )
    return ranked[-1].run_id if ranked else None


def _print_summary(result: DemoResult, url: str) -> None:
    kinds = ", ".join(f"{result.kinds.get(kind, 0)} {label}" for kind, label in _SUMMARY_KINDS.items())
    resolved = [r for r in result.remediations if r.outcome == "resolved"]
    fixed_incidents = {(r.target, r.incident) for r in resolved if r.incident}
    if result.added is not None:
        already = result.emitted - result.added
        print(
            f"This run recorded {result.emitted} lineage events in {url}: {result.added} new"
            + (f", {already} already stored (the same seed and options ran before)" if already else "")
            + "."
        )
        print(f"The store now holds {result.counts['events']} events: {kinds}.")
    else:
        print(f"Sent {result.counts['events']} lineage events to {url}.")
    print(f"Decisions: {result.decisions} evaluated, {result.not_fired} did not fire.")
    failed = sum(r.status != "succeeded" for r in result.remediations)
    outcome = f"Remediations: {len(result.remediations)} ({failed} failed or refused); "
    if result.replay:
        outcome += (
            f"{len(resolved)} followed by recovery in the recorded series "
            "(observed, not caused: replayed telemetry cannot react to a remediation)."
        )
    else:
        outcome += (
            f"{len(resolved)} resolved their target's problem; "
            f"{len(fixed_incidents)} of {result.incidents} injected incidents fixed by a remediation."
        )
    print(outcome)
    versions = sorted({**result.model_versions, **result.policy_versions}.items())
    days = {since.date() for _, introduced in versions for _, since in introduced}
    when = "%Y-%m-%d %H:%M" if len(days) > 1 else "%H:%M"
    for name, introduced in versions:
        print(f"  {name}: " + " → ".join(f"{version} (from {since:{when}})" for version, since in introduced))
