"""The API routes that hand a verifier the evidence it checks for itself: the bytes of one log
leaf (``GET /api/v1/log/leaf``, so a browser can recompute the leaf hash an inclusion proof starts
from) and an action's in-toto statement (``GET /api/v1/intoto/{action_id}``, the DSSE envelope
``opslineage export --format intoto`` writes).
"""

from __future__ import annotations

import base64
from typing import Any, TypeVar
from urllib.parse import quote

import msgspec
from fastapi import FastAPI, Request
from fastapi.responses import Response

from opslineage.interop import BundleError, make_intoto
from opslineage.ledger.keys import LogKeyError, load_private_key
from opslineage.query import Reader
from opslineage.server.answers import ApiError, Reads, error_responses

__all__ = ["evidence_routes"]

_T = TypeVar("_T")


def evidence_routes(app: FastAPI, context: Reads) -> None:
    """Add the leaf and in-toto routes to ``app``."""

    @app.get("/api/v1/log/leaf", tags=["log"], responses=error_responses(400, 503))
    def log_leaf(request: Request, seq: int) -> dict[str, Any]:
        """The data the log's leaf of event ``seq`` hashes (base64; the leaf hash is
        SHA-256(0x00 || data)) and the event: ``opslineage-leaf/2\\n``, the event's 32-byte
        digest, then its stored body, in which each artifact stands as its digest."""
        try:
            leaf = context.read(request, lambda reader: reader.log_leaf(seq))
        except ValueError as failure:
            raise ApiError(400, "invalid_request", str(failure), "seq") from None
        stored = leaf.event
        return {
            "seq": stored.seq,
            "form": 2,
            "data": base64.b64encode(leaf.data).decode(),
            "digest": f"sha256:{stored.digest}",
            "event": stored.event,
        }

    @app.get("/api/v1/intoto/{action_id:path}", tags=["log"], responses=error_responses(400, 404, 409, 503))
    def intoto(request: Request, action_id: str) -> Response:
        """The action's audit bundle as an in-toto Statement v1 in a DSSE envelope signed with the
        log key; 409 when no checkpoint covers the chain yet, 503 when this server has no log key."""

        def statement(reader: Reader) -> dict[str, Any]:
            key = load_private_key(reader.log_key_path())
            return make_intoto(reader, action_id, key)

        try:
            envelope = context.read(request, statement)
        except BundleError as failure:
            raise ApiError(409, "no_checkpoint", str(failure)) from None
        except LogKeyError:
            detail = "this server holds no log key to sign the statement; ask its operator"
            raise ApiError(503, "key_unavailable", detail) from None
        name = quote(action_id.replace(":", "-"), safe="")
        return Response(
            msgspec.json.encode(envelope),
            media_type="application/json",
            headers={"Content-Disposition": f'attachment; filename="intoto-{name}.json"'},
        )
