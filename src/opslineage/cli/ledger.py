"""``init``, ``checkpoint``, ``proof`` and ``verify``: the transparency log from the command line."""

from __future__ import annotations

import argparse
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from opslineage.cli.common import (
    EXIT_CHECK_FAILED,
    UsageError,
    local_reader,
    print_json,
    progress,
    store_from,
)
from opslineage.ledger.checkpoint import CheckpointError, parse_note
from opslineage.ledger.keys import LogKeyError, key_path, load_private_key, load_public_key
from opslineage.ledger.log import CHECKPOINT_EVERY, CHECKPOINT_SECONDS, checkpoint, init_log
from opslineage.query import ConsistencyProof, InclusionProof

__all__ = ["add_parsers"]


def add_parsers(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Register the commands."""
    keyed = argparse.ArgumentParser(add_help=False)
    keyed.add_argument(
        "--key", metavar="PATH", help="the log's private key (default: $OPSLINEAGE_KEY or ./opslineage.key)"
    )

    parser = commands.add_parser(
        "init",
        parents=[common, keyed],
        help="create the log's signing key",
        description="Create the store (if needed) and the Ed25519 key pair that signs its checkpoints. "
        "The private key file gets mode 0600; the public key is written beside it (.pub) for auditors.",
    )
    parser.add_argument(
        "--origin", help="the log's name in checkpoints (no spaces; default from host and store)"
    )
    parser.add_argument(
        "--checkpoint-every",
        type=int,
        default=CHECKPOINT_EVERY,
        metavar="N",
        help=f"sign a checkpoint automatically every N events (default {CHECKPOINT_EVERY})",
    )
    parser.add_argument(
        "--checkpoint-seconds",
        type=int,
        default=CHECKPOINT_SECONDS,
        metavar="T",
        help=f"... or when T seconds have passed since the last one (default {CHECKPOINT_SECONDS})",
    )
    parser.set_defaults(run=run_init)

    parser = commands.add_parser(
        "checkpoint",
        parents=[common, keyed],
        help="sign the log's current size and root",
        description="Sign and keep a checkpoint; print it as a C2SP signed note.",
    )
    parser.set_defaults(run=run_checkpoint)

    parser = commands.add_parser("proof", help="inclusion and consistency proofs (RFC 9162)")
    kinds = parser.add_subparsers(metavar="KIND", required=True)
    sub = kinds.add_parser("inclusion", parents=[common], help="prove an event is in the log")
    sub.add_argument("seq", type=int, metavar="SEQ", help="the event's sequence number")
    sub.add_argument("--tree-size", type=int, help="against the tree of this size (default: now)")
    sub.set_defaults(
        run=run_proof, prove=lambda reader, args: reader.inclusion_proof(args.seq, args.tree_size)
    )
    sub = kinds.add_parser("consistency", parents=[common], help="prove a larger log extends a smaller one")
    sub.add_argument("first", type=int, metavar="OLD")
    sub.add_argument("second", type=int, metavar="NEW")
    sub.set_defaults(
        run=run_proof, prove=lambda reader, args: reader.consistency_proof(args.first, args.second)
    )

    parser = commands.add_parser(
        "verify",
        parents=[common, keyed],
        help="check the log against the stored events and signatures",
        description="Recompute every leaf from the stored events and the tree from the leaves, check every "
        "stored checkpoint's root and signature; exit 1 naming the first sequence number that differs.",
    )
    parser.add_argument(
        "--public-key", metavar="KEY", help="the log's public key (base64, or a .pub/PEM file)"
    )
    parser.add_argument(
        "--checkpoint",
        type=Path,
        metavar="FILE",
        help="also prove the log extends this checkpoint an auditor kept",
    )
    parser.set_defaults(run=run_verify)


def run_init(args: argparse.Namespace) -> int:
    """Create the key pair and record the log's origin."""
    with store_from(args, create=True) as store:
        try:
            path, origin = init_log(
                store,
                key=args.key,
                origin=args.origin,
                every=args.checkpoint_every,
                seconds=args.checkpoint_seconds,
            )
        except LogKeyError as error:
            raise UsageError(str(error)) from None
        public = local_reader(store).log_public_key()
    if args.json:
        print_json({"key": str(path), "public_key": public, "origin": origin})
    else:
        print(
            f"log {origin}: private key {path} (mode 0600), public key {path.with_suffix('.pub')}: {public}"
        )
    return 0


def run_checkpoint(args: argparse.Namespace) -> int:
    """Sign and print a checkpoint."""
    with store_from(args) as store:
        try:
            made = checkpoint(store, load_private_key(key_path(args.key)))
        except (LogKeyError, CheckpointError) as error:
            raise UsageError(str(error)) from None
    if args.json:
        print_json(made.to_dict())
    else:
        print(made.note, end="")
    return 0


def run_proof(args: argparse.Namespace) -> int:
    """Print the inclusion or consistency proof the subcommand asked for."""
    with store_from(args) as store:
        try:
            proof = args.prove(local_reader(store), args)
        except ValueError as error:
            raise UsageError(str(error)) from None
    _print_proof(args, proof)
    return 0


def _print_proof(args: argparse.Namespace, proof: InclusionProof | ConsistencyProof) -> None:
    if args.json:
        print_json(proof)
        return
    for name, value in proof.to_dict().items():
        if isinstance(value, list):
            print(f"{name}:")
            for item in value:
                print(f"  {item}")
        else:
            print(f"{name}: {value}")


def run_verify(args: argparse.Namespace) -> int:
    """Verify the whole log; exit 1 with findings when anything differs."""
    with store_from(args) as store:
        reader = local_reader(store)
        try:
            public = _public_key(args, reader.log_public_key())
            kept = parse_note(args.checkpoint.read_text()) if args.checkpoint else None
        except (LogKeyError, CheckpointError, OSError) as error:
            raise UsageError(str(error)) from None
        with progress("verify", reader.log_length(), enabled=not args.json) as bar:
            report = reader.verify(public, lambda done, total: bar.update(bar.task_ids[0], completed=done))
        if kept is not None and public is not None:
            report.findings.extend(reader.verify_extends(kept, public))
    if args.json:
        print_json(report.to_dict())
    elif report.ok:
        print(
            f"ok: {report.events} events and {report.checkpoints} checkpoint(s) verified"
            + (f", {report.segments} archive segment(s) among them" if report.segments else "")
            + ("; the log extends the kept checkpoint" if kept else "")
        )
    else:
        print(f"FAILED at sequence {report.first_bad_seq}: {len(report.findings)} finding(s)")
        for finding in sorted(report.findings, key=lambda f: f.seq)[:50]:
            print(f"  seq {finding.seq}: {finding.what}")
    return 0 if report.ok else EXIT_CHECK_FAILED


def _public_key(args: argparse.Namespace, recorded: str | None) -> Ed25519PublicKey | None:
    """The key to check signatures with: --public-key, else the private key's, else the store's record."""
    if args.public_key:
        return load_public_key(args.public_key)
    path = key_path(args.key)
    if path.exists():
        return load_private_key(path).public_key()
    return load_public_key(recorded) if recorded else None
