"""``keys init|rotate|list``: the key-encryption key (KEK) of a store that seals payloads, and the
data keys it wraps (see :mod:`opslineage.store.keys`).

The KEK is ``$OPSLINEAGE_KEK`` (base64) when set, else a key file: ``--kek-file``,
``$OPSLINEAGE_KEK_FILE``, the one the store recorded, or beside a SQLite store (``x.db`` →
``x.kek``). Nothing here prints key material.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from opslineage.cli.common import print_json, store_from
from opslineage.store.keyring import ensure_kek, key_listing, rotate_store_kek

__all__ = ["add_kek_option", "add_parser"]


def add_kek_option(parser: argparse.ArgumentParser) -> None:
    """``--kek-file PATH``."""
    parser.add_argument(
        "--kek-file",
        type=Path,
        metavar="PATH",
        help="the key-encryption key file (default: $OPSLINEAGE_KEK_FILE, the one the store recorded, or "
        "beside a SQLite store, x.db → x.kek); $OPSLINEAGE_KEK, when set, is used instead of any file",
    )


def add_parser(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Register the command and its subcommands."""
    parser = commands.add_parser(
        "keys",
        help="the key-encryption key and data keys of encryption at rest",
        description="Payloads are sealed with AES-256-GCM under data keys (one per namespace and UTC month), "
        "which are stored wrapped by the key-encryption key (KEK).",
    )
    actions = parser.add_subparsers(metavar="ACTION", required=True)
    sub = actions.add_parser(
        "init", parents=[common], help="create the KEK file (mode 0600), or adopt $OPSLINEAGE_KEK"
    )
    add_kek_option(sub)
    sub.set_defaults(run=run_init)
    sub = actions.add_parser(
        "rotate",
        parents=[common],
        help="re-wrap every data key under a new KEK, in one transaction (payloads are untouched)",
    )
    add_kek_option(sub)
    sub.add_argument(
        "--new-kek-file",
        type=Path,
        metavar="PATH",
        help="where the new KEK goes (default: over the current key file; needed when the KEK is $OPSLINEAGE_KEK)",
    )
    sub.set_defaults(run=run_rotate)
    sub = actions.add_parser(
        "list", parents=[common], help="the data keys (ids, scopes, state; no key material)"
    )
    sub.set_defaults(run=run_list)


def run_init(args: argparse.Namespace) -> int:
    """Create or adopt the KEK."""
    with store_from(args, create=True) as store:
        kek, made = ensure_kek(store, args.kek_file)
        mode = key_listing(store)["encryption"]
    answer = {"kek_id": kek.id, "origin": kek.origin, "created": made, "encryption": mode}
    if args.json:
        print_json(answer)
    else:
        print(f"key-encryption key {kek.id}: {'created' if made else 'in use'} ({kek.origin})")
    return 0


def run_rotate(args: argparse.Namespace) -> int:
    """Re-wrap the data keys under a new KEK."""
    with store_from(args) as store:
        answer = rotate_store_kek(store, args.kek_file, args.new_kek_file)
    if args.json:
        print_json(answer)
        return 0
    print(
        f"re-wrapped {answer['data_keys_rewrapped']} data key(s) under key-encryption key {answer['kek_id']}"
        f" ({answer['kek_file']})"
    )
    if answer["from_env"]:
        print("set $OPSLINEAGE_KEK to the new key (or unset it to use the file)")
    return 0


def run_list(args: argparse.Namespace) -> int:
    """List the data keys."""
    with store_from(args) as store:
        answer = key_listing(store)
    if args.json:
        print_json(answer)
        return 0
    print(f"encryption: {answer['encryption'] or 'off'}; key-encryption key {answer['kek_id'] or '(none)'}")
    for row in answer["data_keys"]:
        state = f"shredded {row['shredded_at']}" if row["shredded_at"] else f"wrapped by {row['kek_id']}"
        print(f"{row['key_id']}  {row['namespace']}  {row['period']}  {state}")
    return 0
