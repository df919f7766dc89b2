"""The witness behind ``opslineage witness serve``: c2sp.org/tlog-witness's ``add-checkpoint``.

The witness is configured with the logs it witnesses (origin and Ed25519 public key) and keeps,
per origin, the latest checkpoint it cosigned (size, root hash and note) in a SQLite file of its
own (mode 0600). A request is checked, and the state advanced, atomically (one lock and one
``BEGIN IMMEDIATE`` transaction), so two requests can never roll the state back. Answers:

- 200: the witness's cosignature line (``cosignature/v1``, Ed25519, timestamped);
- 400: a malformed request, or ``old`` larger than the checkpoint's size;
- 403: no signature by the log's key verifies;
- 404: an origin the witness does not witness;
- 409 (``text/x.tlog.size``, the size it holds): ``old`` is not the size it last cosigned, or
  that size with another root hash (a fork);
- 413: a body over 64 KiB;
- 422: the consistency proof does not verify.

Every refusal but the 409 is our JSON error body ``{"error", "detail"}``.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from opslineage.ledger.checkpoint import Checkpoint, CheckpointError, parse_note
from opslineage.ledger.witness import SIZE_CONTENT_TYPE, WitnessKey, cosign, parse_request
from opslineage.merkle import ProofError, verify_consistency

__all__ = ["MAX_REQUEST", "WitnessSettings", "WitnessState", "create_witness_app"]

MAX_REQUEST = 64 << 10
"""The largest ``add-checkpoint`` body accepted: 63 proof lines and a note fit many times over."""

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WitnessSettings:
    """How the witness runs.

    Args:
        name: the witness's name in its cosignatures (e.g. ``witness.example/w1``).
        key: its Ed25519 private key.
        logs: the logs it witnesses: origin → the log's public key.
        state: the SQLite file of its state (created 0600).
    """

    name: str
    key: Ed25519PrivateKey
    logs: dict[str, Ed25519PublicKey]
    state: Path


class _Refused(Exception):
    def __init__(self, status: int, error: str, detail: str, size: int | None = None) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail, self.size = status, error, detail, size


class WitnessState:
    """The latest cosigned checkpoint per origin, in a SQLite file of mode 0600."""

    def __init__(self, path: Path) -> None:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))  # before SQLite makes it with the umask
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute(
            "PRAGMA synchronous=FULL"
        )  # a cosignature is answered only once its state is durable
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS cosigned"
            " (origin TEXT PRIMARY KEY, size INTEGER NOT NULL, root BLOB NOT NULL, note TEXT NOT NULL)"
        )
        self._lock = threading.Lock()

    def latest(self, origin: str) -> tuple[int, bytes] | None:
        """The size and root hash last cosigned for ``origin``."""
        row = self._db.execute("SELECT size, root FROM cosigned WHERE origin = ?", (origin,)).fetchone()
        return None if row is None else (int(row[0]), bytes(row[1]))

    def advance(self, checkpoint: Checkpoint, old: int, proof: list[bytes]) -> None:
        """Check ``checkpoint`` against the state (``old`` must be the size held, the proof must
        lead from it) and make it the state, in one step.

        Raises:
            _Refused: 409 or 422.
        """
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                _check(self.latest(checkpoint.origin), checkpoint, old, proof)
                self._db.execute(
                    "INSERT OR REPLACE INTO cosigned VALUES (?, ?, ?, ?)",
                    (checkpoint.origin, checkpoint.tree_size, checkpoint.root_hash, checkpoint.note),
                )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        """Close the file."""
        self._db.close()


def _check(held: tuple[int, bytes] | None, checkpoint: Checkpoint, old: int, proof: list[bytes]) -> None:
    size, root = held or (0, b"")
    if old != size:
        raise _Refused(409, "conflict", f"the witness holds size {size} of {checkpoint.origin}", size)
    if old == checkpoint.tree_size:
        if old and root != checkpoint.root_hash:
            raise _Refused(
                409,
                "conflict",
                f"the witness cosigned another root at size {size} of {checkpoint.origin}",
                size,
            )
        if proof:
            raise _Refused(422, "inconsistent", "the sizes are equal but the consistency proof is not empty")
        return
    if old == 0:
        if proof:
            raise _Refused(422, "inconsistent", "a consistency proof from size 0 must be empty")
        return
    try:
        verify_consistency(old, checkpoint.tree_size, root, checkpoint.root_hash, proof)
    except ProofError as error:
        _log.warning(
            "log %s presented size %d, inconsistent with the size %d cosigned: %s",
            checkpoint.origin,
            checkpoint.tree_size,
            old,
            error,
        )
        raise _Refused(
            422, "inconsistent", f"the consistency proof from size {old} does not verify: {error}"
        ) from None


def create_witness_app(settings: WitnessSettings) -> FastAPI:
    """The witness's HTTP application (``POST /add-checkpoint``)."""
    state = WitnessState(settings.state)
    app = FastAPI(title="opslineage witness", docs_url=None, redoc_url=None)
    app.state.witness = state

    @app.exception_handler(_Refused)
    async def refused(_: Request, error: _Refused) -> Response:
        if error.status == 409 and error.size is not None:
            return Response(f"{error.size}\n", status_code=409, headers={"Content-Type": SIZE_CONTENT_TYPE})
        return JSONResponse({"error": error.error, "detail": error.detail}, status_code=error.status)

    @app.post("/add-checkpoint")
    async def add_checkpoint(request: Request) -> Response:
        """Cosign a checkpoint that is consistent with the last one cosigned for its log."""
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_REQUEST:
                raise _Refused(413, "too_large", f"the request body is larger than {MAX_REQUEST} bytes")
        try:
            asked = parse_request(bytes(body))
            checkpoint = parse_note(asked.note)
        except (ValueError, CheckpointError) as error:
            raise _Refused(400, "invalid_request", str(error)) from None
        log_key = settings.logs.get(checkpoint.origin)
        if log_key is None:
            raise _Refused(404, "unknown_log", f"this witness does not witness {checkpoint.origin!r}")
        try:
            checkpoint.verify(log_key)
        except CheckpointError as error:
            raise _Refused(
                403, "bad_signature", f"no signature by the key of {checkpoint.origin} verifies: {error}"
            ) from None
        if asked.old > checkpoint.tree_size:
            raise _Refused(
                400,
                "invalid_request",
                f"old size {asked.old} is larger than the checkpoint's {checkpoint.tree_size}",
            )
        await run_in_threadpool(state.advance, checkpoint, asked.old, asked.proof)
        line = cosign(settings.key, settings.name, checkpoint, int(time.time()))
        return Response(line + "\n", headers={"Content-Type": "text/plain; charset=utf-8"})

    @app.get("/")
    async def about() -> dict[str, object]:
        """The witness's name, verifier key and the origins it witnesses."""
        return {
            "name": settings.name,
            "vkey": WitnessKey.of(settings.name, settings.key).vkey,
            "logs": sorted(settings.logs),
        }

    return app
