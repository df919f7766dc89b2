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

Who calls is decided once, before a route runs (:meth:`_Context.guard`): the route's row of
:data:`~opslineage.server.auth.ROUTE_PERMISSIONS` names the permission it needs, the bearer
token (once the store has any) the principal; a refusal is a 401 or a 403 and, like every
request but the health checks, one access event on the trail given to :func:`create_app`.
"""

from __future__ import annotations

import re
import threading
import zlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import msgspec
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.routing import Match

from opslineage._version import __version__
from opslineage.checks.quality import Period
from opslineage.governance import AccessDenied, AccessTrail, Permission
from opslineage.ingest import GroupCommitter, IngestPipeline, actor, parse
from opslineage.interop import BundleError, make_bundle
from opslineage.model import InvalidEvent, ParsedEvent
from opslineage.query import (
    LS_KINDS,
    MAX_DEPTH,
    MAX_OFFSET,
    MAX_SEARCH,
    NotFound,
    Principal,
    QueryTimeout,
    Reader,
    why_view,
    with_statement_timeout,
)
from opslineage.server.analytics import analytics_routes
from opslineage.server.answers import ApiError, Since
from opslineage.server.answers import client_of as _client
from opslineage.server.answers import error_responses as _errors
from opslineage.server.answers import json_response as _json
from opslineage.server.answers import rfc3339 as _rfc3339
from opslineage.server.auth import ROUTE_PERMISSIONS, SHARED_SECRET, Authenticator, confine_events, route_key
from opslineage.server.evidence import evidence_routes
from opslineage.server.marquez import marquez_lineage
from opslineage.server.metrics import PROMETHEUS_TEXT, LatencyMiddleware, ServerMetrics
from opslineage.server.pages import SESSION_COOKIE, Sessions, add_pages, is_page, page_error
from opslineage.store import IngestResult, Store, StoreError, StoreUnavailable, open_store
from opslineage.store.keys import KeyError_

__all__ = ["ServerSettings", "create_app"]


_T = TypeVar("_T")

AsOf = Annotated[
    str | None,
    Query(
        description="answer as the store stood at this time (RFC 3339, with its offset)",
        json_schema_extra={"format": "date-time"},
    ),
]

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
        quality_cache: seconds the quality figures of ``/metrics`` and ``/api/v1/quality`` are
            served again before they are computed anew.
    """

    store: str
    token: str | None = None
    max_body: int = 16 << 20
    key: str | None = None
    query_timeout: float = 5.0
    quality_cache: float = 30.0


_READ_ERRORS = _errors(400, 404, 503)
_INGEST_ERRORS = _errors(400, 409, 413, 415, 503)
_EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "An OpenLineage RunEvent, DatasetEvent or JobEvent "
    "(https://openlineage.io/spec/2-0-2/OpenLineage.json)",
    "properties": {
        "eventType": {"type": "string", "enum": ["START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"]},
        "eventTime": {"type": "string", "format": "date-time"},
        "producer": {"type": "string", "format": "uri"},
        "schemaURL": {"type": "string", "format": "uri"},
        "run": {"type": "object", "properties": {"runId": {"type": "string", "format": "uuid"}}},
        "job": {
            "type": "object",
            "properties": {"namespace": {"type": "string"}, "name": {"type": "string"}},
        },
        "inputs": {"type": "array", "items": {"type": "object"}},
        "outputs": {"type": "array", "items": {"type": "object"}},
    },
    "required": ["eventTime", "producer", "schemaURL"],
}


def _refuse_nul(request: Request) -> None:
    """Refuse a path or query parameter holding a NUL character: no id or name holds one (PostgreSQL
    text cannot), so it can only be a probe, answered the same on every backend.

    Raises:
        ApiError: (400) a parameter holds NUL, named in the answer.
    """
    params = [*request.path_params.items(), *request.query_params.multi_items()]
    for name, value in params:
        if "\x00" in str(value):
            raise ApiError(400, "invalid_request", f"{name}: holds a NUL character", field=name)


def _invalid(error: InvalidEvent) -> ApiError:
    match = _FIELD.match(error.reason)
    return ApiError(400, "invalid_event", error.reason, match.group(1) if match else None)


_JSON_TYPES = ("application/json", "application/x-ndjson", "application/jsonl")


