"""What every route module of the HTTP API answers with: JSON bodies (encoded by msgspec), the
error body and :class:`ApiError` that raises it, the OpenAPI declaration of a route's error
answers, and RFC 3339 query parameters, parsed or refused with a 400 naming them; and
:class:`Reads`, what a route module needs of the server.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Protocol, TypeVar

import msgspec
from fastapi import Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from opslineage.query import Reader

__all__ = [
    "ApiError",
    "ErrorBody",
    "Reads",
    "Since",
    "Until",
    "client_of",
    "error_responses",
    "json_response",
    "rfc3339",
]

_T = TypeVar("_T")


class Reads(Protocol):
    """What a route module needs of the server: a read done for the caller of a request (its
    Reader, one access event, the time budget)."""

    def read(self, request: Request, work: Callable[[Reader], _T]) -> _T: ...


Since = Annotated[
    str | None,
    Query(
        description="only items recorded at or after this time (RFC 3339, with its offset)",
        json_schema_extra={"format": "date-time"},
    ),
]
Until = Annotated[
    str | None,
    Query(
        description="only items at or before this time (RFC 3339, with its offset)",
        json_schema_extra={"format": "date-time"},
    ),
]
RFC3339_PATTERN = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


class ErrorBody(BaseModel):
    """What every error answers: a code, what was wrong and, when one is at fault, the field."""

    error: str
    detail: str
    field: str | None = None


_ERROR_MEANINGS = {
    400: "Bad input: a malformed request, event, parameter or body encoding",
    401: "The request bears no valid token (none, an unknown, a revoked or an expired one) and the "
    "server has tokens (or, for ingest, a shared secret)",
    403: "The token's role lacks the route's permission, or the node or events are outside its namespaces",
    404: "No such node, checkpoint or path",
    405: "The path does not take this method",
    409: "The store refused the write, or no checkpoint covers the answer yet",
    413: "The body, as received or decompressed, is over the limit",
    415: "A Content-Type other than JSON, or an unsupported Content-Encoding",
    503: "The store is unreachable, or the query ran past the server's time budget and was cancelled",
}


def error_responses(*statuses: int, guarded: bool = True) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI declaration of the error answers a route can give (and 405, which any can; and,
    unless the route is open to anyone, 401 and 403)."""
    refusals = (401, 403) if guarded else ()
    return {
        status: {"model": ErrorBody, "description": _ERROR_MEANINGS[status]}
        for status in sorted({*statuses, *refusals, 405})
    }


class ApiError(Exception):
    """An error answered as JSON with a status code."""

    def __init__(self, status: int, error: str, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail, self.field = status, error, detail, field


def rfc3339(text: str, field: str) -> datetime:
    """A query parameter's RFC 3339 date-time, with its offset.

    Raises:
        ApiError: it is not one (400, naming ``field``).
    """
    try:
        if not RFC3339_PATTERN.fullmatch(text):
            raise ValueError(text)
        return datetime.fromisoformat(text.upper())
    except ValueError:
        raise ApiError(
            400,
            "invalid_request",
            f"{field} {text!r} is not an RFC 3339 date-time with its offset (e.g. 2026-01-05T14:30:00Z)",
            field,
        ) from None


def client_of(request: Request) -> str | None:
    """Where a request came from, as its access event records it (``host:port``)."""
    return f"{request.client.host}:{request.client.port}" if request.client else None


def json_response(value: Any) -> Response:
    """A JSON response encoded by msgspec (FastAPI's own encoder is slow on large answers)."""
    return Response(msgspec.json.encode(value), media_type="application/json")
