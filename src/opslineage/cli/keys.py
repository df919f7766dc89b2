"""``keys init|rotate|list``: the key-encryption key (KEK) of a store that seals payloads, and the
data keys it wraps (see :mod:`opslineage.store.keys`).

The KEK is ``$OPSLINEAGE_KEK`` (base64) when set, else a key file: ``--kek-file``,
``$OPSLINEAGE_KEK_FILE``, the one the store recorded, or beside a SQLite store (``x.db`` →
``x.kek``). Nothing here prints key material.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from opslineage.cli.common import UsageError, print_json, store_from
from opslineage.store import Store
from opslineage.store.keys import (
    KEK_FILE_META,
    KEK_ID_META,
    Kek,
    create_kek_file,
    kek_from_env,
    load_kek_file,
    new_kek,
    rotate_kek,
)

__all__ = ["add_kek_option", "add_parser", "ensure_kek"]


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


def _kek_path(store: Store, given: Path | None) -> Path:
    path = given or store.kek_path()
    if path is None:
        raise UsageError(
            f"store {store.url} has no default key file: give --kek-file PATH or set $OPSLINEAGE_KEK"
        )
    return path.resolve()


def ensure_kek(store: Store, given: Path | None) -> tuple[Kek, bool]:
    """The store's KEK, made (a new key file) when there is none yet, and recorded in the store;
    returns it and whether it was made.

    Raises:
        StoreError: the KEK found is not the store's, or its file is unsafe or malformed.
    """
    kek = kek_from_env()
    made = False
    if kek is None:
        path = _kek_path(store, given)
        recorded = store.get_meta(KEK_ID_META)
        if path.exists():
            kek = load_kek_file(path)
        elif recorded is not None:
            raise UsageError(
                f"store {store.url} is sealed under key-encryption key {recorded}, which is not at {path}:"
                " give its file (--kek-file) or $OPSLINEAGE_KEK"
            )
        else:
            kek, made = create_kek_file(path), True
        if store.get_meta(KEK_FILE_META) != str(path):
            store.set_meta(KEK_FILE_META, str(path))
    store.use_kek(kek)
    recorded = store.get_meta(KEK_ID_META)
    if recorded is None:
        store.set_meta(KEK_ID_META, kek.id)
    store.data_keys().kek()  # a KEK that is not the store's is refused here
    return kek, made


def run_init(args: argparse.Namespace) -> int:
    """Create or adopt the KEK."""
    with store_from(args, create=True) as store:
        kek, made = ensure_kek(store, args.kek_file)
        answer = {"kek_id": kek.id, "origin": kek.origin, "created": made, "encryption": store.encryption()}
    if args.json:
        print_json(answer)
    else:
        print(f"key-encryption key {kek.id}: {'created' if made else 'in use'} ({kek.origin})")
    return 0


def run_rotate(args: argparse.Namespace) -> int:
    """Re-wrap the data keys under a new KEK."""
    with store_from(args) as store:
        if args.kek_file is not None:
            store.use_kek(load_kek_file(args.kek_file))
        old = store.data_keys().kek()
        from_env = kek_from_env() is not None and args.kek_file is None
        if from_env and args.new_kek_file is None:
            raise UsageError("the KEK is $OPSLINEAGE_KEK: give --new-kek-file PATH for the new one")
        target = (args.new_kek_file or _kek_path(store, args.kek_file)).resolve()
        staged = target if args.new_kek_file is not None else target.with_name(f".{target.name}.new")
        if staged.exists():
            raise UsageError(f"{staged} exists already (a rotation that did not finish?); move it away first")
        new = create_kek_file(staged, new_kek())
        try:
            store.rewrap_data_keys(rotate_kek(store.data_key_rows(), old, new), new)
        except BaseException:
            staged.unlink()
            raise
        if staged != target:
            os.replace(staged, target)
        store.set_meta(KEK_FILE_META, str(target))
        store.use_kek(Kek(new.key, str(target)))
        count = sum(row.shredded_at is None for row in store.data_key_rows())
    answer = {"old_kek_id": old.id, "kek_id": new.id, "kek_file": str(target), "data_keys_rewrapped": count}
    if args.json:
        print_json(answer)
    else:
        print(f"re-wrapped {count} data key(s) under key-encryption key {new.id} ({target})")
        if from_env:
            print("set $OPSLINEAGE_KEK to the new key (or unset it to use the file)")
    return 0


def run_list(args: argparse.Namespace) -> int:
    """List the data keys."""
    with store_from(args) as store:
        rows: list[dict[str, Any]] = [
            {
                "key_id": row.key_id,
                "namespace": row.namespace,
                "period": row.period,
                "kek_id": row.kek_id,
                "created_at": row.created_at,
                "shredded_at": row.shredded_at,
            }
            for row in store.data_key_rows()
        ]
        answer = {"encryption": store.encryption(), "kek_id": store.get_meta(KEK_ID_META), "data_keys": rows}
    if args.json:
        print_json(answer)
        return 0
    print(f"encryption: {answer['encryption'] or 'off'}; key-encryption key {answer['kek_id'] or '(none)'}")
    for row in rows:
        state = f"shredded {row['shredded_at']}" if row["shredded_at"] else f"wrapped by {row['kek_id']}"
        print(f"{row['key_id']}  {row['namespace']}  {row['period']}  {state}")
    return 0
