"""The server's SVG graphs: every box drawn once as a link, text escaped, edges between drawn boxes,
and layers ordered so that a chain's edges do not cross."""

from __future__ import annotations

import re

from opslineage.server.pages.svg import Box, layered_svg


def _rows(svg: str) -> dict[str, float]:
    return {
        m[1]: float(m[2])
        for m in re.finditer(r'data-node="([^"]+)"><title>[^<]*</title><rect x="\d+" y="(\d+)"', svg)
    }


def test_boxes_are_links_with_escaped_text_and_edges_join_only_drawn_boxes() -> None:
    svg = str(
        layered_svg(
            [[Box("a", "source", ("<svc> & co",), "/nodes/a")], [Box("b", "snapshot"), Box("b", "snapshot")]],
            [("a", "b"), ("a", "missing")],
            label="why & how",
        )
    )
    assert svg.count('data-node="b"') == 1  # a box named twice is drawn once
    assert (
        '<a href="/nodes/a"' in svg and "&lt;svc&gt; &amp; co" in svg and 'aria-label="why &amp; how"' in svg
    )
    assert svg.count("<path ") == 1  # the edge to a box not drawn is left out


def test_a_layer_follows_the_order_of_the_layer_before() -> None:
    first = [Box(f"s{i}", "source") for i in range(3)]
    second = [Box(f"t{i}", "snapshot") for i in (2, 0, 1)]  # given out of order
    svg = str(layered_svg([first, second], [(f"s{i}", f"t{i}") for i in range(3)], label="g"))
    rows = _rows(svg)
    assert [rows[f"t{i}"] for i in range(3)] == sorted(rows[f"t{i}"] for i in range(3))
    assert all(rows[f"t{i}"] == rows[f"s{i}"] for i in range(3))
