"""Entry point of the ``opslineage`` command: parse, dispatch, map errors to exit statuses.

Exit status 0 on success, 1 when a check fails, 2 on bad usage or bad input (one line on stderr),
141 when the reader of standard output went away (``| head``), quietly, as SIGPIPE would end it.
"""

from __future__ import annotations

import argparse
import os
import sys

from opslineage._version import __version__
from opslineage.cli import (
    access,
    archive,
    audit,
    checks,
    demo,
    govern,
    ingest,
    keys,
    ledger,
    lineage,
    quality,
    reconcile,
    retention,
    serve,
    tokens,
    witness,
    worker,
)
from opslineage.cli.common import EXIT_BROKEN_PIPE, EXIT_USAGE, UsageError, common_options
from opslineage.model import InvalidEvent
from opslineage.query import NotFound
from opslineage.store import StoreError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The full command-line grammar."""
    parser = argparse.ArgumentParser(
        prog="opslineage",
        description="Lineage and tamper-evident audit trails for AIOps: from telemetry to remediation effect.",
    )
    parser.add_argument("--version", action="version", version=f"opslineage {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    common = common_options()
    demo.add_parser(commands, common)
    ingest.add_parser(commands, common)
    lineage.add_parsers(commands, common)
    ledger.add_parsers(commands, common)
    checks.add_parsers(commands, common)
    govern.add_parsers(commands, common)
    tokens.add_parser(commands, common)
    audit.add_parsers(commands, common)
    access.add_parser(commands, common)
    reconcile.add_parsers(commands, common)
    archive.add_parser(commands, common)
    keys.add_parser(commands, common)
    retention.add_parsers(commands, common)
    quality.add_parser(commands, common)
    serve.add_parser(commands, common)
    worker.add_parser(commands, common)
    witness.add_parser(commands, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns (and, as a script, exits with) its status."""
    args = build_parser().parse_args(argv)
    try:
        status = int(args.run(args))
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return EXIT_BROKEN_PIPE
    except (UsageError, InvalidEvent, NotFound, StoreError) as error:
        print(f"opslineage: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except FileNotFoundError as error:  # a path given on the command line, read deep in a command
        print(f"opslineage: error: cannot read {error.filename}: {error.strerror}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("opslineage: interrupted", file=sys.stderr)
        return 130
    return status


if __name__ == "__main__":
    sys.exit(main())
