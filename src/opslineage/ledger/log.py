"""The transparency log over a store: roots, proofs and signed checkpoints.

Every accepted event is a leaf (leaf index = sequence number - 1, leaf hash = SHA-256(0x00 ||
the event's RFC 8785 bytes)); the store appends it in the same transaction as the event. This
module reads that tree through the :class:`Store` interface and signs what it says.
"""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from opslineage.ledger.checkpoint import Checkpoint, parse_note, sign
from opslineage.ledger.keys import (
    DEFAULT_KEY_PATH,
    LogKeyError,
    create_key,
    key_path,
    load_private_key,
    public_key_b64,
)
from opslineage.merkle import EMPTY_ROOT, NodeReader, consistency_proof, inclusion_proof, root_at
from opslineage.store import Store

__all__ = [
    "CHECKPOINT_EVERY",
    "CHECKPOINT_SECONDS",
    "checkpoint",
    "checkpoint_due",
    "checkpoint_policy",
    "consistency",
    "cosignatures",
    "inclusion",
    "init_log",
    "kept_checkpoints",
    "latest_checkpoint",
    "log_key_path",
    "maybe_checkpoint",
    "prove_consistency",
    "prove_inclusion",
    "root",
    "signing_origin",
    "tree_root",
]

CHECKPOINT_EVERY = 10_000  # events between automatic checkpoints, unless the store says otherwise
CHECKPOINT_SECONDS = 300  # seconds between automatic checkpoints while events arrive


def root(store: Store, size: int | None = None) -> bytes:
    """The root hash of the log as it stood at ``size`` leaves (default: now)."""
    size = store.log_size() if size is None else size
    return tree_root(size, store.log_node)


def tree_root(size: int, get: NodeReader) -> bytes:
    """The root hash of the tree of ``size`` leaves whose stored nodes ``get`` reads."""
    return EMPTY_ROOT if size == 0 else root_at(size, get)


def _check_size(name: str, value: int, size: int) -> None:
    if not 0 < value <= size:
        raise ValueError(f"{name} must be between 1 and the log size {size}, got {value}")


def inclusion(store: Store, seq: int, tree_size: int | None = None) -> dict[str, Any]:
    """The inclusion proof of the event with sequence number ``seq`` in the tree of ``tree_size``.

    Raises:
        ValueError: ``seq`` or ``tree_size`` outside the log.
    """
    return prove_inclusion(store.log_size(), store.log_node, seq, tree_size)


def prove_inclusion(size: int, get: NodeReader, seq: int, tree_size: int | None = None) -> dict[str, Any]:
    """The inclusion proof of leaf ``seq - 1`` in the tree of ``tree_size`` (default: ``size``),
    in a log of ``size`` leaves whose stored nodes ``get`` reads.

    Raises:
        ValueError: ``seq`` or ``tree_size`` outside the log.
    """
    tree_size = size if tree_size is None else tree_size
    _check_size("tree size", tree_size, size)
    if not 0 < seq <= tree_size:
        raise ValueError(f"sequence number must be between 1 and the tree size {tree_size}, got {seq}")
    return {
        "leaf_index": seq - 1,
        "tree_size": tree_size,
        "leaf_hash": get(0, seq - 1).hex(),
        "root_hash": tree_root(tree_size, get).hex(),
        "audit_path": [node.hex() for node in inclusion_proof(seq - 1, tree_size, get)],
    }


def consistency(store: Store, first: int, second: int) -> dict[str, Any]:
    """The proof that the tree of ``second`` leaves extends the tree of ``first`` leaves.

    Raises:
        ValueError: sizes outside the log, or ``first`` > ``second``.
    """
    return prove_consistency(store.log_size(), store.log_node, first, second)


def prove_consistency(size: int, get: NodeReader, first: int, second: int) -> dict[str, Any]:
    """The proof that the tree of ``second`` leaves extends the tree of ``first`` leaves, in a log
    of ``size`` leaves whose stored nodes ``get`` reads.

    Raises:
        ValueError: sizes outside the log, or ``first`` > ``second``.
    """
    _check_size("first", first, size)
    _check_size("second", second, size)
    if first > second:
        raise ValueError(f"first ({first}) must not be larger than second ({second})")
    return {
        "first": first,
        "second": second,
        "first_root": tree_root(first, get).hex(),
        "second_root": tree_root(second, get).hex(),
        "proof": [node.hex() for node in consistency_proof(first, second, get)],
    }


