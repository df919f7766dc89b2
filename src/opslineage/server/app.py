"""The FastAPI application behind ``opslineage serve``.

It shares the store (and the log) with the CLI: what one writes, the other reads. Each worker
thread has its own store connection for reads, and every read route reads through a
:class:`~opslineage.query.Reader` for the caller's :class:`~opslineage.query.Principal`, within
the server's time budget (``query_timeout``; past it the query is cancelled with a 503), and
never writes: a bundle no checkpoint covers yet is a 409, not a checkpoint signed behind a GET.
Writes go through one group committer on the event loop
(:class:`~opslineage.ingest.GroupCommitter`), which stores the requests that arrive while a
commit runs together in the next transaction, each still all-or-nothing on its own. Every error
is a JSON body ``{"error", "detail"}`` (plus ``field`` when one field is at fault) with a 4xx
status (503 for a cancelled query); nothing of a rejected request is stored.
"""

from __future__ import annotations

import hmac
import re
import threading
import zlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import msgspec
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from opslineage._version import __version__
from opslineage.ingest import GroupCommitter, IngestPipeline, actor, parse
from opslineage.interop import BundleError, make_bundle
from opslineage.model import InvalidEvent
from opslineage.query import (
    LS_KINDS,
    MAX_DEPTH,
    NotFound,
    Principal,
    QueryTimeout,
    Reader,
    why_view,
    with_statement_timeout,
)
from opslineage.server.marquez import marquez_lineage
from opslineage.store import Store, StoreError, open_store

__all__ = ["MAX_OFFSET", "ServerSettings", "create_app"]

MAX_OFFSET = 1 << 62
"""The largest ``offset`` of ``GET /api/v1/nodes``."""

_T = TypeVar("_T")

_ANONYMOUS = actor("http", "anonymous")
_TOKEN = actor("http", "token")
# Reasons start with the path of the field at fault when one is (see opslineage.model.events).
_FIELD = re.compile(
    r"^((?:eventTime|eventType|producer|schemaURL|run|job|inputs|outputs|dataset)\b[\w.\[\]]*)"
)


@dataclass(frozen=True)
class ServerSettings:
    """How the server runs.

    Args:
        store: the store URL.
        token: when set, ingest needs ``Authorization: Bearer <token>``.
        max_body: the largest request body accepted, in bytes (after decompression too).
        key: the log's private key path, to sign checkpoints on ingest (default: $OPSLINEAGE_KEY).
        query_timeout: seconds a read may take before it is cancelled (a 503).
    """

    store: str
    token: str | None = None
    max_body: int = 16 << 20
    key: str | None = None
    query_timeout: float = 5.0


