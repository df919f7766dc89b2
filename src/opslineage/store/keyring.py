"""Key management of a store, for ``opslineage keys`` and ``init --encrypt``: making or adopting
its key-encryption key, rotating it, and listing the data keys (ids and scopes, never key
material or a payload). The keys themselves are :mod:`opslineage.store.keys`'.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from opslineage.store.base import Store
from opslineage.store.keys import (
    KEK_ENV,
    KEK_FILE_META,
    KEK_ID_META,
    Kek,
    KeyError_,
    KeyUnavailable,
    create_kek_file,
    kek_from_env,
    load_kek_file,
    new_kek,
    rotate_kek,
)

__all__ = ["ensure_kek", "key_listing", "rotate_store_kek"]


def _kek_file(store: Store, given: Path | None) -> Path:
    path = given or store.kek_path()
    if path is None:
        raise KeyUnavailable(
            f"store {store.url} has no default key file: give --kek-file PATH or set ${KEK_ENV}"
        )
    return path.resolve()


def ensure_kek(store: Store, given: Path | None) -> tuple[Kek, bool]:
    """The store's KEK (``$OPSLINEAGE_KEK``, else the key file ``given`` or the store's), made as
    a new key file when the store has none yet, and recorded in the store; returns it and
    whether it was made.

    Raises:
        KeyError_: the KEK found is not the store's, the store is sealed under a KEK whose file is
            not there, or the file is unsafe or malformed.
    """
    kek = kek_from_env()
    made = False
    if kek is None:
        path = _kek_file(store, given)
        recorded = store.get_meta(KEK_ID_META)
        if path.exists():
            kek = load_kek_file(path)
        elif recorded is not None:
            raise KeyUnavailable(
                f"store {store.url} is sealed under key-encryption key {recorded}, which is not at {path}:"
                f" give its file (--kek-file) or ${KEK_ENV}"
            )
        else:
            kek, made = create_kek_file(path), True
        if store.get_meta(KEK_FILE_META) != str(path):
            store.set_meta(KEK_FILE_META, str(path))
    store.use_kek(kek)
    if store.get_meta(KEK_ID_META) is None:
        store.set_meta(KEK_ID_META, kek.id)
    store.data_keys().kek()  # a KEK that is not the store's is refused here
    return kek, made


def rotate_store_kek(store: Store, kek_file: Path | None, new_kek_file: Path | None) -> dict[str, Any]:
    """Re-wrap every live data key of ``store`` under a new KEK, in one transaction, then put the
    new KEK where the old file was (or at ``new_kek_file``); returns what was done.

    Raises:
        KeyError_: the current KEK is missing or wrong; the KEK is ``$OPSLINEAGE_KEK`` and no
            ``new_kek_file`` is given; a staged file of an unfinished rotation is in the way.
    """
    if kek_file is not None:
        store.use_kek(load_kek_file(kek_file))
    old = store.data_keys().kek()
    from_env = kek_from_env() is not None and kek_file is None
    if from_env and new_kek_file is None:
        raise KeyError_(f"the KEK is ${KEK_ENV}: give --new-kek-file PATH for the new one")
    target = (new_kek_file or _kek_file(store, kek_file)).resolve()
    staged = target if new_kek_file is not None else target.with_name(f".{target.name}.new")
    if staged.exists():
        raise KeyError_(f"{staged} exists already (a rotation that did not finish?); move it away first")
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
    return {
        "old_kek_id": old.id,
        "kek_id": new.id,
        "kek_file": str(target),
        "data_keys_rewrapped": count,
        "from_env": from_env,
    }


def key_listing(store: Store) -> dict[str, Any]:
    """What the store seals, its KEK's id and every data key (ids, scopes, states; no key material)."""
    return {
        "encryption": store.encryption(),
        "kek_id": store.get_meta(KEK_ID_META),
        "data_keys": [
            {
                "key_id": row.key_id,
                "namespace": row.namespace,
                "period": row.period,
                "kek_id": row.kek_id,
                "created_at": row.created_at,
                "shredded_at": row.shredded_at,
            }
            for row in store.data_key_rows()
        ],
    }
