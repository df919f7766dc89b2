"""``export`` and ``verify-bundle``: the whole store in open formats (OpenLineage JSON lines,
W3C PROV-JSON), and evidence about one action an auditor can take away and check offline."""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path
from typing import Any, BinaryIO

import msgspec

from opslineage.cli.common import (
    EXIT_CHECK_FAILED,
    UsageError,
    common_options,
    local_reader,
    print_json,
    progress,
    store_from,
)
from opslineage.cli.render import why_tree, wide_console
from opslineage.ledger.keys import LogKeyError, load_private_key
from opslineage.ledger.memory import CacheError, CheckpointMemory
from opslineage.ledger.witness import WitnessKey
from opslineage.query import Reader, why_view

__all__ = ["add_parsers"]

STORE_FORMATS = ("openlineage", "prov-json")
ACTION_FORMATS = ("bundle", "intoto")


def add_parsers(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Register the commands."""
    parser = commands.add_parser(
        "export",
        parents=[common],
        help="export the whole store, or the evidence behind an action",
        description="openlineage: every stored event as OpenLineage JSON lines, which `opslineage ingest` "
        "turns back into the same graph. prov-json: the graph as one W3C PROV-JSON document. bundle: one "
        "JSON file with every event of an action's why-chain, each with its inclusion proof against one signed "
        "checkpoint, and the public key. intoto: the same evidence as an in-toto Statement v1 in a DSSE "
        "envelope signed with the log key.",
    )
    parser.add_argument(
        "--format", required=True, choices=STORE_FORMATS + ACTION_FORMATS, help="what to write"
    )
    parser.add_argument(
        "action",
        nargs="?",
        metavar="ACTION_ID",
        help="the action's run id (run:<uuid>); bundle and intoto only",
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="FILE",
        help="where to write it (required for bundle and intoto; otherwise stdout when absent)",
    )
    parser.add_argument("--key", metavar="PATH", help="the log key, to sign a checkpoint or the envelope")
    parser.add_argument(
        "--since",
        type=int,
        metavar="SIZE",
        help="bundle and intoto: add the consistency proof from this tree size (the one the recipient verified)",
    )
    parser.set_defaults(run=run_export)

    parser = commands.add_parser(
        "verify-bundle",
        parents=[common_options(store=False)],  # it reads the bundle alone
        help="verify a bundle offline and print the chain it proves",
        description="Check the checkpoint signature, every inclusion proof, and re-derive the why-chain from "
        "the proven events, with no store. Exit 1 when anything fails.",
    )
    parser.add_argument("file", type=Path, metavar="FILE")
    parser.add_argument(
        "--public-key",
        metavar="KEY",
        help="the log's public key you trust (base64 or a .pub/PEM file); default: the bundle's own",
    )
    parser.add_argument(
        "--witness-key",
        action="append",
        default=[],
        metavar="VKEY",
        help="require a valid cosignature by this witness on the bundle's checkpoint; repeatable",
    )
    parser.add_argument(
        "--checkpoint-cache",
        metavar="DIR",
        help="where this client remembers the newest checkpoint it verified per log "
        "(default: $OPSLINEAGE_CHECKPOINT_CACHE, else $XDG_CACHE_HOME/opslineage/checkpoints)",
    )
    parser.set_defaults(run=run_verify_bundle)


def run_export(args: argparse.Namespace) -> int:
    """Write the whole store, or an action's bundle or DSSE envelope."""
    if args.format in STORE_FORMATS:
        if args.action is not None:
            raise UsageError(f"--format {args.format} exports the whole store: it takes no ACTION_ID")
        return _export_store(args)
    if args.action is None:
        raise UsageError(f"--format {args.format} needs the ACTION_ID of an action (run:<uuid>)")
    if args.output is None:
        raise UsageError(f"--format {args.format} needs -o FILE")
    from opslineage.interop import BundleError, make_bundle, make_intoto  # noqa: PLC0415 (interop loads prov)

    with store_from(args) as store:  # its local administrator: may sign a checkpoint the bundle needs
        path = local_reader(store).log_key_path(args.key)
        try:
            key = load_private_key(path) if path.exists() or args.format == "intoto" else None
            document = (
                make_intoto(store, args.action, key, args.since)
                if args.format == "intoto" and key
                else make_bundle(store, args.action, key, args.since)
            )
        except (BundleError, LogKeyError) as error:
            raise UsageError(str(error)) from None
    data = msgspec.json.format(msgspec.json.encode(document), indent=2) + b"\n"
    partial = args.output.with_name(args.output.name + ".partial")
    partial.write_bytes(data)
    partial.replace(args.output)  # never leave a half-written bundle under the asked name
    if args.json:
        print_json({"output": str(args.output), "format": args.format, "bytes": len(data)})
    else:
        print(f"wrote {args.format} of {args.action} to {args.output} ({len(data)} bytes)")
    return 0


def _export_store(args: argparse.Namespace) -> int:
    """Write the store as OpenLineage JSON lines or PROV-JSON, to stdout or through a temporary file."""
    with store_from(args) as store, (reader := local_reader(store)).operation("export"):
        if args.output is None:
            sys.stdout.flush()
            _write_store(reader, args.format, sys.stdout.buffer)
            sys.stdout.buffer.flush()  # a reader gone early (`| head`) is cli.main's to handle
            return 0
        partial = args.output.with_name(args.output.name + ".partial")
        try:
            with partial.open("wb") as out:
                summary = _write_store(reader, args.format, out)
            partial.replace(args.output)  # never leave a half-written export under the asked name
        except OSError as error:
            raise UsageError(f"cannot write {args.output}: {error.strerror}") from None
        finally:
            partial.unlink(missing_ok=True)
    size = args.output.stat().st_size
    if args.json:
        line = {"output": str(args.output), "format": args.format, "bytes": size, **summary}
        sys.stdout.write(msgspec.json.encode(line).decode() + "\n")
    elif args.format == "openlineage":
        print(f"wrote {summary['events']} event(s) as OpenLineage JSON lines to {args.output} ({size} bytes)")
    else:
        counts = summary["records"]
        relations = sum(n for kind, n in counts.items() if kind not in ("activity", "entity", "agent"))
        print(
            f"wrote PROV-JSON of {counts.get('activity', 0)} activities, {counts.get('entity', 0)} entities, "
            f"{counts.get('agent', 0)} agents and {relations} relations to {args.output} ({size} bytes)"
        )
    return 0


def _write_store(reader: Reader, output_format: str, out: BinaryIO) -> dict[str, Any]:
    """Write the store in ``output_format`` to ``out``; what was written, for the summary."""
    from opslineage.interop import export_openlineage, export_prov_json  # noqa: PLC0415 (interop loads prov)

    if output_format == "openlineage":
        with progress("export", reader.log_length()) as bar:
            task = bar.task_ids[0]
            events = export_openlineage(reader, out, lambda done: bar.update(task, completed=done))
        return {"events": events}
    text = io.TextIOWrapper(out, encoding="utf-8", newline="\n")
    try:
        return {"records": export_prov_json(reader, text)}
    finally:
        text.detach()  # flushes, and leaves ``out`` open for its owner


def run_verify_bundle(args: argparse.Namespace) -> int:
    """Verify offline; print the proven chain."""
    from opslineage.interop import verify_bundle  # noqa: PLC0415 (interop loads prov)

    try:
        document = msgspec.json.decode(args.file.read_bytes())
    except OSError as error:
        raise UsageError(f"cannot read {args.file}: {error.strerror}") from None
    except msgspec.DecodeError as error:
        raise UsageError(f"{args.file} is not JSON: {error}") from None
    if not isinstance(document, dict):
        raise UsageError(f"{args.file} is not a bundle")
    try:
        witnesses = [WitnessKey.parse(text) for text in args.witness_key]
    except ValueError as error:
        raise UsageError(str(error)) from None
    memory = CheckpointMemory(args.checkpoint_cache)
    try:
        report = verify_bundle(document, args.public_key, memory=memory, witness_keys=witnesses)
    except CacheError as error:
        raise UsageError(f"{error} (see --checkpoint-cache)") from None
    if args.json:
        print_json(
            {
                "ok": report.ok,
                "events": report.events,
                "findings": report.findings,
                "checkpoint": report.checkpoint.to_dict() if report.checkpoint else None,
                "cosigned_by": report.cosigned_by,
                "why": report.chain.to_dict() if report.chain else None,
            }
        )
    else:
        if report.ok and report.checkpoint:
            print(
                f"ok: {report.events} events proven against checkpoint {report.checkpoint.origin} "
                f"size {report.checkpoint.tree_size}"
                + (f", cosigned by {', '.join(report.cosigned_by)}" if report.cosigned_by else "")
                + (
                    ""
                    if args.public_key
                    else " (with the bundle's own public key: pass --public-key to check who signed it)"
                )
            )
        for finding in report.findings:
            print(f"FAILED: {finding}", file=sys.stdout)
        if report.chain is not None:
            wide_console().print(why_tree(why_view(report.chain)))
    return 0 if report.ok else EXIT_CHECK_FAILED