def _check_media_type(content_type: str | None) -> None:
    """Refuse (415) a body not declared as JSON: a browser posts ``text/plain``, a form or an
    untyped body to another site without asking first, so only JSON proves a deliberate client.

    Raises:
        ApiError: the Content-Type is missing or is not JSON, JSON lines or ``application/*+json``.
    """
    media_type = (content_type or "").partition(";")[0].strip().lower()
    if media_type in _JSON_TYPES or (media_type.startswith("application/") and media_type.endswith("+json")):
        return
    named = f"Content-Type {media_type!r}" if media_type else "a missing Content-Type"
    raise ApiError(
        415, "unsupported_media_type", f"{named} is refused: send application/json", "Content-Type"
    )


class _Context:
    """What every route needs: the settings, this thread's store connection, the committer, who
    is calling and where their access events go."""

    def __init__(self, settings: ServerSettings, trail: AccessTrail | None = None) -> None:
        self.settings = settings
        self.trail = trail
        self._url = with_statement_timeout(settings.store, settings.query_timeout)
        self._local = threading.local()
        open_store(settings.store).close()  # create it (and fail early) before serving, unbudgeted
        self.committer = GroupCommitter(lambda: IngestPipeline(open_store(settings.store), settings.key))
        self.metrics = ServerMetrics(settings.quality_cache)
        self.auth = Authenticator(self.store, settings.token)
        self.sessions = Sessions()

    def store(self) -> Store:
        if getattr(self._local, "store", None) is None:
            self._local.store = open_store(self._url)
        return self._local.store

    async def body(self, request: Request) -> bytes:
        """The request body, decompressed, read as it arrives and refused (413) as soon as the
        bytes received or the bytes they decompress to pass the size limit.

        Raises:
            ApiError: not JSON (415), over the limit (413), an unknown encoding (415), or a
                compressed body that is not exactly one whole gzip member or deflate stream (400).
        """
        _check_media_type(request.headers.get("content-type"))
        limit = self.settings.max_body
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise ApiError(413, "too_large", f"body of {declared} bytes is over the limit of {limit}")
        encoding = request.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("identity", "gzip", "deflate"):
            raise ApiError(415, "unsupported_encoding", f"Content-Encoding {encoding!r} is not supported")
        inflater = _Inflater(encoding, limit) if encoding != "identity" else None
        received, parts = 0, []
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit:
                raise ApiError(413, "too_large", f"body is over the limit of {limit} bytes")
            parts.append(inflater.feed(chunk) if inflater else chunk)
        if inflater:
            inflater.finish()
        return b"".join(parts)

    async def ingest(self, parsed: list[ParsedEvent], who: str, rejected: int = 0) -> IngestResult:
        """Store ``parsed`` through the group committer, counting the events in the metrics:
        ``rejected`` invalid ones besides, and all of them when the store refuses the batch."""
        try:
            result = await self.committer.ingest(parsed, actor=who)
        except StoreUnavailable:
            raise
        except StoreError:
            self.metrics.count_ingest(rejected=rejected + len(parsed))
            raise
        self.metrics.count_ingest(result.accepted, result.duplicates, rejected)
        return result

    def guard(self, request: Request) -> None:
        """Let ``request`` on only if its bearer holds the permission its route declares in
        :data:`~opslineage.server.auth.ROUTE_PERMISSIONS` (a dependency of every route); a refusal
        is recorded on the trail.

        Raises:
            AccessDenied: no valid token (a 401), or its role lacks the permission (a 403), or the
                route declares none.
        """
        key = route_key(request.method, getattr(request.scope.get("route"), "path", request.url.path))
        if key in ROUTE_PERMISSIONS and ROUTE_PERMISSIONS[key] is None:
            return
        name, target = _operation(request), _target(request)
        reader = Reader(self.store(), Principal.anonymous(), self.trail, _client(request))
        try:
            if key not in ROUTE_PERMISSIONS:
                raise AccessDenied(name, f"{key[0]} {key[1]} declares no permission")
            permission = ROUTE_PERMISSIONS[key]
            writing = permission is Permission.WRITE_EVENTS
            authorization = request.headers.get("authorization") or self._session_bearer(request)
            reader = Reader(
                self.store(), self.auth.principal(authorization, writing=writing), self.trail, reader.client
            )
            if permission is not None:
                reader.allow(permission, name)
        except AccessDenied as denied:
            reader.refuse(name, denied.reason, target)
            raise
        request.state.principal = reader.principal
        _refuse_nul(request)

    def _session_bearer(self, request: Request) -> str | None:
        """The bearer of the request's sign-in session, for a page or an API read (an API write
        needs its token in ``Authorization``); the session is kept on the request for its forms."""
        if request.method not in ("GET", "HEAD") and not is_page(request):
            return None
        session = self.sessions.get(request.cookies.get(SESSION_COOKIE))
        if session is None:
            return None
        request.state.session = session
        return f"Bearer {session.secret}"

    def reader(self, request: Request) -> Reader:
        """This thread's store as the caller of ``request`` reads it (see :meth:`guard`)."""
        return Reader(self.store(), request.state.principal, self.trail, _client(request))

    def read(self, request: Request, work: Callable[[Reader], _T]) -> _T:
        """``work`` done with the caller's reader, as one operation on the trail, within the time
        budget; a node the route names must be in the caller's namespaces.

        Raises:
            QueryTimeout: a query ran out of time and was cancelled.
            AccessDenied: the node named, or the namespace asked for, is outside the caller's.
        """
        reader = self.reader(request)
        with (
            reader.operation(_operation(request), _target(request)),
            reader.within(self.settings.query_timeout),
        ):
            _confine(reader, request)
            return work(reader)


