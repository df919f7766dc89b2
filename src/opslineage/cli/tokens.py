"""``token create|list|revoke``: the API tokens ``opslineage serve`` authenticates requests with.

The CLI works on a store it can open as that store's local admin (file and database permissions
are the boundary), so it needs no token itself. A secret is printed once, on ``create``; only its
SHA-256 is stored, and ``list`` shows neither.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from rich.table import Table

from opslineage.cli.common import UsageError, print_json, store_from
from opslineage.cli.render import wide_console
from opslineage.governance import ROLES, Principal, create_token, list_tokens, parse_lifetime, revoke

__all__ = ["add_parser"]


def add_parser(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Register ``token``."""
    token = commands.add_parser(
        "token",
        help="API tokens: who may call the HTTP API, in which role and namespaces",
        description="API tokens for `opslineage serve` (see docs/security.md). Once a store has one, "
        "every HTTP route but /healthz and /readyz needs Authorization: Bearer <token>.",
    )
    sub = token.add_subparsers(metavar="SUBCOMMAND", required=True)
    create = sub.add_parser(
        "create",
        parents=[common],
        help="make a token and print its secret, once",
        description="Make a token; its secret is printed once on stdout and cannot be shown again.",
    )
    create.add_argument(
        "--name", required=True, help="its unique name, never reused (the access log's actor)"
    )
    create.add_argument("--role", required=True, metavar="ROLE", help=f"one of {', '.join(ROLES)}")
    create.add_argument(
        "--namespace",
        action="append",
        default=[],
        metavar="NS",
        help="confine it to this namespace (repeatable; default: every namespace)",
    )
    create.add_argument("--expires", metavar="LIFETIME", help="expire after 90d, 12h, 30m … (default: never)")
    create.set_defaults(run=run_create)
    listing = sub.add_parser("list", parents=[common], help="every token, without secrets")
    listing.set_defaults(run=run_list)
    revoking = sub.add_parser("revoke", parents=[common], help="revoke a token, for good")
    revoking.add_argument("name", help="the token's name")
    revoking.set_defaults(run=run_revoke)


def run_create(args: argparse.Namespace) -> int:
    """Make a token; print its secret on stdout and, on stderr, that it cannot be shown again."""
    try:
        lifetime = parse_lifetime(args.expires) if args.expires is not None else None
    except ValueError as error:
        raise UsageError(f"--expires: {error}") from None
    now = datetime.now(UTC)
    with store_from(args, create=True) as store:
        try:
            secret, info = create_token(
                store,
                name=args.name,
                role=args.role,
                namespaces=args.namespace,
                lifetime=lifetime,
                created_by=Principal.local_admin().id,
                now=now,
            )
        except ValueError as error:
            raise UsageError(str(error)) from None
    if args.json:
        print_json({"secret": secret, **info.to_dict(now)})
    else:
        print(secret)
    scope = ", ".join(info.namespaces) or "every namespace"
    print(
        f"opslineage: token {info.name!r} ({info.role}, {scope}) created; store its secret now: "
        "it cannot be shown again",
        file=sys.stderr,
    )
    return 0


def run_list(args: argparse.Namespace) -> int:
    """Print every token: name, role, namespaces, times and state; never a secret or a hash."""
    now = datetime.now(UTC)
    with store_from(args) as store:
        tokens = list_tokens(store)
    if args.json:
        print_json([info.to_dict(now) for info in tokens])
        return 0
    table = Table("name", "role", "namespaces", "state", "created", "expires", "by", box=None)
    for info in tokens:
        table.add_row(
            info.name,
            info.role,
            ", ".join(info.namespaces) or "*",
            info.state(now),
            _time(info.created_at),
            _time(info.expires_at),
            info.created_by or "",
        )
    wide_console().print(table)
    print(f"{len(tokens)} token(s)")
    return 0


def run_revoke(args: argparse.Namespace) -> int:
    """Revoke a token; a server stops taking it within its cache time (about a second)."""
    now = datetime.now(UTC)
    with store_from(args) as store:
        try:
            info = revoke(store, args.name, now)
        except ValueError as error:
            raise UsageError(str(error)) from None
    if args.json:
        print_json(info.to_dict(now))
    else:
        print(f"revoked token {info.name!r} at {_time(info.revoked_at)}")
    return 0


def _time(when: datetime | None) -> str:
    return when.isoformat(timespec="seconds").replace("+00:00", "Z") if when is not None else ""