class ApiError(Exception):
    """An error answered as JSON with a status code."""

    def __init__(self, status: int, error: str, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail, self.field = status, error, detail, field


def _invalid(error: InvalidEvent) -> ApiError:
    match = _FIELD.match(error.reason)
    return ApiError(400, "invalid_event", error.reason, match.group(1) if match else None)


class _Context:
    """What every route needs: the settings, this thread's store connection, and the committer."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self._url = with_statement_timeout(settings.store, settings.query_timeout)
        self._local = threading.local()
        open_store(settings.store).close()  # create it (and fail early) before serving, unbudgeted
        self.committer = GroupCommitter(lambda: IngestPipeline(open_store(settings.store), settings.key))

    def store(self) -> Store:
        if getattr(self._local, "store", None) is None:
            self._local.store = open_store(self._url)
        return self._local.store

    async def body(self, request: Request) -> bytes:
        """The request body, decompressed, within the size limit."""
        limit = self.settings.max_body
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise ApiError(413, "too_large", f"body of {declared} bytes is over the limit of {limit}")
        data = await request.body()
        if len(data) > limit:
            raise ApiError(413, "too_large", f"body is over the limit of {limit} bytes")
        encoding = request.headers.get("content-encoding", "identity").lower()
        if encoding in ("gzip", "deflate"):
            try:
                inflater = zlib.decompressobj(wbits=47 if encoding == "gzip" else 15)
                data = inflater.decompress(data, limit + 1)
            except zlib.error as error:
                raise ApiError(400, "bad_encoding", f"body is not valid {encoding}: {error}") from None
            if len(data) > limit or inflater.unconsumed_tail:
                raise ApiError(413, "too_large", f"decompressed body is over the limit of {limit} bytes")
        elif encoding != "identity":
            raise ApiError(415, "unsupported_encoding", f"Content-Encoding {encoding!r} is not supported")
        return data

    def reader(self, request: Request) -> Reader:
        """This thread's store as the caller of ``request`` reads it: the bearer of the server's
        token, or an anonymous caller."""
        bearer = self.settings.token is not None and self._bears_token(request)
        return Reader(self.store(), Principal.bearer() if bearer else Principal.anonymous())

    def read(self, request: Request, work: Callable[[Reader], _T]) -> _T:
        """``work`` done with the caller's reader, within the time budget.

        Raises:
            QueryTimeout: a query ran out of time and was cancelled.
        """
        reader = self.reader(request)
        with reader.within(self.settings.query_timeout):
            return work(reader)

    def authorize(self, request: Request) -> str:
        """The actor a write is recorded as: ``http:token`` with the server's token, else
        ``http:anonymous`` (when the server has none).

        Raises:
            ApiError: the server has a token and the request does not bear it.
        """
        if not self.settings.token:
            return _ANONYMOUS
        if not self._bears_token(request):
            raise ApiError(401, "unauthorized", "a valid Authorization: Bearer token is required")
        return _TOKEN

    def _bears_token(self, request: Request) -> bool:
        """Whether ``Authorization`` is the Bearer scheme (in any case, RFC 9110) with the token,
        compared in constant time."""
        scheme, _, credentials = request.headers.get("authorization", "").strip().partition(" ")
        token = (self.settings.token or "").encode()
        return scheme.lower() == "bearer" and hmac.compare_digest(credentials.strip().encode(), token)


def create_app(settings: ServerSettings) -> FastAPI:
    """Build the application for ``settings``."""
    context = _Context(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await context.committer.close()  # commit what is queued, then close its store

    app = FastAPI(
        title="opslineage",
        version=__version__,
        description="Lineage and audit trails for AIOps: OpenLineage in, why-chains and proofs out.",
        lifespan=lifespan,
    )
    _error_handlers(app)
    _ingest_routes(app, context)
    _query_routes(app, context)
    _log_routes(app, context)
    return app


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, error: ApiError) -> JSONResponse:
        body: dict[str, Any] = {"error": error.error, "detail": error.detail}
        if error.field:
            body["field"] = error.field
        return JSONResponse(body, status_code=error.status)

    @app.exception_handler(NotFound)
    async def not_found(_: Request, error: NotFound) -> JSONResponse:
        return JSONResponse({"error": "not_found", "detail": str(error)}, status_code=404)

    @app.exception_handler(InvalidEvent)
    async def invalid(_: Request, error: InvalidEvent) -> JSONResponse:
        return JSONResponse({"error": "invalid_request", "detail": error.reason}, status_code=400)

    @app.exception_handler(QueryTimeout)
    async def timeout(_: Request, error: QueryTimeout) -> JSONResponse:
        return JSONResponse({"error": "timeout", "detail": str(error)}, status_code=503)

    @app.exception_handler(StoreError)
    async def conflict(_: Request, error: StoreError) -> JSONResponse:
        return JSONResponse({"error": "conflict", "detail": str(error)}, status_code=409)


def _ingest_routes(app: FastAPI, context: _Context) -> None:
    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"])
    def readyz(request: Request) -> JSONResponse:
        """The store answers."""
        try:
            events = context.reader(request).log_length()
        except Exception as error:
            return JSONResponse({"status": "unavailable", "detail": str(error)}, status_code=503)
        return JSONResponse({"status": "ready", "events": events})

    @app.post("/api/v1/lineage", status_code=201, tags=["ingest"])
    async def ingest_one(request: Request) -> Response:
        """Accept one OpenLineage RunEvent, DatasetEvent or JobEvent, as the OpenLineage clients send it."""
        who = context.authorize(request)
        data = await context.body(request)
        try:
            parsed = parse(data)
        except InvalidEvent as error:
            raise _invalid(error) from None
        result = await context.committer.ingest([parsed], actor=who)
        answer = {
            "accepted": result.accepted,
            "duplicate": result.duplicates == 1,
            "seq": result.first_seq,
            "digest": parsed.digest.hex(),
        }
        return Response(msgspec.json.encode(answer), status_code=201, media_type="application/json")

    @app.post("/api/v1/lineage/batch", tags=["ingest"])
    async def ingest_batch(request: Request) -> dict[str, Any]:
        """Accept a JSON array or JSON lines of events. Every valid event is stored, in one
        transaction; invalid ones are listed with their position and reason and stored nowhere."""
        who = context.authorize(request)
        data = await context.body(request)
        items = _batch_items(data)
        parsed, results = [], []
        for index, item in enumerate(items):
            try:
                event = parse(item)
            except InvalidEvent as error:
                match = _FIELD.match(error.reason)
                results.append(
                    {
                        "index": index,
                        "status": "rejected",
                        "detail": error.reason,
                        **({"field": match.group(1)} if match else {}),
                    }
                )
                continue
            parsed.append(event)
            results.append({"index": index, "status": "accepted", "digest": event.digest.hex()})
        result = await context.committer.ingest(parsed, actor=who)
        rejected = sum(r["status"] == "rejected" for r in results)
        return {
            "accepted": result.accepted,
            "duplicates": result.duplicates,
            "rejected": rejected,
            "results": results,
        }


def _query_routes(app: FastAPI, context: _Context) -> None:
    @app.get("/api/v1/lineage", tags=["query"])
    def lineage(request: Request, nodeId: str, depth: int = 20) -> Response:  # noqa: N803 - Marquez's name
        """The job/dataset graph around a node, in the shape Marquez answers (``depth`` 0 to 100)."""
        _check_depth(depth)
        return _json(context.read(request, lambda reader: marquez_lineage(reader, nodeId, depth)))

    @app.get("/api/v1/why/{node_id:path}", tags=["query"])
    def why_chain(request: Request, node_id: str, as_of: datetime | None = None) -> Response:
        """Why an action happened and what it did: the structured chain back to its sources."""
        return _json(context.read(request, lambda r: r.why(node_id, _sequence_at(r, as_of)).to_dict()))

    @app.get("/api/v1/why-tree/{node_id:path}", tags=["query"])
    def why_tree(request: Request, node_id: str, as_of: datetime | None = None) -> Response:
        """The why-chain as the tree of lines ``opslineage why`` draws (spans with a style each)."""
        return _json(context.read(request, lambda r: why_view(r.why(node_id, _sequence_at(r, as_of)))))

    @app.get("/api/v1/nodes", tags=["query"])
    def nodes(
        request: Request,
        kind: str | None = None,
        q: str | None = None,
        limit: int = 50,
        offset: int = 0,
        as_of: datetime | None = None,
    ) -> Response:
        """Search nodes by kind and text, newest first, a page at a time."""
        if not 1 <= limit <= 1000:
            raise ApiError(400, "invalid_request", "limit must be 1..1000", "limit")
        if not 0 <= offset <= MAX_OFFSET:
            raise ApiError(400, "invalid_request", f"offset must be 0..{MAX_OFFSET}", "offset")
        if kind is not None and kind not in LS_KINDS:
            raise ApiError(
                400, "invalid_request", f"unknown kind {kind!r}; one of {', '.join(LS_KINDS)}", "kind"
            )
        return _json(
            context.read(
                request,
                lambda r: r.page(
                    kind, text=q, limit=limit, offset=offset, as_of=_sequence_at(r, as_of)
                ).to_dict(),
            )
        )

    @app.get("/api/v1/nodes/{node_id:path}", tags=["query"])
    def node(request: Request, node_id: str, as_of: datetime | None = None) -> Response:
        """One node: its columns, its content or facets, and its edges."""
        return _json(context.read(request, lambda r: r.detail(node_id, _sequence_at(r, as_of))))

    @app.get("/api/v1/upstream/{node_id:path}", tags=["query"])
    def upstream_of(
        request: Request, node_id: str, depth: int = 10, as_of: datetime | None = None
    ) -> Response:
        """Everything a node came from (``depth`` 0 to 100)."""
        _check_depth(depth)
        return _json(
            context.read(request, lambda r: r.upstream(node_id, depth, _sequence_at(r, as_of)).to_dict())
        )

    @app.get("/api/v1/downstream/{node_id:path}", tags=["query"])
    def downstream_of(
        request: Request, node_id: str, depth: int = 10, as_of: datetime | None = None
    ) -> Response:
        """Everything that came from a node (``depth`` 0 to 100)."""
        _check_depth(depth)
        return _json(
            context.read(request, lambda r: r.downstream(node_id, depth, _sequence_at(r, as_of)).to_dict())
        )


def _check_depth(depth: int) -> None:
    if not 0 <= depth <= MAX_DEPTH:
        raise ApiError(400, "invalid_request", f"depth must be 0 to {MAX_DEPTH}, got {depth}", "depth")


def _sequence_at(reader: Reader, as_of: datetime | None) -> int | None:
    try:
        return reader.sequence_at(as_of)
    except InvalidEvent as error:
        raise ApiError(400, "invalid_request", error.reason, "as_of") from None


def _log_routes(app: FastAPI, context: _Context) -> None:
    @app.get("/api/v1/log/checkpoint", tags=["log"])
    def log_checkpoint(request: Request) -> dict[str, Any]:
        """The latest signed checkpoint, as ``opslineage checkpoint --json`` prints it."""
        found = context.read(request, lambda r: r.signed_checkpoint())
        if found is None:
            raise ApiError(404, "not_found", "no checkpoint has been signed yet (opslineage checkpoint)")
        return {**found.to_dict(), "note": found.note}

    @app.get("/api/v1/log/proof/inclusion", tags=["log"])
    def proof_inclusion(request: Request, seq: int, tree_size: int | None = None) -> dict[str, Any]:
        """The RFC 9162 inclusion proof of an event."""
        try:
            return context.read(request, lambda r: r.inclusion_proof(seq, tree_size).to_dict())
        except ValueError as error:
            raise ApiError(400, "invalid_request", str(error), "seq") from None

    @app.get("/api/v1/log/proof/consistency", tags=["log"])
    def proof_consistency(request: Request, first: int, second: int) -> dict[str, Any]:
        """The RFC 9162 consistency proof between two tree sizes."""
        try:
            return context.read(request, lambda r: r.consistency_proof(first, second).to_dict())
        except ValueError as error:
            raise ApiError(400, "invalid_request", str(error), "first") from None

    @app.get("/api/v1/bundle/{action_id:path}", tags=["log"])
    def bundle(request: Request, action_id: str) -> Response:
        """The audit bundle of an action (see ``opslineage export --format bundle``), proved against
        the newest checkpoint; 409 when none covers the chain yet (run ``opslineage checkpoint``)."""
        try:
            document = context.read(request, lambda r: make_bundle(r, action_id))
        except BundleError as error:
            raise ApiError(409, "no_checkpoint", str(error)) from None
        return Response(msgspec.json.encode(document), media_type="application/json")


def _json(value: Any) -> Response:
    """A JSON response encoded by msgspec (FastAPI's own encoder is slow on large answers)."""
    return Response(msgspec.json.encode(value), media_type="application/json")


def _batch_items(data: bytes) -> list[Any]:
    text = data.lstrip()
    if text.startswith(b"["):
        try:
            items = msgspec.json.decode(data)
        except msgspec.DecodeError as error:
            raise ApiError(400, "invalid_request", f"malformed JSON array: {error}") from None
        return list(items)
    return [line for line in data.split(b"\n") if line.strip()]
