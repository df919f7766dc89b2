"""``init``, ``checkpoint``, ``proof`` and ``verify``: the transparency log from the command line.

``checkpoint --witness URL`` has witnesses cosign the new checkpoint; ``verify`` checks the newest
checkpoint against the one this client remembers for the log (:mod:`opslineage.ledger.memory`),
and, with ``--witness-key``, that the witnesses cosigned it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from opslineage.checks.findings import LayerReport
from opslineage.cli.checks import add_layer_options, judge, layers_of, print_layers
from opslineage.cli.common import (
    EXIT_CHECK_FAILED,
    UsageError,
    local_reader,
    print_json,
    progress,
    store_from,
)
from opslineage.cli.keys import add_kek_option
from opslineage.ledger.checkpoint import Checkpoint, CheckpointError, parse_note
from opslineage.ledger.keys import LogKeyError, load_private_key, load_public_key
from opslineage.ledger.log import CHECKPOINT_EVERY, CHECKPOINT_SECONDS, checkpoint, init_log
from opslineage.ledger.memory import CacheError, CheckpointMemory
from opslineage.ledger.verify import INDEX_REPORTED, Finding, VerifyReport
from opslineage.ledger.witness import WitnessError, WitnessKey, cosigned_by, witness_checkpoint
from opslineage.query import ConsistencyProof, InclusionProof, Reader
from opslineage.store.keyring import ensure_kek

__all__ = ["add_parsers"]


def add_parsers(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Register the commands."""
    keyed = argparse.ArgumentParser(add_help=False)
    keyed.add_argument(
        "--key",
        metavar="PATH",
        help="the log's private key (default: $OPSLINEAGE_KEY, else where `init` put it: beside a "
        "SQLite store's file, x.db → x.key, else ./opslineage.key)",
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
    sealing = parser.add_mutually_exclusive_group()
    sealing.add_argument(
        "--encrypt",
        action="store_const",
        const="restricted",
        dest="encrypt",
        help="seal the payloads of restricted records (by label) at rest with AES-256-GCM; makes the "
        "key-encryption key if there is none (see `opslineage keys`)",
    )
    sealing.add_argument(
        "--encrypt-all",
        action="store_const",
        const="all",
        dest="encrypt",
        help="seal the payloads of every record at rest",
    )
    add_kek_option(parser)
    parser.set_defaults(run=run_init)

    parser = commands.add_parser(
        "checkpoint",
        parents=[common, keyed],
        help="sign the log's current size and root",
        description="Sign and keep a checkpoint; print it as a C2SP signed note. With --witness, send it "
        "to each witness (C2SP tlog-witness) with the consistency proof from the size that witness last "
        "cosigned, and keep their cosignatures with it; exit 1 when a witness refuses it.",
    )
    parser.add_argument(
        "--witness",
        action="append",
        default=[],
        metavar="URL",
        help="a witness to cosign the checkpoint (http://host:port); repeatable",
    )
    parser.add_argument(
        "--witness-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="per witness request (default 10)",
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
        help="check the log, and judge the lineage it holds at the data, model and policy layers",
        description="integrity: recompute every leaf from the stored events and the tree from the leaves, "
        "check every stored checkpoint's root and signature. data, model, policy: check that the lineage is "
        "right (see docs/verification.md). Exit 1 on any finding, naming its layer, check and node.",
    )
    add_layer_options(parser)
    parser.add_argument(
        "--public-key", metavar="KEY", help="the log's public key (base64, or a .pub/PEM file)"
    )
    parser.add_argument(
        "--checkpoint",
        type=Path,
        metavar="FILE",
        help="also prove the log extends this checkpoint an auditor kept",
    )
    parser.add_argument(
        "--witness-key",
        action="append",
        default=[],
        metavar="VKEY",
        help="require a valid cosignature by this witness on the newest checkpoint "
        "(<name>+<key id>+<key>, as `opslineage witness init` prints it, or a file holding it); repeatable",
    )
    parser.add_argument(
        "--checkpoint-cache",
        metavar="DIR",
        help="where this client remembers the newest checkpoint it verified per log (default: "
        "$OPSLINEAGE_CHECKPOINT_CACHE, else $XDG_CACHE_HOME/opslineage/checkpoints, else ~/.cache/...)",
    )
    parser.set_defaults(run=run_verify)


def run_init(args: argparse.Namespace) -> int:
    """Create the key pair and record the log's origin."""
    with store_from(args, create=True, parents=True) as store:
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
        kek = None
        if args.encrypt:
            kek, _ = ensure_kek(store, args.kek_file)
            store.enable_encryption(args.encrypt)
    if args.json:
        print_json(
            {
                "key": str(path),
                "public_key": public,
                "origin": origin,
                "encryption": args.encrypt,
                "kek_id": kek and kek.id,
            }
        )
    else:
        print(
            f"log {origin}: private key {path} (mode 0600), public key {path.with_suffix('.pub')}: {public}"
        )
        if kek is not None:
            print(f"sealing {args.encrypt} payloads under key-encryption key {kek.id} ({kek.origin})")
    return 0


def run_checkpoint(args: argparse.Namespace) -> int:
    """Sign and print a checkpoint."""
    refusals = []
    with store_from(args) as store:
        try:
            made = checkpoint(store, load_private_key(local_reader(store).log_key_path(args.key)))
        except (LogKeyError, CheckpointError) as error:
            raise UsageError(str(error)) from None
        for url in args.witness:
            try:
                made = witness_checkpoint(store, made, url, args.witness_timeout)
            except WitnessError as error:
                refusals.append(str(error))
    if args.json:
        print_json({**made.to_dict(), "witness_errors": refusals})
    else:
        print(made.note, end="")
    for refusal in refusals:
        print(f"opslineage: witness: {refusal}", file=sys.stderr)
    return EXIT_CHECK_FAILED if refusals else 0


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
    """Verify the log and judge the lineage at the layers asked for; exit 1 on any finding."""
    layers = layers_of(args)
    with store_from(args) as store:
        reader = local_reader(store)
        with reader.operation("verify"):  # one access event for the dozen reads it makes
            log, answer = _verify_log(args, reader) if "integrity" in layers else (None, {})
            judged = judge(args, reader, layers)
    if judged is not None and not args.json:
        print_layers(judged)
    every = judged or LayerReport()
    if log is not None:
        every.add_integrity(log.events, ((finding.seq, finding.what) for finding in log.findings))
        if log.access is not None:  # its findings fail the layer; the layer counts lineage events
            every.add_integrity(
                0,
                ((f.seq, f"access log, access event {f.seq}: {f.what}") for f in log.access.findings),
            )
    if args.json:
        print_json({**answer, "ok": every.ok, "layers": every.to_dict()})
    return 0 if every.ok else EXIT_CHECK_FAILED


def _verify_log(args: argparse.Namespace, reader: Reader) -> tuple[VerifyReport, dict[str, Any]]:
    """The integrity layer: the log against the events, checkpoints and witnesses. Its report
    and JSON answer; the text is printed unless ``--json``."""
    memory = CheckpointMemory(args.checkpoint_cache)
    try:
        public = _public_key(args, reader)
        kept = parse_note(args.checkpoint.read_text()) if args.checkpoint else None
        witnesses = [WitnessKey.parse(text) for text in args.witness_key]
    except (LogKeyError, CheckpointError, OSError, ValueError) as error:
        raise UsageError(str(error)) from None
    with progress("verify", reader.log_length(), enabled=not args.json) as bar:
        report = reader.verify(public, lambda done, total: bar.update(bar.task_ids[0], completed=done))
    if kept is not None and public is not None:
        report.findings.extend(reader.verify_extends(kept, public))
    newest = reader.signed_checkpoint()
    try:
        report.findings.extend(_against_memory(reader, memory, newest, public))
        cosigned = _cosignatures(newest, witnesses, report.findings)
        if report.ok and newest is not None and public is not None:
            memory.remember(newest)
    except CacheError as error:
        raise UsageError(f"{error} (see --checkpoint-cache)") from None
    answer = {
        **report.to_dict(),
        "newest_checkpoint": newest.to_dict() if newest else None,
        "cosigned_by": cosigned,
    }
    if not args.json:
        _print_log(report, kept is not None, cosigned)
    return report, answer


def _print_log(report: VerifyReport, kept: bool, cosigned: list[str]) -> None:
    """The integrity layer's answer as text: the lineage log, then the access log."""
    if not report.findings:
        print(
            f"ok: {report.events} events and {report.checkpoints} checkpoint(s) verified"
            + (f", {report.segments} archive segment(s) among them" if report.segments else "")
            + ("; the log extends the kept checkpoint" if kept else "")
            + (f"; the newest is cosigned by {', '.join(cosigned)}" if cosigned else "")
            + f"; the graph index matches the events ({report.index_rows} rows)"
        )
        for shred in report.shreds:
            rule = shred.get("rule") or {}
            kind = f" {rule['kind']}" if rule.get("kind") else ""
            print(
                f"shredded: {shred.get('artifacts')} content(s) of {shred.get('namespace')} {shred.get('period')}"
                f" ({shred.get('held')} held) at {shred.get('shredded_at')}, by the rule{kind} keep"
                f" {rule.get('keep_days')} days; recorded by {shred.get('event')}"
            )
    else:
        print(f"FAILED at sequence {report.first_bad_seq}: {len(report.findings)} finding(s)")
        for finding in sorted(report.findings, key=lambda f: f.seq)[:50]:
            print(f"  seq {finding.seq}: {finding.what}")
        if report.index_differences > INDEX_REPORTED:
            print(
                f"  the graph index differs from the events in {report.index_differences} rows;"
                f" the first {INDEX_REPORTED} are listed"
            )
    access = report.access
    if access is None:
        return
    if access.ok:
        print(
            f"ok: the access log's {access.size} access event(s) and {access.checkpoints} checkpoint(s) verified"
        )
        return
    print(f"access log FAILED: {len(access.findings)} finding(s) in {access.size} access event(s)")
    for finding in sorted(access.findings, key=lambda f: f.seq)[:50]:
        print(f"  access event {finding.seq}: {finding.what}")


def _against_memory(
    reader: Reader, memory: CheckpointMemory, newest: Checkpoint | None, public: Ed25519PublicKey | None
) -> list[Finding]:
    """Findings of the newest checkpoint against those this client remembers: for its origin, and
    for every origin whose remembered checkpoint the log's key signed (so that a log whose
    checkpoints were all deleted, or whose origin was renamed, is still recognised)."""
    origins = {newest.origin} if newest else set()
    if public is not None:
        origins.update(memory.origins_signed_by(public))
    findings = []
    for origin in sorted(origins):
        try:
            remembered = memory.recall(origin)
        except CacheError:
            raise
        except CheckpointError:
            remembered = None  # not a checkpoint: check() says so
        shown = newest if newest is not None and newest.origin == origin else None
        problem = memory.check(
            origin,
            shown,
            public,
            lambda old, new: [bytes.fromhex(node) for node in reader.consistency_proof(old, new).proof],
        )
        if problem:
            findings.append(Finding(remembered.tree_size if remembered else 0, problem))
    return findings


def _cosignatures(
    newest: Checkpoint | None, witnesses: list[WitnessKey], findings: list[Finding]
) -> list[str]:
    """The names of the witnesses that cosigned ``newest``; a finding for each required one that did not."""
    cosigned = []
    for witness in witnesses:
        if newest is not None and cosigned_by(newest, witness) is not None:
            cosigned.append(witness.name)
            continue
        where = (
            f"the newest checkpoint ({newest.origin} size {newest.tree_size})" if newest else "no checkpoint"
        )
        findings.append(
            Finding(
                newest.tree_size if newest else 0,
                f"{where} has no valid cosignature by witness {witness.name} ({witness.key_id.hex()}): "
                "run `opslineage checkpoint --witness URL` with that witness",
            )
        )
    return cosigned


def _public_key(args: argparse.Namespace, reader: Reader) -> Ed25519PublicKey | None:
    """The key to check signatures with: --public-key, else the private key's, else the store's record."""
    if args.public_key:
        return load_public_key(args.public_key)
    path = reader.log_key_path(args.key)
    if path.exists():
        return load_private_key(path).public_key()
    recorded = reader.log_public_key()
    return load_public_key(recorded) if recorded else None
