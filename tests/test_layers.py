"""The layers run one way: each package of ``opslineage`` imports only the packages below it.

model → merkle → store → ledger → governance (pure rules, model only) → ingest / query → interop → checks → server → cli, with the SDK on the
side (it imports the model; a transport's own client only when that transport is made), the bus
beside the SDK and the demo above both. Imports under ``if TYPE_CHECKING:`` are annotations, not
dependencies, and are not counted. No module imports itself back through others.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).parents[1] / "src" / "opslineage"

_BELOW_INGEST = {"_version", "model", "merkle", "store", "ledger", "governance"}
_LIBRARY = _BELOW_INGEST | {"ingest", "query", "interop"}
ALLOWED: dict[str, set[str]] = {
    "_version": set(),
    "model": {"_version"},
    "merkle": set(),
    "store": {"_version", "model", "merkle"},
    "ledger": {"_version", "model", "merkle", "store"},
    "governance": {"_version", "model"},
    "ingest": _BELOW_INGEST,
    "query": _BELOW_INGEST,
    "interop": _LIBRARY,
    "checks": _LIBRARY | {"sdk"},
    "server": _LIBRARY | {"checks"},
    "sdk": {"_version", "model"},
    "testing": {"_version", "model", "sdk"},
    "bus": _BELOW_INGEST | {"ingest", "sdk"},
    "demo": _LIBRARY | {"sdk", "bus"},
    "cli": _LIBRARY | {"sdk", "bus", "demo", "server", "checks"},
    "__init__": {"_version", "sdk", "store"},
}
"""Package → the packages its modules may import at module level."""

DEFERRED: dict[str, set[str]] = {"sdk": {"store", "ledger", "ingest", "bus"}, "checks": {"bus"}}
"""Package → what it may import only inside a function (a transport's own client, when used)."""


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(imported opslineage module, whether the import is deferred into a function) of one file."""
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, deferred: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                continue
            inner = deferred or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.Import):
                found.extend(
                    (alias.name, inner) for alias in child.names if alias.name.startswith("opslineage")
                )
            elif isinstance(child, ast.ImportFrom) and child.module and child.module.startswith("opslineage"):
                found.append((child.module, inner))
            visit(child, inner)

    visit(ast.parse(path.read_text(), str(path)), deferred=False)
    return found


def _sources() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(SRC.rglob("*.py"))}


def test_every_package_has_a_layer() -> None:
    packages = {_package(module) for module in _sources()}
    assert packages <= set(ALLOWED), f"packages without a layer: {sorted(packages - set(ALLOWED))}"


@pytest.mark.parametrize("module", sorted(_sources()))
def test_a_module_imports_only_the_layers_below_it(module: str) -> None:
    package = _package(module)
    wrong = []
    for imported, deferred in _imports(_sources()[module]):
        target = _package(imported)
        if target == package:
            continue
        allowed = ALLOWED[package] | (DEFERRED.get(package, set()) if deferred else set())
        if target not in allowed:
            wrong.append(f"{imported}{' (inside a function)' if deferred else ''}")
    assert not wrong, f"{module} ({package}) imports a layer above it: {wrong}"


def test_no_module_imports_itself_back() -> None:
    sources = _sources()
    graph = {
        module: {
            target
            for imported, _ in _imports(path)
            for target in (imported, imported.rpartition(".")[0])
            if target in sources and target != module and not module.startswith(target + ".")
        }
        for module, path in sources.items()
    }
    done: set[str] = set()

    def cycle_from(start: str, trail: list[str]) -> list[str] | None:
        for nxt in sorted(graph[start]):
            if nxt in trail:
                return [*trail[trail.index(nxt) :], nxt]
            if nxt not in done:
                found = cycle_from(nxt, [*trail, nxt])
                if found:
                    return found
        done.add(start)
        return None

    for module in sorted(graph):
        cycle = cycle_from(module, [module])
        assert cycle is None, "import cycle: " + " → ".join(cycle)