def _operation(request: Request) -> str:
    """The access events' name of the request's operation: its route's, ``ingest-one``, ``why-chain`` …"""
    return str(getattr(request.scope.get("route"), "name", "unmatched")).replace("_", "-")


def _target(request: Request) -> str | None:
    """The node the request names (in its path, or as ``nodeId``), if it names one."""
    named = request.path_params.get("node_id") or request.path_params.get("action_id")
    return named or request.query_params.get("nodeId")


def _confine(reader: Reader, request: Request) -> None:
    """Refuse a node named by the request, or a ``namespace`` asked for, outside the reader's
    namespaces (nodes reached from it are redacted instead, see :mod:`opslineage.query.visibility`)."""
    principal = reader.principal
    if principal.namespaces is None:
        return
    name, asked = _operation(request), request.query_params.get("namespace")
    if asked is not None and not principal.covers(asked):
        raise AccessDenied(name, f"namespace {asked!r} is outside {principal.id}'s namespaces")
    target = _target(request)
    if target is not None:
        reader.resolve_covered(target, name)


def _writer_actor(reader: Reader) -> str:
    """The actor a write is recorded as: ``http:<token name>``, ``http:token`` for the shared
    secret, else ``http:anonymous``."""
    if reader.principal.id.startswith("token:"):
        return actor("http", reader.principal.name)
    if reader.principal.name == SHARED_SECRET.name:
        return _TOKEN
    return _ANONYMOUS


class _Inflater:
    """A gzip or deflate body decompressed chunk by chunk, never to more than ``limit`` bytes, and
    refused unless it is exactly one whole gzip member (or zlib deflate stream)."""

    def __init__(self, encoding: str, limit: int) -> None:
        self.encoding, self.limit, self.size = encoding, limit, 0
        self._stream = zlib.decompressobj(wbits=47 if encoding == "gzip" else 15)
        self._what = "the gzip member" if encoding == "gzip" else "the deflate stream"

    def feed(self, chunk: bytes) -> bytes:
        """What ``chunk`` decompresses to."""
        if self._stream.eof:
            self._trailing(chunk)
        try:
            data = self._stream.decompress(chunk, self.limit + 1 - self.size)
        except zlib.error as error:
            raise ApiError(400, "bad_encoding", f"body is not valid {self.encoding}: {error}") from None
        self.size += len(data)
        if self.size > self.limit or self._stream.unconsumed_tail:
            raise ApiError(413, "too_large", f"decompressed body is over the limit of {self.limit} bytes")
        if self._stream.eof:
            self._trailing(self._stream.unused_data)
        return data

    def finish(self) -> None:
        """Check that the body ended where its compressed stream does."""
        if not self._stream.eof:
            raise ApiError(
                400,
                "bad_encoding",
                f"truncated {self.encoding}: the body ends before the end of {self._what}",
            )

    def _trailing(self, data: bytes) -> None:
        if not data:
            return
        if self.encoding == "gzip" and data.startswith(b"\x1f\x8b"):
            raise ApiError(400, "bad_encoding", "a second gzip member follows the first: send one member")
        raise ApiError(400, "bad_encoding", f"trailing data after {self._what} ({len(data)} bytes or more)")


