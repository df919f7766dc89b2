"""``opslineage serve``: the HTTP API on uvicorn."""

from __future__ import annotations

import argparse
import os
import socket
import sys
from typing import Any

from opslineage.cli.common import UsageError, store_from
from opslineage.store import default_store_url

__all__ = ["add_parser"]


def add_parser(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Register the command."""
    parser = commands.add_parser(
        "serve",
        parents=[common],
        help="serve the HTTP API (OpenLineage ingest, lineage, why, the log)",
        description="Serve the HTTP API: POST /api/v1/lineage takes OpenLineage events as the OpenLineage "
        "clients send them; GET /api/v1/lineage answers as Marquez does; OpenAPI at /openapi.json.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=5000, help="port (default 5000)")
    parser.add_argument(
        "--token",
        default=os.environ.get("OPSLINEAGE_TOKEN"),
        help="require Authorization: Bearer TOKEN on ingest (default: $OPSLINEAGE_TOKEN)",
    )
    parser.add_argument(
        "--max-body",
        type=int,
        default=16 << 20,
        metavar="BYTES",
        help="largest request body accepted (default 16 MiB)",
    )
    parser.add_argument("--key", metavar="PATH", help="the log key, to sign checkpoints on ingest")
    parser.add_argument(
        "--query-timeout",
        type=_seconds,
        default=5.0,
        metavar="SECONDS",
        help="cancel a query running longer, with a 503 (default 5)",
    )
    parser.set_defaults(run=run)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds from 0 to 3600")
    return value


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted."""
    from opslineage.server import ServerSettings, create_app  # noqa: PLC0415 (loaded only to serve)

    url = args.store or default_store_url()
    store_from(args, create=True).close()
    settings = ServerSettings(
        store=url, token=args.token, max_body=args.max_body, key=args.key, query_timeout=args.query_timeout
    )
    # On SIGTERM, requests in flight get the time budget of a query to finish, and no more.
    serve_app(
        create_app(settings),
        args.host,
        args.port,
        timeout_graceful_shutdown=max(1, round(args.query_timeout)),
    )
    return 0


def serve_app(app: Any, host: str, port: int, **options: Any) -> None:
    """Run ``app`` on uvicorn until SIGTERM or Ctrl+C, on a socket bound here first, so a taken
    port is one line and exit 2 rather than uvicorn's log and exit 3.

    Raises:
        UsageError: the address cannot be listened on.
    """
    import uvicorn  # noqa: PLC0415 (the server's dependencies load only when it runs)

    try:
        listener = socket.create_server((host, port), family=_family(host))
    except OSError as error:
        reason = os.strerror(error.errno) if error.errno else str(error)
        raise UsageError(f"cannot listen on {host} port {port}: {reason}") from None
    bound_host, bound_port = listener.getsockname()[:2]
    where = f"[{bound_host}]" if ":" in bound_host else bound_host
    print(f"opslineage: serving on http://{where}:{bound_port} (Ctrl+C to stop)", file=sys.stderr, flush=True)
    config = uvicorn.Config(app, host=host, port=port, log_level="info", **options)
    with listener:
        uvicorn.Server(config).run(sockets=[listener])


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET
