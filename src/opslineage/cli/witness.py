"""``witness init`` and ``witness serve``: a c2sp.org/tlog-witness witness that cosigns other logs'
checkpoints after checking they extend the last one it cosigned."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from opslineage.cli.common import UsageError, common_options, print_json
from opslineage.cli.serve import serve_app
from opslineage.ledger.keys import LogKeyError, create_key, load_private_key, load_public_key
from opslineage.ledger.witness import WitnessKey

__all__ = ["add_parser"]

DEFAULT_PORT = 7380


def add_parser(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Register ``witness init`` and ``witness serve``."""
    parser = commands.add_parser("witness", help="cosign other logs' checkpoints (C2SP tlog-witness)")
    kinds = parser.add_subparsers(metavar="COMMAND", required=True)
    offline = common_options(store=False)  # a witness keeps its own state, in no store
    named = argparse.ArgumentParser(add_help=False)
    named.add_argument(
        "--name", required=True, help="the witness's name in its cosignatures, e.g. witness.example/w1"
    )
    named.add_argument(
        "--key", required=True, type=Path, metavar="PATH", help="the witness's private key file"
    )

    sub = kinds.add_parser(
        "init",
        parents=[offline, named],
        help="create the witness's key and print its verifier key",
        description="Create the witness's Ed25519 key (mode 0600) and print its verifier key "
        "(<name>+<key id>+<key>), which log verifiers pass to `opslineage verify --witness-key`.",
    )
    sub.set_defaults(run=run_init)

    sub = kinds.add_parser(
        "serve",
        parents=[offline, named],
        help="serve POST /add-checkpoint",
        description="Cosign checkpoints of the logs given with --log, each after checking its signature and "
        "its consistency with the last checkpoint cosigned for that log (kept in --state).",
    )
    sub.add_argument(
        "--log",
        action="append",
        required=True,
        metavar="ORIGIN=KEY",
        help="a log to witness: its origin and public key (base64, or a .pub/PEM file); repeatable",
    )
    sub.add_argument(
        "--state", required=True, type=Path, metavar="FILE", help="the witness's state (SQLite, created 0600)"
    )
    sub.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    sub.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    sub.set_defaults(run=run_serve)


def run_init(args: argparse.Namespace) -> int:
    """Create the key; print the verifier key."""
    _check_name(args.name)
    try:
        witness = WitnessKey.of(args.name, create_key(args.key))
    except LogKeyError as error:
        raise UsageError(str(error)) from None
    if args.json:
        print_json({"name": args.name, "key": str(args.key), "vkey": witness.vkey})
    else:
        print(witness.vkey)
    return 0


def _check_name(name: str) -> None:
    if not name or any(c.isspace() or c == "+" for c in name):
        raise UsageError(f"--name {name!r} must be non-empty, without spaces or '+'")


def _logs(specs: list[str]) -> dict[str, Ed25519PublicKey]:
    logs = {}
    for spec in specs:
        origin, separator, key = spec.partition("=")
        if not separator or not origin or not key:
            raise UsageError(f"--log {spec!r} must be ORIGIN=KEY")
        try:
            logs[origin] = load_public_key(key)
        except LogKeyError as error:
            raise UsageError(f"--log {origin}: {error}") from None
    return logs


def run_serve(args: argparse.Namespace) -> int:
    """Serve until interrupted."""
    from opslineage.server.witness import WitnessSettings, create_witness_app  # noqa: PLC0415

    _check_name(args.name)
    try:
        key = load_private_key(args.key)
    except LogKeyError as error:
        raise UsageError(f"{error} (create it with `opslineage witness init`)") from None
    if not args.state.parent.is_dir():
        raise UsageError(f"--state {args.state}: no directory {args.state.parent}")
    settings = WitnessSettings(name=args.name, key=key, logs=_logs(args.log), state=args.state)
    print(
        f"witness {args.name} ({WitnessKey.of(args.name, key).vkey}) for {', '.join(sorted(settings.logs))}",
        file=sys.stderr,
    )
    serve_app(create_witness_app(settings), args.host, args.port)
    return 0