def create_app(settings: ServerSettings, trail: AccessTrail | None = None) -> FastAPI:
    """Build the application for ``settings``; each request is one access event on ``trail``
    (refusals too), when given."""
    context = _Context(settings, trail)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await context.committer.close()  # commit what is queued, then close its store

    app = FastAPI(
        title="opslineage",
        version=__version__,
        description="Lineage and audit trails for AIOps: OpenLineage in, why-chains and proofs out.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        dependencies=[Depends(context.guard)],
    )
    _error_handlers(app)
    _ingest_routes(app, context)
    _query_routes(app, context)
    _log_routes(app, context)
    evidence_routes(app, context)
    _access_log_routes(app, context)
    _quality_routes(app, context)
    analytics_routes(app, context)
    add_pages(app, context)
    app.add_middleware(LatencyMiddleware, metrics=context.metrics, routes=app.router.routes)
    app.state.metrics = context.metrics  # the verifier sets its correctness figures here
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]

    @app.get("/openapi.json", include_in_schema=False)
    def openapi() -> dict[str, Any]:
        """The OpenAPI document of the API."""
        return app.openapi()

    return app


class _Unavailable(BaseModel):
    """What ``/readyz`` answers when the store does not."""

    status: str
    detail: str


def _request_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document, without the 422 FastAPI declares by default: bad parameters are 400s
    with our error body (see ``_error_handlers``)."""
    if app.openapi_schema is None:
        document = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        for path in document["paths"].values():
            for operation in path.values():
                operation["responses"].pop("422", None)
        for name in ("HTTPValidationError", "ValidationError"):
            document.get("components", {}).get("schemas", {}).pop(name, None)
        app.openapi_schema = document
    return app.openapi_schema


def _error(
    request: Request,
    status: int,
    error: str,
    detail: str,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """The answer to an error: our JSON body for the API, an HTML page (or the sign-in page, for
    a 401) for the web pages."""
    if is_page(request):
        return page_error(request, status, error, detail)
    body: dict[str, Any] = {"error": error, "detail": detail}
    if field:
        body["field"] = field
    return JSONResponse(body, status_code=status, headers=headers)


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError) -> Response:
        return _error(request, error.status, error.error, error.detail, error.field)

    @app.exception_handler(AccessDenied)
    async def refused(request: Request, denied: AccessDenied) -> Response:
        if not denied.authenticated:
            challenge = {"WWW-Authenticate": 'Bearer realm="opslineage"'}
            return _error(request, 401, "unauthorized", denied.reason, headers=challenge)
        return _error(request, 403, "forbidden", denied.reason)

    @app.exception_handler(RequestValidationError)
    async def bad_parameter(request: Request, error: RequestValidationError) -> Response:
        first = error.errors()[0]
        field = str(first["loc"][-1]) if first.get("loc") else None
        detail = f"{field}: {first['msg']}" if field else str(first["msg"])
        return _error(request, 400, "invalid_request", detail, field)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        headers = dict(error.headers or {})
        if error.status_code == 405:  # every method of the path, not only those of its first route
            headers["Allow"] = ", ".join(_allowed(app, request))
        return _error(request, error.status_code, code, str(error.detail), headers=headers)

    @app.exception_handler(NotFound)
    async def not_found(request: Request, error: NotFound) -> Response:
        return _error(request, 404, "not_found", str(error))

    @app.exception_handler(InvalidEvent)
    async def invalid(request: Request, error: InvalidEvent) -> Response:
        return _error(request, 400, "invalid_request", error.reason)

    @app.exception_handler(QueryTimeout)
    async def timeout(request: Request, error: QueryTimeout) -> Response:
        return _error(request, 503, "timeout", str(error))

    @app.exception_handler(KeyError_)
    async def key_unavailable(request: Request, error: KeyError_) -> Response:
        # the detail stays in the operator's hands: it may name the key file
        detail = "the store's key-encryption key is missing or wrong on this server; ask its operator"
        return _error(request, 503, "key_unavailable", detail)

    @app.exception_handler(StoreUnavailable)
    async def unavailable(request: Request, error: StoreUnavailable) -> Response:
        return _error(request, 503, "store_unavailable", str(error))

    @app.exception_handler(StoreError)
    async def conflict(request: Request, error: StoreError) -> Response:
        return _error(request, 409, "conflict", str(error))


def _allowed(app: FastAPI, request: Request) -> list[str]:
    """The methods some route of the app takes on the request's path."""
    methods: set[str] = set()
    for route in app.router.routes:
        match, _ = route.matches(request.scope)
        if match != Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return sorted(methods)


def _ingest_routes(app: FastAPI, context: _Context) -> None:
    @app.get("/healthz", tags=["operations"], responses=_errors(guarded=False))
    def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["operations"],
        responses={
            **_errors(guarded=False),
            503: {"description": "The store does not answer", "model": _Unavailable},
        },
    )
    def readyz(request: Request) -> JSONResponse:
        """The store answers."""
        try:
            events = Reader(context.store(), Principal.anonymous("admin")).log_length()
        except Exception as error:
            return JSONResponse({"status": "unavailable", "detail": str(error)}, status_code=503)
        return JSONResponse({"status": "ready", "events": events})

    @app.post(
        "/api/v1/lineage",
        status_code=201,
        tags=["ingest"],
        responses=_INGEST_ERRORS,
        openapi_extra=_request_body(_EVENT_SCHEMA),
    )
    async def ingest_one(request: Request) -> Response:
        """Accept one OpenLineage RunEvent, DatasetEvent or JobEvent, as the OpenLineage clients send it."""
        writer = context.reader(request)
        data = await context.body(request)
        try:
            parsed = parse(data)
        except InvalidEvent as error:
            context.metrics.count_ingest(rejected=1)
            raise _invalid(error) from None
        with writer.operation(_operation(request)):
            confine_events(writer.principal, [parsed], _operation(request))
            result = await context.ingest([parsed], _writer_actor(writer))
        answer = {
            "accepted": result.accepted,
            "duplicate": result.duplicates == 1,
            "seq": result.first_seq,
            "digest": parsed.digest.hex(),
        }
        return Response(msgspec.json.encode(answer), status_code=201, media_type="application/json")

    @app.post(
        "/api/v1/lineage/batch",
        tags=["ingest"],
        responses=_INGEST_ERRORS,
        openapi_extra=_request_body(
            {"type": "array", "items": _EVENT_SCHEMA, "description": "Events; JSON lines are taken too"}
        ),
    )
    async def ingest_batch(request: Request) -> dict[str, Any]:
        """Accept a JSON array or JSON lines of events. Every valid event is stored, in one
        transaction; invalid ones are listed with their position and reason and stored nowhere."""
        writer = context.reader(request)
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
        rejected = len(results) - len(parsed)
        with writer.operation(_operation(request)):
            confine_events(writer.principal, parsed, _operation(request))
            result = await context.ingest(parsed, _writer_actor(writer), rejected)
        valid = [r for r in results if r["status"] == "accepted"]
        for position in result.duplicates_at:
            valid[position]["status"] = "duplicate"
        return {
            "accepted": result.accepted,
            "duplicates": result.duplicates,
            "rejected": rejected,
            "results": results,
        }


def _query_routes(app: FastAPI, context: _Context) -> None:
    @app.get("/api/v1/lineage", tags=["query"], responses=_READ_ERRORS)
    def lineage(request: Request, nodeId: str, depth: int = 20) -> Response:  # noqa: N803 - Marquez's name
        """The job/dataset graph around a node, in the shape Marquez answers (``depth`` 0 to 100)."""
        _check_depth(depth)
        return _json(context.read(request, lambda reader: marquez_lineage(reader, nodeId, depth)))

    @app.get("/api/v1/why/{node_id:path}", tags=["query"], responses=_READ_ERRORS)
    def why_chain(request: Request, node_id: str, as_of: AsOf = None) -> Response:
        """Why an action happened and what it did: the structured chain back to its sources."""
        return _json(context.read(request, lambda r: r.why(node_id, _sequence_at(r, as_of)).to_dict()))

    @app.get("/api/v1/why-tree/{node_id:path}", tags=["query"], responses=_READ_ERRORS)
    def why_tree(request: Request, node_id: str, as_of: AsOf = None) -> Response:
        """The why-chain as the tree of lines ``opslineage why`` draws (spans with a style each)."""
        return _json(context.read(request, lambda r: why_view(r.why(node_id, _sequence_at(r, as_of)))))

    @app.get("/api/v1/nodes", tags=["query"], responses=_READ_ERRORS)
    def nodes(
        request: Request,
        kind: str | None = None,
        q: str | None = None,
        namespace: str | None = None,
        facet: str | None = None,
        limit: int = 50,
        offset: int = 0,
        as_of: AsOf = None,
    ) -> Response:
        """Search nodes by kind, text (in the id, name or namespace), exact namespace and facet
        value (in the payloads of the newest events and their artifacts), newest first, a page at
        a time, with the total that match."""
        for field_name, value in (("q", q), ("namespace", namespace), ("facet", facet)):
            if value is not None and len(value) > MAX_SEARCH:
                raise ApiError(
                    400, "invalid_request", f"{field_name} is over {MAX_SEARCH} characters", field_name
                )
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
                    kind,
                    text=q,
                    namespace=namespace,
                    facet=facet,
                    limit=limit,
                    offset=offset,
                    as_of=_sequence_at(r, as_of),
                ).to_dict(),
            )
        )

    @app.get("/api/v1/nodes/{node_id:path}", tags=["query"], responses=_READ_ERRORS)
    def node(request: Request, node_id: str, as_of: AsOf = None) -> Response:
        """One node: its columns, its content or facets, and its edges."""
        return _json(context.read(request, lambda r: r.detail(node_id, _sequence_at(r, as_of))))

    @app.get("/api/v1/upstream/{node_id:path}", tags=["query"], responses=_READ_ERRORS)
    def upstream_of(request: Request, node_id: str, depth: int = 10, as_of: AsOf = None) -> Response:
        """Everything a node came from (``depth`` 0 to 100)."""
        _check_depth(depth)
        return _json(
            context.read(request, lambda r: r.upstream(node_id, depth, _sequence_at(r, as_of)).to_dict())
        )

    @app.get("/api/v1/downstream/{node_id:path}", tags=["query"], responses=_READ_ERRORS)
    def downstream_of(request: Request, node_id: str, depth: int = 10, as_of: AsOf = None) -> Response:
        """Everything that came from a node (``depth`` 0 to 100)."""
        _check_depth(depth)
        return _json(
            context.read(request, lambda r: r.downstream(node_id, depth, _sequence_at(r, as_of)).to_dict())
        )


def _check_depth(depth: int) -> None:
    if not 0 <= depth <= MAX_DEPTH:
        raise ApiError(400, "invalid_request", f"depth must be 0 to {MAX_DEPTH}, got {depth}", "depth")


def _sequence_at(reader: Reader, as_of: str | None) -> int | None:
    if as_of is None:
        return None
    when = _rfc3339(as_of, "as_of")
    try:
        return reader.sequence_at(when)
    except InvalidEvent as error:
        raise ApiError(400, "invalid_request", error.reason, "as_of") from None


def _log_routes(app: FastAPI, context: _Context) -> None:
    @app.get("/api/v1/log/checkpoint", tags=["log"], responses=_errors(404, 503))
    def log_checkpoint(request: Request) -> dict[str, Any]:
        """The latest signed checkpoint, as ``opslineage checkpoint --json`` prints it."""
        found = context.read(request, lambda r: r.signed_checkpoint())
        if found is None:
            raise ApiError(404, "not_found", "no checkpoint has been signed yet (opslineage checkpoint)")
        return {**found.to_dict(), "note": found.note}

    @app.get("/api/v1/log/proof/inclusion", tags=["log"], responses=_errors(400, 503))
    def proof_inclusion(request: Request, seq: int, tree_size: int | None = None) -> dict[str, Any]:
        """The RFC 9162 inclusion proof of an event."""
        try:
            return context.read(request, lambda r: r.inclusion_proof(seq, tree_size).to_dict())
        except ValueError as error:
            raise ApiError(400, "invalid_request", str(error), "seq") from None

    @app.get("/api/v1/log/proof/consistency", tags=["log"], responses=_errors(400, 503))
    def proof_consistency(request: Request, first: int, second: int) -> dict[str, Any]:
        """The RFC 9162 consistency proof between two tree sizes."""
        try:
            return context.read(request, lambda r: r.consistency_proof(first, second).to_dict())
        except ValueError as error:
            raise ApiError(400, "invalid_request", str(error), "first") from None

    @app.get("/api/v1/bundle/{action_id:path}", tags=["log"], responses=_errors(400, 404, 409, 503))
    def bundle(request: Request, action_id: str) -> Response:
        """The audit bundle of an action (see ``opslineage export --format bundle``), proved against
        the newest checkpoint; 409 when none covers the chain yet (run ``opslineage checkpoint``)."""
        try:
            document = context.read(request, lambda r: make_bundle(r, action_id))
        except BundleError as error:
            raise ApiError(409, "no_checkpoint", str(error)) from None
        return Response(msgspec.json.encode(document), media_type="application/json")


