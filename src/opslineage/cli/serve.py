"""``opslineage serve``: the HTTP API on uvicorn, every request recorded in the store's access log,
refusing to listen beyond this host while the store has no API tokens (every caller would be its
admin) unless told ``--insecure-no-auth``."""

from __future__ import annotations

import argparse
import ipaddress
import os
import socket
import ssl
import sys
from typing import Any

from opslineage.cli.common import UsageError, store_from
from opslineage.ledger.access_log import AccessLog
from opslineage.store import default_store_url, open_store

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
    parser.add_argument(
        "--tls-cert",
        metavar="FILE",
        help="serve HTTPS with this PEM certificate (chain); needs --tls-key (default: plain HTTP)",
    )
    parser.add_argument("--tls-key", metavar="FILE", help="the PEM private key of --tls-cert")
    parser.add_argument(
        "--access-log-queue",
        action="store_true",
        help="answer a read before its access event is committed, a writer thread committing behind "
        "the reads (refused once it is over 1 s or 10,000 events behind, or a write failed); faster, "
        "but a crash loses up to the last second of access events (default: each answer waits for "
        "its event's commit)",
    )
    parser.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="listen on a non-loopback address even though the store has no API tokens "
        "(anyone who reaches it reads and writes everything)",
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

    tls = tls_options(args.tls_cert, args.tls_key)
    url = args.store or default_store_url()
    with store_from(args, create=True) as store:
        if not (args.insecure_no_auth or store.has_tokens() or is_loopback(args.host)):
            raise UsageError(
                f"refusing to serve on {args.host} without API tokens: anyone reaching it would act as "
                "the store's admin. Create one first (opslineage token create --name NAME --role ROLE), "
                "listen on 127.0.0.1, or pass --insecure-no-auth"
            )
    settings = ServerSettings(
        store=url, token=args.token, max_body=args.max_body, key=args.key, query_timeout=args.query_timeout
    )
    # The access log writes through a store connection of its own (the reading threads share it).
    with (
        open_store(url) as trail_store,
        AccessLog(trail_store, key=args.key, wait=not args.access_log_queue) as trail,
    ):
        # On SIGTERM, requests in flight get the time budget of a query to finish, and no more.
        serve_app(
            create_app(settings, trail),
            args.host,
            args.port,
            timeout_graceful_shutdown=max(1, round(args.query_timeout)),
            **tls,
        )
    return 0


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or a name) is only reachable from this machine: every address
    it resolves to is a loopback one (a name that does not resolve is not)."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        found = socket.getaddrinfo(host, None)
    except (OSError, UnicodeError):
        return False
    return bool(found) and all(ipaddress.ip_address(entry[4][0]).is_loopback for entry in found)


def tls_options(cert: str | None, key: str | None) -> dict[str, str]:
    """uvicorn's options to serve HTTPS with ``cert`` and ``key`` (none for plain HTTP), checked
    here by loading them, so a bad pair is one line and exit 2 rather than uvicorn's traceback.

    Raises:
        UsageError: only one of the two is given, a file cannot be read, is not PEM, or the key
            does not belong to the certificate.
    """
    if cert is None and key is None:
        return {}
    if cert is None or key is None:
        raise UsageError("--tls-cert and --tls-key go together: give both, or neither for plain HTTP")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    for flag, path in (("--tls-cert", cert), ("--tls-key", key)):
        try:
            with open(path, "rb"):
                pass
        except OSError as error:
            raise UsageError(f"{flag} {path}: {error.strerror or error}") from None
    try:
        context.load_cert_chain(cert, key, password=_no_password)
    except ssl.SSLError as error:
        reason = (
            "the key does not match the certificate" if "KEY_VALUES_MISMATCH" in str(error) else error.reason
        )
        raise UsageError(
            f"--tls-cert {cert} / --tls-key {key}: not a usable PEM certificate and key ({reason})"
        ) from None
    return {"ssl_certfile": cert, "ssl_keyfile": key}


def _no_password() -> str:
    """Refuse an encrypted key rather than prompt for its password on the terminal."""
    raise UsageError("--tls-key is encrypted; give an unencrypted key (a file only the server can read)")


def serve_app(app: Any, host: str, port: int, **options: Any) -> None:
    """Run ``app`` on uvicorn until SIGTERM or Ctrl+C, on a socket bound here first, so a taken
    port is one line and exit 2 rather than uvicorn's log and exit 3. With ``ssl_certfile`` in
    ``options`` it serves HTTPS.

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
    scheme = "https" if options.get("ssl_certfile") else "http"
    print(
        f"opslineage: serving on {scheme}://{where}:{bound_port} (Ctrl+C to stop)",
        file=sys.stderr,
        flush=True,
    )
    config = uvicorn.Config(app, host=host, port=port, log_level="info", **options)
    with listener:
        uvicorn.Server(config).run(sockets=[listener])


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET
