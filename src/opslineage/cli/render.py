"""Drawing the read path's views with rich: the why-chain tree (:mod:`opslineage.query.why_view`)."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text
from rich.tree import Tree

from opslineage.query import Span, WhyNode, WhyView
from opslineage.query.why_view import ERROR, STRONG, WARNING

__all__ = ["why_tree", "wide_console"]

_STYLES = {STRONG: "bold", WARNING: "yellow", ERROR: "red"}


class _Stdout(Console):
    """rich's console for stdout, but a reader gone early (``| head``) raises BrokenPipeError, for
    :func:`opslineage.cli.main.main` to end every command the same way (rich itself exits 1)."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError


def wide_console(width: int = 160) -> Console:
    """A console for stdout; when it is not a terminal, lines are not wrapped at 80 columns."""
    console = _Stdout()
    return console if console.is_terminal else _Stdout(width=width)


def _text(spans: list[Span]) -> Text:
    return Text.assemble(*((span.text, _STYLES[span.style]) if span.style else span.text for span in spans))


def _grow(tree: Tree, node: WhyNode) -> Tree:
    for child in node.children:
        _grow(tree.add(_text(child.spans)), child)
    return tree


def why_tree(view: WhyView) -> Tree:
    """The view as a rich Tree: action and effects at the top, sources at the leaves."""
    return _grow(Tree(_text(view.root.spans)), view.root)