def _access_log_routes(app: FastAPI, context: _Context) -> None:
    @app.get("/api/v1/access-log", tags=["log"], responses=_errors(400, 503))
    def access_log(
        request: Request,
        actor: str | None = None,
        node: str | None = None,
        since: Since = None,
        outcome: str | None = None,
        limit: int = 100,
        after: int = 0,
    ) -> Response:
        """Access events (who read or was refused what, when, from where), oldest first, after
        sequence ``after``, by ``actor``, naming ``node``, of ``outcome``, as ``opslineage
        access-log --json`` prints them; reading it is itself recorded."""
        when = _rfc3339(since, "since") if since is not None else None
        try:
            found = context.read(
                request,
                lambda r: r.access_log(
                    actor=actor, node=node, since=when, outcome=outcome, limit=limit, after=after
                ),
            )
        except InvalidEvent as error:
            raise ApiError(400, "invalid_request", error.reason) from None
        return _json([record.to_dict() for record in found])

    @app.get("/api/v1/access-log/checkpoint", tags=["log"], responses=_errors(404, 503))
    def access_log_checkpoint(request: Request) -> dict[str, Any]:
        """The access log's latest signed checkpoint (origin ``<origin>/access``)."""
        found = context.read(request, lambda r: r.access_checkpoint())
        if found is None:
            raise ApiError(404, "not_found", "no access-log checkpoint has been signed yet")
        return {**found.to_dict(), "note": found.note}

    @app.get("/api/v1/access-log/proof/inclusion", tags=["log"], responses=_errors(400, 503))
    def access_log_inclusion(request: Request, seq: int, tree_size: int | None = None) -> dict[str, Any]:
        """The RFC 9162 inclusion proof of an access event in the access log."""
        try:
            return context.read(request, lambda r: r.access_inclusion_proof(seq, tree_size).to_dict())
        except ValueError as error:
            raise ApiError(400, "invalid_request", str(error), "seq") from None

    @app.get("/api/v1/access-log/proof/consistency", tags=["log"], responses=_errors(400, 503))
    def access_log_consistency(request: Request, first: int, second: int) -> dict[str, Any]:
        """The RFC 9162 consistency proof between two sizes of the access log."""
        try:
            return context.read(request, lambda r: r.access_consistency_proof(first, second).to_dict())
        except ValueError as error:
            raise ApiError(400, "invalid_request", str(error), "first") from None


def _quality_routes(app: FastAPI, context: _Context) -> None:
    @app.get("/api/v1/quality", tags=["query"], responses=_errors(400, 503))
    def quality_figures(
        request: Request,
        namespace: str | None = None,
        since: Since = None,
        by: Period | None = None,
    ) -> Response:
        """Coverage of the lineage in total, per namespace and (with ``by``) per day or ISO week,
        and each verification layer's share of passing checks when the verifier gives them, as
        ``opslineage quality --json`` prints them (computed anew at most every ``quality_cache`` s)."""
        when = _rfc3339(since, "since") if since is not None else None
        return _json(
            context.read(
                request,
                lambda r: context.metrics.quality(r, namespace=namespace, since=when, by=by).to_dict(),
            )
        )

    @app.get("/metrics", tags=["operations"], response_class=PlainTextResponse, responses=_errors(503))
    def metrics(request: Request) -> Response:
        """Prometheus metrics: ingest counters, request latency per route, the coverage ratios per
        namespace and the verification layers' findings (see docs/quality.md)."""
        body = context.read(request, context.metrics.exposition)
        return Response(body, media_type=PROMETHEUS_TEXT)


def _batch_items(data: bytes) -> list[Any]:
    """The events of a batch body, each as its own bytes: the parser checks each one strictly."""
    text = data.lstrip()
    if not text:
        raise ApiError(400, "invalid_request", "the body is empty: send a JSON array or JSON lines of events")
    if text.startswith(b"["):
        try:
            items = msgspec.json.decode(data, type=list[msgspec.Raw])
        except msgspec.DecodeError as error:
            raise ApiError(400, "invalid_request", f"malformed JSON array: {error}") from None
        except RecursionError:
            raise ApiError(400, "invalid_request", "an item of the array is nested too deep") from None
        return [bytes(item) for item in items]
    return [line for line in data.split(b"\n") if line.strip()]