def init_log(
    store: Store,
    *,
    key: str | None = None,
    origin: str | None = None,
    every: int = CHECKPOINT_EVERY,
    seconds: int = CHECKPOINT_SECONDS,
) -> tuple[Path, str]:
    """Create the log's key pair and record its origin and checkpoint policy in the store.

    Returns the key path and the origin.

    Raises:
        LogKeyError: a key already exists there, or the store already has a different key.
    """
    path = key_path(key, str(_beside(store)))
    origin = (
        origin
        or store.get_meta("log_origin")
        or f"opslineage.local/{socket.gethostname()}/{Path(store.url).stem}"
    )
    private = create_key(path)
    public = public_key_b64(private.public_key())
    recorded = store.get_meta("log_public_key")
    if recorded and recorded != public:
        raise LogKeyError(
            f"the store is already signed by another key ({recorded}); point OPSLINEAGE_KEY at it"
        )
    store.set_meta("log_origin", origin)
    store.set_meta("log_public_key", public)
    store.set_meta("log_key", str(path.resolve()))
    store.set_meta("checkpoint_every", str(every))
    store.set_meta("checkpoint_seconds", str(seconds))
    return path, origin


def _beside(store: Store) -> Path:
    """Where ``init`` puts a new key: beside a SQLite file (``x.db`` → ``x.key``), else here."""
    file = getattr(store, "path", None)
    return Path(file).with_suffix(".key") if file is not None else Path(DEFAULT_KEY_PATH)


def log_key_path(store: Store, key: str | None = None) -> Path:
    """The log's private key: ``key``, else ``$OPSLINEAGE_KEY``, else where ``init`` put it."""
    return key_path(key, store.get_meta("log_key"))


def signing_origin(store: Store, key: Ed25519PrivateKey) -> str:
    """The log's origin line, once ``key`` is checked to be the key the log was made with.

    Raises:
        LogKeyError: another key, or a log not initialised (no origin).
    """
    recorded = store.get_meta("log_public_key")
    if recorded and recorded != public_key_b64(key.public_key()):
        raise LogKeyError("this key is not the key the store's log was initialised with")
    origin = store.get_meta("log_origin")
    if origin is None:
        raise LogKeyError("the store's log has no origin yet (run `opslineage init`)")
    return origin


def checkpoint(store: Store, key: Ed25519PrivateKey, now: datetime | None = None) -> Checkpoint:
    """Sign the log's current size and root and keep the checkpoint in the store."""
    size = store.log_size()
    made = sign(key, signing_origin(store, key), size, root(store, size), now or datetime.now(UTC))
    store.add_checkpoint(size, made.root_hash, made.note)
    return latest_checkpoint(store) or made


def latest_checkpoint(store: Store) -> Checkpoint | None:
    """The checkpoint of the largest tree size kept, if any, with the witness cosignatures kept for it."""
    kept = store.latest_checkpoint()
    if kept is None:
        return None
    return parse_note(kept[2], store.get_meta("log_public_key") or "").with_cosignatures(
        cosignatures(store, kept[0])
    )


def kept_checkpoints(store: Store, limit: int | None = None) -> list[Checkpoint]:
    """The checkpoints kept, largest tree size first (at most ``limit``), each with its witness
    cosignatures."""
    public = store.get_meta("log_public_key") or ""
    rows = sorted(store.checkpoints(), key=lambda row: row[0], reverse=True)[:limit]
    return [parse_note(note, public).with_cosignatures(cosignatures(store, size)) for size, _, note in rows]


def cosignatures(store: Store, size: int) -> list[str]:
    """The witness cosignature lines kept for the checkpoint of ``size`` (see :mod:`opslineage.ledger.witness`)."""
    return [line for line in (store.get_meta(f"cosignatures:{size}") or "").split("\n") if line]


def maybe_checkpoint(store: Store, key: str | None = None, now: datetime | None = None) -> Checkpoint | None:
    """Sign a checkpoint when the store's policy says one is due (every N events or T seconds).

    Does nothing when the log has no key here (``opslineage init`` was not run).
    """
    path = log_key_path(store, key)
    if not path.exists() or store.get_meta("log_origin") is None:
        return None
    now = now or datetime.now(UTC)
    if checkpoint_due(latest_checkpoint(store), store.log_size(), now, *checkpoint_policy(store)):
        return checkpoint(store, load_private_key(path), now)
    return None


def checkpoint_policy(store: Store) -> tuple[int, int]:
    """The store's checkpoint cadence: (events, seconds) between automatic checkpoints."""
    every = int(store.get_meta("checkpoint_every") or CHECKPOINT_EVERY)
    return every, int(store.get_meta("checkpoint_seconds") or CHECKPOINT_SECONDS)


def checkpoint_due(latest: Checkpoint | None, size: int, now: datetime, every: int, seconds: int) -> bool:
    """Whether a log of ``size`` leaves, last signed at ``latest``, is due a checkpoint: it grew,
    and by ``every`` leaves or ``seconds`` after ``latest`` (or it has none yet)."""
    done = latest.tree_size if latest else 0
    if size == done:
        return False
    stale = latest is None or now - datetime.fromisoformat(latest.timestamp) >= timedelta(seconds=seconds)
    return size - done >= every or stale
