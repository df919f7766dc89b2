"""``why``, ``upstream``, ``downstream`` and ``ls``: reading the graph from the command line."""

from __future__ import annotations

import argparse

from rich.table import Table

from opslineage.cli.common import horizon, local_reader, print_json, store_from
from opslineage.cli.render import why_tree, wide_console
from opslineage.query import LS_KINDS, why_view

__all__ = ["add_parsers"]


def add_parsers(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Register the commands."""
    when = argparse.ArgumentParser(add_help=False)
    when.add_argument(
        "--as-of",
        metavar="TIME",
        help="answer as the store stood at TIME (ISO 8601): by when events were stored, not by their "
        "eventTime, so a replay stored today is empty --as-of any earlier day",
    )
    when.add_argument(
        "--event-time-before",
        metavar="TIME",
        help="answer with only what had happened by TIME (ISO 8601), by each event's eventTime: "
        "a replay of last week shows last week's state whenever it was stored",
    )

    parser = commands.add_parser(
        "why",
        parents=[common, when],
        help="why an action happened and what it did",
        description="Print the causal chain of a remediation: effect ← action ← decision (policy, rule, "
        "breach) ← prediction (model) ← features (transform) ← snapshots ← sources. Exit 1 when a link is missing.",
    )
    parser.add_argument(
        "action", metavar="ACTION_ID", help="an action's run id (run:<uuid>), its record, or a decision"
    )
    parser.set_defaults(run=run_why)

    for name, text in (("upstream", "what a node came from"), ("downstream", "what came from a node")):
        parser = commands.add_parser(name, parents=[common, when], help=text, description=f"List {text}.")
        parser.add_argument("node", metavar="NODE_ID", help="any node id (see README: node ids)")
        parser.add_argument("--depth", type=int, default=10, help="how many edges to follow (default 10)")
        parser.set_defaults(run=run_walk, direction=name)

    parser = commands.add_parser(
        "ls",
        parents=[common, when],
        help="list nodes of a kind",
        description="List nodes of one kind, newest first.",
    )
    parser.add_argument("--kind", required=True, choices=list(LS_KINDS), help="which kind of node")
    parser.add_argument("--search", "-q", metavar="TEXT", help="only ids or names containing TEXT")
    parser.add_argument("--limit", type=int, default=50, help="how many (default 50)")
    parser.add_argument("--offset", type=int, default=0, help="skip this many first")
    parser.set_defaults(run=run_ls)


def run_why(args: argparse.Namespace) -> int:
    """Print the why-chain; exit 1 when it is incomplete."""
    with store_from(args) as store:
        reader = local_reader(store)
        chain = reader.why(args.action, horizon(reader, args))
    if args.json:
        print_json(chain.to_dict())
    else:
        wide_console().print(why_tree(why_view(chain)))
    return 0 if chain.complete else 1


def run_walk(args: argparse.Namespace) -> int:
    """Print an upstream or downstream walk."""
    with store_from(args) as store:
        reader = local_reader(store)
        walk = reader.upstream if args.direction == "upstream" else reader.downstream
        graph = walk(args.node, args.depth, horizon(reader, args))
    if args.json:
        print_json(graph.to_dict())
        return 0
    table = Table("depth", "node", "type", box=None, title=f"{args.direction} of {graph.root}")
    for node in graph.nodes:
        table.add_row(str(node["depth"]), node["id"], node.get("type", ""))
    wide_console().print(table)
    print(f"{len(graph.nodes)} node(s), {len(graph.edges)} edge(s)")
    return 0


def run_ls(args: argparse.Namespace) -> int:
    """Print nodes of a kind."""
    with store_from(args) as store:
        reader = local_reader(store)
        nodes = reader.list_kind(
            args.kind, text=args.search, limit=args.limit, offset=args.offset, as_of=horizon(reader, args)
        )
    if args.json:
        print_json([node.to_dict() for node in nodes])
        return 0
    table = Table("id", "type", "name", "seq", box=None)
    for node in nodes:
        name = f"{node.name}@{node.version}" if node.version else (node.name or "")
        table.add_row(node.id, node.type, name, str(node.seq))
    wide_console(200).print(table)
    return 0
