"""The routes of the web pages: sign-in and sign-out, the catalog (a search by text, kind,
namespace and facet value) and, from their own modules, every other page. Each page reads through
the server's :meth:`read` (the caller's Reader, one access event per page, the time budget), so a
page shows exactly what its role's API answers show, redactions included."""

from __future__ import annotations

from typing import Protocol, TypeVar
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from opslineage.governance import AccessDenied, AccessTrail, Principal
from opslineage.query import FACET_WINDOW, LS_KINDS, MAX_OFFSET, MAX_SEARCH, Reader
from opslineage.server.answers import Reads, client_of
from opslineage.server.auth import Authenticator
from opslineage.server.pages.audit import add_audit_pages
from opslineage.server.pages.effectiveness import add_effectiveness_page
from opslineage.server.pages.lineage import add_lineage_pages
from opslineage.server.pages.nodes import add_node_pages
from opslineage.server.pages.remediation import add_remediation_pages
from opslineage.server.pages.render import HEADERS, STATIC, render
from opslineage.server.pages.sessions import CSRF_COOKIE, SESSION_COOKIE, Sessions, same
from opslineage.server.pages.timeline import add_timeline_page
from opslineage.store import Store

__all__ = ["FormError", "PageContext", "add_pages", "form_of"]

_T = TypeVar("_T")
_FORM_LIMIT = 16 << 10  # bytes of a form body: a token and a few fields
_PAGE_SIZE = 50


class _Settings(Protocol):
    @property
    def store(self) -> str: ...


class PageContext(Reads, Protocol):
    """What the pages need of the server: besides its reads, its settings and store, authenticator,
    trail and sessions."""

    auth: Authenticator
    trail: AccessTrail | None
    sessions: Sessions

    @property
    def settings(self) -> _Settings: ...

    def store(self) -> Store: ...


class FormError(Exception):
    """A form that cannot be taken: not a form, too large, or its CSRF token is wrong."""


async def form_of(request: Request, csrf: str | None) -> dict[str, str]:
    """The fields of a posted form (the first value of each), once its CSRF token is ``csrf``'s.

    Raises:
        FormError: not ``application/x-www-form-urlencoded``, over 16 KiB, or the ``csrf`` field
            is missing or not ``csrf`` (None: no session, so no form can be right).
    """
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != "application/x-www-form-urlencoded":
        raise FormError("this form is sent as application/x-www-form-urlencoded")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _FORM_LIMIT:
            raise FormError(f"the form is over {_FORM_LIMIT} bytes")
    try:
        fields = {key: values[0] for key, values in parse_qs(body.decode(), keep_blank_values=True).items()}
    except UnicodeDecodeError:
        raise FormError("the form is not UTF-8") from None
    if csrf is None or not same(fields.get("csrf"), csrf):
        raise FormError("the form's CSRF token is missing or stale: reload the page and send it again")
    return fields


def _local(target: str | None) -> str:
    """``target`` if it is a path of this server, else the catalog (no open redirect)."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/catalog"


def add_pages(app: FastAPI, context: PageContext) -> None:
    """Add the pages, the sign-in and sign-out routes and the static assets to ``app``."""
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def home() -> Response:
        return RedirectResponse("/catalog", status_code=303, headers=HEADERS)

    @app.get("/sign-in", include_in_schema=False)
    def sign_in_form(request: Request, next: str | None = None, reason: str | None = None) -> Response:
        return _sign_in(request, context, next, reason)

    @app.post("/sign-in", include_in_schema=False)
    async def sign_in(request: Request) -> Response:
        try:
            fields = await form_of(request, request.cookies.get(CSRF_COOKIE))
        except FormError as error:
            return _sign_in(request, context, None, str(error), status=400)
        secret, target = fields.get("token", "").strip(), _local(fields.get("next"))
        client = client_of(request)
        try:
            principal = context.auth.principal(f"Bearer {secret}")
        except AccessDenied as denied:
            Reader(context.store(), Principal.anonymous(), context.trail, client).refuse(
                "sign-in", denied.reason
            )
            return _sign_in(request, context, target, denied.reason, status=401)
        with Reader(context.store(), principal, context.trail, client).operation("sign-in"):
            sid, _ = context.sessions.open(secret)
        answer = RedirectResponse(target, status_code=303, headers=HEADERS)
        secure = request.url.scheme == "https"
        answer.set_cookie(SESSION_COOKIE, sid, httponly=True, samesite="strict", secure=secure, path="/")
        answer.delete_cookie(CSRF_COOKIE, path="/sign-in")
        return answer

    @app.post("/sign-out", include_in_schema=False)
    async def sign_out(request: Request) -> Response:
        session = context.sessions.get(request.cookies.get(SESSION_COOKIE))
        try:
            await form_of(request, session.csrf if session is not None else None)
        except FormError as error:
            return render(
                request,
                "error.html",
                status=400,
                title="Cannot sign out",
                error="bad_form",
                detail=str(error),
            )
        context.sessions.close(request.cookies.get(SESSION_COOKIE))
        answer = RedirectResponse("/sign-in", status_code=303, headers=HEADERS)
        answer.delete_cookie(SESSION_COOKIE, path="/")
        return answer

    @app.get("/catalog", include_in_schema=False)
    def catalog(
        request: Request,
        q: str | None = None,
        kind: str | None = None,
        namespace: str | None = None,
        facet: str | None = None,
        offset: int = 0,
    ) -> Response:
        search = {"q": q or "", "kind": kind if kind in LS_KINDS else "", "namespace": namespace or ""}
        search["facet"] = facet or ""
        too_long = [name for name, value in search.items() if len(value) > MAX_SEARCH]
        if too_long:
            detail = f"{too_long[0]} is over {MAX_SEARCH} characters"
            return render(
                request,
                "error.html",
                status=400,
                title="Cannot search",
                error="invalid_request",
                detail=detail,
            )
        offset = min(max(0, offset), MAX_OFFSET)
        found = context.read(
            request,
            lambda r: r.page(
                search["kind"] or None,
                text=search["q"] or None,
                namespace=search["namespace"] or None,
                facet=search["facet"] or None,
                limit=_PAGE_SIZE,
                offset=offset,
            ),
        )
        return render(
            request, "catalog.html", search=search, kinds=LS_KINDS, page=found, facet_window=FACET_WINDOW
        )

    add_node_pages(app, context)
    add_remediation_pages(app, context)
    add_timeline_page(app, context)
    add_effectiveness_page(app, context)
    add_lineage_pages(app, context)
    add_audit_pages(app, context)


def _sign_in(
    request: Request, context: PageContext, target: str | None, reason: str | None, status: int = 200
) -> Response:
    """The sign-in form, with a fresh CSRF cookie of its own (the form has no session yet)."""
    csrf = Sessions.new_csrf()
    answer = render(
        request,
        "sign_in.html",
        status=status,
        next=_local(target),
        reason=reason,
        form_csrf=csrf,
        has_tokens=context.auth.has_tokens(),
    )
    secure = request.url.scheme == "https"
    answer.set_cookie(CSRF_COOKIE, csrf, httponly=True, samesite="strict", secure=secure, path="/sign-in")
    return answer
