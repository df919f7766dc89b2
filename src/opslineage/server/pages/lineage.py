"""The data-lineage explorer, ``GET /lineage``: the job/dataset graph of any OpenLineage producer
around one node, as ``GET /api/v1/lineage`` answers it (:func:`~opslineage.server.marquez.marquez_lineage`),
drawn in layers by signed distance from that node (upstream to the left, downstream to the
right), with the column lineage its datasets' events carried.

Without ``node`` the page offers a search and the most recent jobs and datasets to start from.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import Response
from markupsafe import Markup

from opslineage.model import InvalidEvent
from opslineage.query import MAX_DEPTH, NotFound, Reader
from opslineage.server.marquez import MarquezGraph, MarquezNode, marquez_lineage
from opslineage.server.pages.render import node_url, render
from opslineage.server.pages.svg import Box, layered_svg

if TYPE_CHECKING:  # routes adds these pages
    from opslineage.server.pages.routes import PageContext

__all__ = [
    "DEFAULT_DEPTH",
    "ColumnSource",
    "Neighbourhood",
    "add_lineage_pages",
    "centred",
    "layered",
    "neighbourhood",
]

DEFAULT_DEPTH = 2
_COLUMN_DATASETS = 30  # datasets nearest the focus whose column lineage is shown
_RECENT = 15  # jobs and datasets offered to start from
_FOUND = 30  # search results


@dataclass(frozen=True)
class ColumnSource:
    """One row of a dataset's column lineage: ``column`` comes from ``source`` (dataset.field)."""

    column: str
    source: str
    transformation: str


@dataclass
class Neighbourhood:
    """What the explorer shows of a node: its drawing, its nodes by layer and column lineage."""

    focus: str
    depth: int
    svg: Markup
    layers: dict[str, int]
    nodes: list[MarquezNode]
    columns: dict[str, list[ColumnSource]] = field(default_factory=dict)


def layered(graph: MarquezGraph, focus: str) -> dict[str, int]:
    """Each node's signed distance from ``focus``: one breadth-first walk of the graph, an edge
    into a node one layer to its left, an edge out of it one layer to its right."""
    nodes = {node.id: node for node in graph.graph}
    layer = {focus: 0}
    queue = deque([focus])
    while queue:
        current = queue.popleft()
        entry = nodes[current]
        for step, ends in (
            (-1, (e.origin for e in entry.in_edges)),
            (1, (e.destination for e in entry.out_edges)),
        ):
            for end in ends:
                if end not in layer and end in nodes:
                    layer[end] = layer[current] + step
                    queue.append(end)
    return layer


def neighbourhood(reader: Reader, node_id: str, depth: int) -> Neighbourhood:
    """The graph ``depth`` hops around ``node_id``, laid out and drawn, with column lineage.

    Raises:
        InvalidEvent: ``depth`` outside 1 to ``MAX_DEPTH``, or a malformed id. NotFound: no such node.
        AccessDenied: the node is outside the reader's namespaces.
    """
    if not 1 <= depth <= MAX_DEPTH:
        raise InvalidEvent(f"depth must be 1 to {MAX_DEPTH}, got {depth}")
    reader.resolve_covered(node_id, "lineage")  # as GET /api/v1/lineage refuses it
    graph = marquez_lineage(reader, node_id, depth)
    focus = graph.graph[0].id  # the walk starts from the node's job or dataset
    layers = layered(graph, focus)
    nodes = sorted((n for n in graph.graph if n.id in layers), key=lambda n: (layers[n.id], n.id))
    columns_of = [n.id for n in sorted(nodes, key=lambda n: abs(layers[n.id])) if n.type == "DATASET"]
    return Neighbourhood(
        focus,
        depth,
        _drawn(nodes, layers, focus, depth),
        layers,
        nodes,
        _column_lineage(reader, columns_of[:_COLUMN_DATASETS]),
    )


def _drawn(nodes: list[MarquezNode], layers: dict[str, int], focus: str, depth: int) -> Markup:
    columns: dict[int, list[Box]] = {}
    for node in nodes:
        kind = "job" if node.type == "JOB" else "dataset"
        href = node_url(node.id) if node.id == focus else centred(node.id, depth)
        tone = f"{kind} focus" if node.id == focus else kind
        box = Box(node.id, kind, (node.data.name or node.id, node.data.namespace or ""), href, tone)
        columns.setdefault(layers[node.id], []).append(box)
    edges = [(e.origin, e.destination) for node in nodes for e in node.out_edges]
    ordered = [columns[key] for key in sorted(columns)]
    return layered_svg(ordered, edges, label=f"Lineage of {focus}, {depth} hops each way")


def centred(node_id: str, depth: int) -> str:
    """The explorer's address centred on ``node_id`` at ``depth``."""
    return "/lineage?" + urlencode({"node": node_id, "depth": depth})


def _column_lineage(reader: Reader, datasets: list[str]) -> dict[str, list[ColumnSource]]:
    """The ``columnLineage`` facet of each of ``datasets`` that has one, as rows."""
    found: dict[str, list[ColumnSource]] = {}
    for dataset in datasets:
        try:
            facet = reader.detail(dataset).facets.get("columnLineage")
        except (NotFound, InvalidEvent):  # a folded artifact, not a dataset node of its own
            continue
        rows = _rows(facet)
        if rows:
            found[dataset] = rows
    return found


def _rows(facet: Any) -> list[ColumnSource]:
    fields = facet.get("fields") if isinstance(facet, dict) else None
    if not isinstance(fields, dict):
        return []
    rows = []
    for column, spec in sorted(fields.items()):
        if not isinstance(spec, dict):
            continue
        overall = str(spec.get("transformationType") or "")  # the facet's 1-0 and 1-1 form
        for source in spec.get("inputFields") or ():
            if not isinstance(source, dict):
                continue
            steps = [
                "/".join(str(t[k]) for k in ("type", "subtype") if t.get(k))
                for t in source.get("transformations") or ()
                if isinstance(t, dict)
            ]
            name = f"{source.get('namespace', '')}:{source.get('name', '')}.{source.get('field', '')}"
            rows.append(ColumnSource(column, name, ", ".join(s for s in steps if s) or overall))
    return rows


def add_lineage_pages(app: FastAPI, context: PageContext) -> None:
    """Add ``GET /lineage`` to ``app``."""

    @app.get("/lineage", include_in_schema=False)
    def lineage(
        request: Request, node: str | None = None, depth: int = DEFAULT_DEPTH, q: str | None = None
    ) -> Response:
        if node:
            shown = context.read(request, lambda reader: neighbourhood(reader, node, depth))
            return render(request, "lineage.html", view=shown, depth=depth, q="", max_depth=MAX_DEPTH)
        found, recent = context.read(request, lambda reader: _starts(reader, q))
        return render(
            request,
            "lineage.html",
            view=None,
            depth=depth,
            q=q or "",
            found=found,
            recent=recent,
            max_depth=MAX_DEPTH,
        )


def _starts(reader: Reader, text: str | None) -> tuple[list[Any], dict[str, list[Any]]]:
    """Nodes matching ``text`` (jobs and datasets), and the most recent of each."""
    found = []
    if text:
        found = [
            n for n in reader.page(None, text=text, limit=_FOUND * 4).nodes if n.kind in ("job", "dataset")
        ]
    recent = {kind: reader.page(kind, limit=_RECENT).nodes for kind in ("job", "dataset")}
    return found[:_FOUND], recent
