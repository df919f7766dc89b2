"""``export`` and ``verify-bundle``: evidence an auditor can take away and check offline."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import msgspec

from opslineage.cli.common import EXIT_CHECK_FAILED, UsageError, print_json, store_from
from opslineage.cli.render import why_tree, wide_console
from opslineage.interop import BundleError, make_bundle, make_intoto, verify_bundle
from opslineage.ledger.keys import LogKeyError, key_path, load_private_key

__all__ = ["add_parsers"]

FORMATS = ("bundle", "intoto")


def add_parsers(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Register the commands."""
    parser = commands.add_parser(
        "export",
        parents=[common],
        help="export the evidence behind an action",
        description="bundle: one JSON file with every event of the action's why-chain, each with its "
        "inclusion proof against one signed checkpoint, and the public key. intoto: the same evidence as an "
        "in-toto Statement v1 in a DSSE envelope signed with the log key.",
    )
    parser.add_argument("--format", required=True, choices=FORMATS, help="what to write")
    parser.add_argument("action", metavar="ACTION_ID", help="the action's run id (run:<uuid>)")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="FILE", help="where to write it")
    parser.add_argument("--key", metavar="PATH", help="the log key, to sign a checkpoint or the envelope")
    parser.set_defaults(run=run_export)

    parser = commands.add_parser(
        "verify-bundle",
        parents=[common],
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
    parser.set_defaults(run=run_verify_bundle)


def run_export(args: argparse.Namespace) -> int:
    """Write the bundle or the DSSE envelope."""
    path = key_path(args.key)
    with store_from(args) as store:
        try:
            key = load_private_key(path) if path.exists() or args.format == "intoto" else None
            document = (
                make_intoto(store, args.action, key)
                if args.format == "intoto" and key
                else make_bundle(store, args.action, key)
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


def run_verify_bundle(args: argparse.Namespace) -> int:
    """Verify offline; print the proven chain."""
    try:
        document = msgspec.json.decode(args.file.read_bytes())
    except OSError as error:
        raise UsageError(f"cannot read {args.file}: {error.strerror}") from None
    except msgspec.DecodeError as error:
        raise UsageError(f"{args.file} is not JSON: {error}") from None
    if not isinstance(document, dict):
        raise UsageError(f"{args.file} is not a bundle")
    report = verify_bundle(document, args.public_key)
    if args.json:
        print_json(
            {
                "ok": report.ok,
                "events": report.events,
                "findings": report.findings,
                "checkpoint": report.checkpoint.to_dict() if report.checkpoint else None,
                "why": report.chain.to_dict() if report.chain else None,
            }
        )
    else:
        if report.ok and report.checkpoint:
            print(
                f"ok: {report.events} events proven against checkpoint {report.checkpoint.origin} "
                f"size {report.checkpoint.tree_size}"
                + (
                    ""
                    if args.public_key
                    else " (with the bundle's own public key: pass --public-key to check who signed it)"
                )
            )
        for finding in report.findings:
            print(f"FAILED: {finding}", file=sys.stdout)
        if report.chain is not None:
            wide_console().print(why_tree(report.chain))
    return 0 if report.ok else EXIT_CHECK_FAILED
