"""The node page, ``/nodes/{id}``: one node as ``GET /api/v1/nodes/{id}`` answers it (its columns,
sensitivity label, owners, content, facets and edges, redacted as the Reader redacts them), and
for a model or a policy every version of its name side by side, with a line diff of a policy's
two versions.

The whole page is one read (one access event): :func:`node_view` gathers it through the caller's
:class:`~opslineage.query.Reader`.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import msgspec
from fastapi import FastAPI, Request
from fastapi.responses import Response

from opslineage.governance import level_of
from opslineage.query import Edge, NodeDetail, Reader
from opslineage.server.pages.render import pretty, remediation_url, render

if TYPE_CHECKING:
    from opslineage.server.pages.routes import PageContext

__all__ = ["DiffLine", "Neighbour", "NodeView", "Version", "add_node_pages", "node_view"]

_EDGES_SHOWN = 100  # edges listed per direction; the page says how many more there are
_VERSIONS = 100  # versions of one name listed
_VERSIONED = ("model", "policy")


@dataclass(frozen=True)
class Neighbour:
    """An edge as the page lists it: the node at its other end, and how the two are linked."""

    id: str
    kind: str
    role: str | None
    label: str


@dataclass(frozen=True)
class Version:
    """One version of a model or policy: its node, when it was recorded, its key settings and
    its content (None when redacted), which a policy's diff is drawn from."""

    id: str
    version: str | None
    digest: str | None
    recorded: str | None
    settings: dict[str, Any]
    redacted: str | None
    content: Any = field(default=None, repr=False)


@dataclass(frozen=True)
class DiffLine:
    """One line of a diff: ``added``, ``removed``, ``hunk`` (a position) or ``same``."""

    change: str
    text: str


@dataclass
class NodeView:
    """What the node page shows."""

    detail: NodeDetail
    level: str
    redacted: str | None
    up: list[Neighbour]
    down: list[Neighbour]
    more_up: int
    more_down: int
    versions: list[Version] = field(default_factory=list)
    compared: Version | None = None
    diff: list[DiffLine] = field(default_factory=list)
    compare_error: str | None = None

    @property
    def content(self) -> Any:
        """The node's content, None when it has none."""
        content = self.detail.content
        return None if content is msgspec.UNSET else content

    @property
    def owners(self) -> Any:
        """Who owns and stewards the node, None when no entry names it."""
        owners = self.detail.owners
        return None if owners is msgspec.UNSET else owners


def add_node_pages(app: FastAPI, context: PageContext) -> None:
    """Add the node page to ``app``."""

    @app.get("/nodes/{node_id:path}", include_in_schema=False)
    def node_page(request: Request, node_id: str, compare: str | None = None) -> Response:
        view = context.read(request, lambda reader: node_view(reader, node_id, compare))
        status = 400 if view.compare_error else 200
        return render(request, "node.html", status=status, view=view, links=_links(view.detail))


def node_view(reader: Reader, node_id: str, compare: str | None = None) -> NodeView:
    """The node page of ``node_id`` as ``reader`` sees it; for a policy, the diff against its
    version ``compare`` (None: the version before it).

    Raises:
        InvalidEvent: a malformed id. NotFound: no such node.
    """
    detail = reader.detail(node_id)
    redacted = reader.withheld.get(detail.id)
    level = level_of(reader.label_rules(), detail.namespace, detail.type, detail.name)
    outgoing, incoming = detail.edges.out, detail.edges.in_
    up = _neighbours(reader, outgoing[:_EDGES_SHOWN], far="dst")
    down = _neighbours(reader, incoming[:_EDGES_SHOWN], far="src")
    view = NodeView(
        detail,
        level,
        redacted,
        up,
        down,
        max(0, len(outgoing) - _EDGES_SHOWN),
        max(0, len(incoming) - _EDGES_SHOWN),
    )
    if detail.kind in _VERSIONED and detail.name is not None:
        view.versions = _versions(reader, detail)
        if detail.kind == "policy":
            _compare(view, compare)
    return view


def _neighbours(reader: Reader, edges: list[Edge], far: str) -> list[Neighbour]:
    """The nodes at the ``far`` end of ``edges``, labelled by their name or type."""
    ids = [getattr(edge, far) for edge in edges]
    records = reader.records(ids)
    found = []
    for edge, other in zip(edges, ids, strict=True):
        record = records.get(other)
        label = other
        if record is not None and record.name:
            label = f"{record.type} {record.name}" + (f"@{record.version}" if record.version else "")
        elif record is not None:
            label = f"{record.type} {other}"
        found.append(Neighbour(other, edge.kind, edge.role, label))
    return found


def _versions(reader: Reader, detail: NodeDetail) -> list[Version]:
    """Every version of ``detail``'s name, oldest first, with its key settings."""
    records = reader.search(kind=detail.kind, namespace=detail.namespace, name=detail.name, limit=_VERSIONS)
    records.sort(key=lambda record: record.seq)
    contents = reader.contents(record.id for record in records)
    versions = []
    for record in records:
        content = contents.get(record.id)
        redacted = reader.withheld.get(record.id)
        events = reader.event_page(after=record.seq - 1, limit=1)
        recorded = events[0].event_time if events else None
        settings = {} if redacted else _settings(detail.kind, content)
        kept = None if redacted else content
        versions.append(Version(record.id, record.version, record.digest, recorded, settings, redacted, kept))
    return versions


def _settings(kind: str, content: Any) -> dict[str, Any]:
    """The settings that tell one version from another: a policy's rule, thresholds and action,
    a model's parameters and framework."""
    if not isinstance(content, dict):
        return {}
    keys = ("rule", "thresholds", "action", "params") if kind == "policy" else ("framework", "parameters")
    return {key: content[key] for key in keys if key in content}


def _compare(view: NodeView, compare: str | None) -> None:
    """Set ``view``'s diff: from the policy's version ``compare`` (default: the one before) to its own."""
    versions = {version.version: version for version in view.versions}
    this = next((v for v in view.versions if v.id == view.detail.id), None)
    if this is None:
        return
    if compare is not None:
        other = versions.get(compare)
        if other is None:
            known = ", ".join(v for v in versions if v) or "none"
            view.compare_error = f"{view.detail.name} has no version {compare!r} (its versions: {known})"
            return
    else:
        index = view.versions.index(this)
        if index == 0:
            return
        other = view.versions[index - 1]
    view.compared = other
    if this.redacted or other.redacted:
        return
    before = pretty(other.content).splitlines()
    after = pretty(this.content).splitlines()
    view.diff = _diff(before, after, other.id, this.id)


def _diff(before: list[str], after: list[str], source: str, target: str) -> list[DiffLine]:
    """A unified line diff of ``before`` and ``after`` as typed lines (the file headers left out)."""
    lines = []
    for line in difflib.unified_diff(before, after, source, target, lineterm="", n=3):
        if line.startswith(("---", "+++")):
            continue
        if line.startswith("@@"):
            lines.append(DiffLine("hunk", line))
        elif line.startswith("+"):
            lines.append(DiffLine("added", line))
        elif line.startswith("-"):
            lines.append(DiffLine("removed", line))
        else:
            lines.append(DiffLine("same", line))
    return lines


def _links(detail: NodeDetail) -> list[tuple[str, str]]:
    """The other pages about the node: an action's remediation, a job's or dataset's lineage."""
    links = []
    if detail.kind == "run" and detail.type == "action":
        links.append((remediation_url(detail.id), "Remediation"))
    if detail.kind in ("job", "dataset"):
        links.append(("/lineage?" + urlencode({"node": detail.id}), "Lineage"))
    return links
