"""``opslineage worker``: store what a NATS JetStream stream holds, as one of any number of workers."""

from __future__ import annotations

import argparse
import logging
from dataclasses import asdict
from pathlib import Path

from opslineage.cli.common import UsageError, add_nats_tls, bus_url, nats_tls, print_json
from opslineage.store import default_store_url

__all__ = ["add_parser"]


def add_parser(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Register the command."""
    parser = commands.add_parser(
        "worker",
        parents=[common],
        help="store lineage events from a NATS JetStream stream (run as many as you like)",
        description="Pull lineage events from a JetStream stream in batches, store each batch in one "
        "transaction and acknowledge it only then. Workers with the same --durable share the work; a "
        "worker that dies loses nothing (its messages are redelivered) and nothing is stored twice. "
        "Invalid events are dead-lettered. Runs until SIGTERM or Ctrl-C.",
    )
    parser.add_argument(
        "--bus",
        required=True,
        metavar="URL",
        help="the NATS server, e.g. nats://127.0.0.1:4222, or tls://HOST:PORT for TLS",
    )
    add_nats_tls(parser)
    parser.add_argument(
        "--connect-timeout",
        type=float,
        metavar="SECONDS",
        help="give up (exit 2) when NATS has not answered within this time at start; every failed "
        "attempt is logged (default: keep trying, as a service started before NATS should)",
    )
    parser.add_argument("--stream", help="the stream (default: the bus's, OPSLINEAGE)")
    parser.add_argument(
        "--durable",
        metavar="NAME",
        help="the durable consumer; workers with the same name share the work (default: the bus's, "
        "opslineage-worker)",
    )
    parser.add_argument(
        "--batch", type=int, default=500, metavar="N", help="events per fetch and transaction (default 500)"
    )
    parser.add_argument(
        "--subject",
        help="the subject prefix of a stream created here (default: the bus's, opslineage.events)",
    )
    parser.add_argument(
        "--deadletter",
        type=Path,
        metavar="FILE",
        help="also append every dead-lettered message to this JSON-lines file "
        "(they are always published on opslineage.deadletter)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Store events until stopped; print what was done."""
    from nats.errors import Error as NatsError  # noqa: PLC0415 (nats-py loads only when a worker runs)

    from opslineage.bus.streams import (  # noqa: PLC0415
        DEFAULT_STREAM,
        DEFAULT_SUBJECT,
        StreamMismatch,
        describe,
    )
    from opslineage.bus.worker import DEFAULT_DURABLE, run_worker  # noqa: PLC0415

    if args.batch < 1:
        raise UsageError("--batch must be at least 1")
    if args.connect_timeout is not None and not args.connect_timeout > 0:
        raise UsageError("--connect-timeout must be a positive number of seconds")
    tls = nats_tls(args)
    if not logging.getLogger().handlers and not logging.getLogger("opslineage").handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        stats = run_worker(
            bus_url(args.bus),
            args.store or default_store_url(),
            stream=args.stream or DEFAULT_STREAM,
            durable=args.durable or DEFAULT_DURABLE,
            batch=args.batch,
            subject=args.subject or DEFAULT_SUBJECT,
            deadletter=args.deadletter,
            connect_timeout=args.connect_timeout,
            tls=tls,
        )
    except TimeoutError as error:
        raise UsageError(str(error)) from None
    except (NatsError, StreamMismatch, ValueError) as error:
        raise UsageError(f"{args.bus}: {describe(error)}") from None
    if args.json:
        print_json(asdict(stats))
    else:
        print(
            f"Stored {stats.stored} event(s) in {stats.batches} batch(es); {stats.duplicates} already stored, "
            f"{stats.deadlettered} dead-lettered, {stats.retried} handed back for redelivery."
        )
    return 0
