"""Graphs drawn as SVG on the server: boxes in layers, left to right, joined by curved edges.

The remediation page draws a why-chain with one layer per kind (sources → snapshots → feature set
→ prediction → decision → action → effect); the lineage explorer draws a job/dataset neighbourhood
with one layer per distance. Within a layer, boxes are ordered by where their neighbours in the
layer before sit (one barycentre pass), which keeps most edges from crossing. Each box is a link
to its node's page, focusable by keyboard, its full text in its ``<title>``. Colours come from the
stylesheet (classes), so the page's Content-Security-Policy needs no inline style.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from markupsafe import Markup

__all__ = ["Box", "layered_svg"]

WIDTH, HEIGHT = 230, 58  # one box
GAP_X, GAP_Y = 70, 14  # between layers, between boxes of a layer
MARGIN = 10
_CHARS = 32  # of a line in a box; the whole text is in the box's title


@dataclass(frozen=True)
class Box:
    """One node of a drawn graph.

    Args:
        id: the node's id (edges name it).
        title: its first line (its kind, say).
        lines: the lines under it (name@version, a short digest …).
        href: the page it links to (None: not a link).
        tone: a class that styles it (``action``, ``redacted``, ``group`` …).
    """

    id: str
    title: str
    lines: tuple[str, ...] = ()
    href: str | None = None
    tone: str = ""


def layered_svg(layers: Sequence[Sequence[Box]], edges: Iterable[tuple[str, str]], *, label: str) -> Markup:
    """``layers`` of boxes, left to right, with ``edges`` (from id, to id) between drawn boxes, as
    an ``<svg>`` element named ``label`` for assistive technology."""
    edges = list(edges)
    ordered = _ordered(layers, edges)
    where: dict[str, tuple[float, float]] = {}
    for column, boxes in enumerate(ordered):
        for row, box in enumerate(boxes):
            where.setdefault(box.id, (MARGIN + column * (WIDTH + GAP_X), MARGIN + row * (HEIGHT + GAP_Y)))
    tallest = max((len(boxes) for boxes in ordered), default=0)
    width = 2 * MARGIN + max(len(ordered), 1) * (WIDTH + GAP_X) - GAP_X
    height = 2 * MARGIN + max(tallest, 1) * (HEIGHT + GAP_Y) - GAP_Y
    parts = [
        Markup(
            '<svg class="graph" xmlns="http://www.w3.org/2000/svg" role="group" width="{w}" height="{h}" '
            'viewBox="0 0 {w} {h}" aria-label="{label}">'
        ).format(w=width, h=height, label=label)
    ]
    parts.append(Markup('<g class="edges" aria-hidden="true">'))
    for source, target in edges:
        if source in where and target in where:
            parts.append(_edge(where[source], where[target]))
    parts.append(Markup("</g>"))
    drawn: set[str] = set()
    for boxes in ordered:
        for box in boxes:
            if box.id not in drawn:
                drawn.add(box.id)
                parts.append(_box(box, *where[box.id]))
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)


def _ordered(layers: Sequence[Sequence[Box]], edges: list[tuple[str, str]]) -> list[list[Box]]:
    """Each layer's boxes sorted by the mean row of their neighbours in the layer before."""
    neighbours: dict[str, list[str]] = {}
    for source, target in edges:
        neighbours.setdefault(target, []).append(source)
        neighbours.setdefault(source, []).append(target)
    ordered: list[list[Box]] = []
    row: dict[str, int] = {}
    for boxes in layers:

        def weight(item: tuple[int, Box]) -> tuple[float, int]:
            index, box = item
            rows = [row[other] for other in neighbours.get(box.id, ()) if other in row]
            return (sum(rows) / len(rows) if rows else float(index), index)

        layer = [box for _, box in sorted(enumerate(boxes), key=weight)]
        for index, box in enumerate(layer):
            row.setdefault(box.id, index)
        ordered.append(layer)
    return ordered


def _edge(start: tuple[float, float], end: tuple[float, float]) -> Markup:
    x1, y1 = start[0] + WIDTH, start[1] + HEIGHT / 2
    x2, y2 = end[0], end[1] + HEIGHT / 2
    if x2 <= x1:  # an edge within a layer or backwards: around the boxes' right side
        x2, y2 = end[0] + WIDTH, end[1] + HEIGHT / 2
        bend = x1 + GAP_X / 2
        return Markup('<path d="M{:.0f},{:.0f} C{:.0f},{:.0f} {:.0f},{:.0f} {:.0f},{:.0f}"/>').format(
            x1, y1, bend, y1, bend, y2, x2, y2
        )
    middle = (x1 + x2) / 2
    return Markup('<path d="M{:.0f},{:.0f} C{:.0f},{:.0f} {:.0f},{:.0f} {:.0f},{:.0f}"/>').format(
        x1, y1, middle, y1, middle, y2, x2, y2
    )


def _box(box: Box, x: float, y: float) -> Markup:
    text = " · ".join((box.title, *box.lines))
    lines = Markup("").join(
        Markup('<text x="{:.0f}" y="{:.0f}" class="{}">{}</text>').format(
            x + 8, y + 18 + 16 * index, "title" if index == 0 else "line", _cut(line)
        )
        for index, line in enumerate((box.title, *box.lines[:2]))
    )
    shape = Markup('<rect x="{:.0f}" y="{:.0f}" width="{}" height="{}" rx="4"/>').format(x, y, WIDTH, HEIGHT)
    inner = Markup("<title>{}</title>{}{}").format(text, shape, lines)
    tone = f"node {box.tone}".strip()
    if box.href is None:
        return Markup('<g class="{}" data-node="{}">{}</g>').format(tone, box.id, inner)
    return Markup('<a href="{}" class="{}" data-node="{}">{}</a>').format(box.href, tone, box.id, inner)


def _cut(line: str) -> str:
    return line if len(line) <= _CHARS else line[: _CHARS - 1] + "…"
