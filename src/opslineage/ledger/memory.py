"""What a client remembers: the newest checkpoint it verified, per log origin, so that a log cannot
roll back (cut off its newest events with their checkpoints, or delete them all) unseen.

Every client that verifies a checkpoint (``opslineage verify``, ``opslineage verify-bundle``) checks
it against the one it remembers for that origin before trusting it, and remembers it when it is
newer and everything verified:

- same size, other root: the log forked;
- smaller size: the log was rolled back (or this is a stale copy);
- larger size: the consistency proof (RFC 9162) from the remembered size must hold;
- no checkpoint at all, for an origin it remembers: the checkpoints were deleted.

The checkpoints live as signed notes, one file per origin, in ``$OPSLINEAGE_CHECKPOINT_CACHE``,
else ``$XDG_CACHE_HOME/opslineage/checkpoints``, else ``~/.cache/opslineage/checkpoints``;
files 0600, directories 0700. Nothing here is trusted without its signature.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from opslineage.ledger.checkpoint import Checkpoint, CheckpointError, parse_note
from opslineage.merkle import ProofError, verify_consistency

__all__ = ["CACHE_ENV", "CacheError", "CheckpointMemory", "default_cache_dir"]

CACHE_ENV = "OPSLINEAGE_CHECKPOINT_CACHE"

Prover = Callable[[int, int], list[bytes] | None]
"""The consistency proof from one tree size to a larger one, as the log gives it (None: none at hand)."""


class CacheError(CheckpointError):
    """The directory of remembered checkpoints cannot be read or written (a setup problem, not the log's)."""


def default_cache_dir() -> Path:
    """``$OPSLINEAGE_CHECKPOINT_CACHE``, else ``$XDG_CACHE_HOME/opslineage/checkpoints``, else
    ``~/.cache/opslineage/checkpoints``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "opslineage" / "checkpoints"


class CheckpointMemory:
    """The newest verified checkpoint per origin, in one directory."""

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self.directory = Path(directory) if directory else default_cache_dir()

    def path(self, origin: str) -> Path:
        """The file of ``origin``'s remembered checkpoint."""
        return self.directory / (quote(origin, safe="") + ".note")

    def recall(self, origin: str) -> Checkpoint | None:
        """The checkpoint remembered for ``origin``, if any (its signature is not checked here).

        Raises:
            CacheError: the file cannot be read.
            CheckpointError: the file is not a checkpoint of ``origin``.
        """
        path = self.path(origin)
        try:
            text = path.read_text()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise CacheError(f"cannot read the remembered checkpoint {path}: {error.strerror}") from None
        remembered = parse_note(text)
        if remembered.origin != origin:
            raise CheckpointError(f"{path} holds a checkpoint of {remembered.origin!r}, not of {origin!r}")
        return remembered

    def origins_signed_by(self, public_key: Ed25519PublicKey) -> list[str]:
        """The origins whose remembered checkpoint is signed by ``public_key``."""
        found = []
        for path in sorted(self.directory.glob("*.note")):
            try:
                remembered = parse_note(path.read_text())
                remembered.verify(public_key)
            except (OSError, UnicodeDecodeError, CheckpointError):
                continue
            found.append(remembered.origin)
        return found

    def check(
        self,
        origin: str,
        newest: Checkpoint | None,
        public_key: Ed25519PublicKey | None,
        prove: Prover | None,
    ) -> str | None:
        """What is wrong with ``newest`` (the newest checkpoint the log shows for ``origin``, already
        verified) given the one remembered; None when it is consistent (or nothing is remembered).

        Args:
            origin: the log's origin.
            newest: the log's newest checkpoint, or None when it has none.
            public_key: the log key the remembered checkpoint must be signed with (when known).
            prove: where a consistency proof from the remembered size comes from; None (or a
                prover answering None) when there is none (an offline bundle made without one).

        Raises:
            CacheError: the remembered checkpoint cannot be read.
        """
        try:
            remembered = self.recall(origin)
            if remembered is None:
                return None
            if public_key is not None:
                remembered.verify(public_key)
        except CacheError:
            raise
        except CheckpointError as error:
            return (
                f"the checkpoint remembered for {origin} does not verify ({error}): the log key changed, "
                f"or {self.path(origin)} was altered; remove that file only if you trust the log"
            )
        old, when = remembered.tree_size, remembered.timestamp
        seen = f"this client verified size {old} of {origin} (signed {when}; kept in {self.path(origin)})"
        if newest is None:
            return (
                f"the log {origin} has no checkpoint, but {seen}: its checkpoints were deleted or the log "
                "was replaced; ask its operator, and do not trust it until it proves it extends that checkpoint"
            )
        if newest.tree_size < old:
            return (
                f"the newest checkpoint of {origin} has size {newest.tree_size}, but {seen}: the log was rolled "
                "back (its newest events cut off) or this is a stale copy; ask its operator, and remove the remembered "
                "file only if you trust this copy"
            )
        if newest.tree_size == old:
            if newest.root_hash != remembered.root_hash:
                return (
                    f"the checkpoint of {origin} at size {old} has another root than the one {seen}: "
                    "the log forked (its key signed two histories); keep both notes as evidence and ask its operator"
                )
            return None
        if old == 0:  # the empty tree: every tree extends it
            return None
        try:
            proof = prove(old, newest.tree_size) if prove else None
            if proof is None:
                return (
                    f"the checkpoint of {origin} has size {newest.tree_size}, but {seen}, and no consistency "
                    f"proof from size {old} came with it to show that it extends that one (ask for one from "
                    f"size {old})"
                )
            verify_consistency(old, newest.tree_size, remembered.root_hash, newest.root_hash, proof)
        except (ProofError, ValueError, TypeError) as error:
            return (
                f"the checkpoint of {origin} at size {newest.tree_size} does not extend the one {seen}: "
                f"the log rewrote its history ({error}); keep both notes as evidence and ask its operator"
            )
        return None

    def remember(self, checkpoint: Checkpoint) -> bool:
        """Keep ``checkpoint`` as the newest of its origin when it is larger than the one kept.
        Returns whether it was written. Call only once it verified and :meth:`check` passed.

        Raises:
            CacheError: the directory cannot be written.
        """
        try:
            kept = self.recall(checkpoint.origin)
        except CacheError:
            raise
        except CheckpointError:
            kept = None  # not a checkpoint: replaced by this one
        if kept is not None and kept.tree_size >= checkpoint.tree_size:
            return False
        try:
            _make_private_dirs(self.directory)
            descriptor, temporary = tempfile.mkstemp(dir=self.directory, prefix=".checkpoint-")  # mode 0600
            with os.fdopen(descriptor, "w") as file:
                file.write(checkpoint.note)
            os.replace(temporary, self.path(checkpoint.origin))
        except OSError as error:
            raise CheckpointError(
                f"cannot remember the checkpoint in {self.directory}: {error.strerror}"
            ) from None
        return True


def _make_private_dirs(directory: Path) -> None:
    """Create ``directory`` and any missing parents with mode 0700."""
    missing = []
    for path in (directory, *directory.parents):
        if path.exists():
            break
        missing.append(path)
    for path in reversed(missing):
        path.mkdir(mode=0o700, exist_ok=True)
