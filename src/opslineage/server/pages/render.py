"""Templates and responses of the web pages: the Jinja2 environment (autoescaped), the filters
every page uses, the security headers of every page, and the HTML answers to errors.

Every page is a full HTML document readable with JavaScript off. Its Content-Security-Policy lets
it load scripts, styles, images and data only from the server's own origin, and no inline script
or style: what a page draws, the server draws (SVG included), and scripts only enhance it.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from opslineage._version import __version__
from opslineage.governance import Permission

__all__ = ["HEADERS", "STATIC", "is_page", "node_path", "node_url", "page_error", "remediation_url", "render"]

HERE = Path(__file__).parent
STATIC = HERE / "static"
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
"""The headers of every page: only our origin, no framing, no referrer, nothing cached."""

_API_PATHS = ("/api/", "/healthz", "/readyz", "/metrics", "/openapi.json")
_NAV = (  # (path, label, the permission its page needs): a section is shown to those who hold it
    ("/catalog", "Catalog", Permission.READ_LINEAGE),
    ("/timeline", "Timeline", Permission.READ_LINEAGE),
    ("/effectiveness", "Effectiveness", Permission.READ_ANALYTICS),
    ("/lineage", "Lineage", Permission.READ_LINEAGE),
    ("/audit", "Audit", Permission.READ_LINEAGE),
)


def node_path(node_id: str) -> str:
    """A node id as one path segment of a URL (``/nodes/…``, ``/api/v1/bundle/…``)."""
    return quote(node_id, safe=":@")


def node_url(node_id: str) -> str:
    """The path of a node's page."""
    return "/nodes/" + node_path(node_id)


def remediation_url(node_id: str) -> str:
    """The path of an action's (or a decision's) remediation page."""
    return "/remediations/" + node_path(node_id)


def short(digest: str | None) -> str:
    """A digest shortened for a label: its algorithm and first 12 hex digits."""
    if not digest:
        return ""
    algorithm, _, value = digest.partition(":")
    return f"{algorithm}:{value[:12]}" if value else digest[:12]


def when(value: str | datetime | None) -> Markup:
    """A ``<time>`` element showing ``value`` in UTC (the page's script adds the local time on hover)."""
    if value is None or value == "":
        return Markup("")
    moment = value if isinstance(value, datetime) else _parsed(value)
    if moment is None:
        return Markup("<time>{}</time>").format(value)
    utc = moment.strftime("%Y-%m-%d %H:%M:%S UTC")
    return Markup('<time datetime="{}">{}</time>').format(moment.isoformat(), utc)


def pretty(value: Any) -> str:
    """``value`` as indented JSON, for a ``<pre>``."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def _parsed(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


_ENV = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(default=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_ENV.filters.update(short=short, when=when, pretty=pretty, node_url=node_url)
_ENV.globals.update(nav=_NAV, version=__version__, urlencode=urlencode)


def is_page(request: Request) -> bool:
    """Whether ``request`` is for a page (answered in HTML) rather than the API (JSON)."""
    return not request.url.path.startswith(_API_PATHS)


def render(request: Request, template: str, status: int = 200, **values: Any) -> HTMLResponse:
    """The page ``template`` filled with ``values`` and what every page shows: who is signed in,
    the CSRF token of their forms and which section is open."""
    session = getattr(request.state, "session", None)
    principal = getattr(request.state, "principal", None)
    html = _ENV.get_template(template).render(
        request_path=request.url.path,
        principal=principal,
        signed_in=session is not None,
        csrf=session.csrf if session is not None else "",
        **values,
    )
    return HTMLResponse(html, status_code=status, headers=HEADERS)


def page_error(request: Request, status: int, error: str, detail: str) -> Response:
    """The HTML answer to a page's error: a sign-in redirect for a 401, else an error page."""
    if status == 401:
        target = "/sign-in?" + urlencode({"next": request.url.path, "reason": detail})
        return RedirectResponse(target, status_code=303, headers=HEADERS)
    title = {403: "Not allowed", 404: "Not found", 503: "Unavailable"}.get(status, "Cannot show this")
    return render(request, "error.html", status=status, title=title, error=error, detail=detail)
