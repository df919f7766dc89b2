"""One read path: ``server/``, ``cli/`` and ``interop/`` read the store and the log only through
:class:`opslineage.query.Reader`, which carries who is reading.

Read from the source (ast): a call of a store read method, an import of a store-taking query or
ledger read, or an import from ``opslineage.store`` of anything but opening a store, its types,
errors and constants (and the archive tier's writer) is a violation, named with file and line.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import opslineage.query
from opslineage.store import Store

SRC = Path(__file__).parents[1] / "src" / "opslineage"
CHECKED = ("server", "cli", "interop", "checks")

# The read methods of the store interface (src/opslineage/store/base.py).
STORE_READS = frozenset(
    {
        "node",
        "nodes",
        "nodes_with_content",
        "find_nodes",
        "search_nodes",
        "count_nodes",
        "walk",
        "edges",
        "touching_seqs",
        "index_rows",
        "index_lookup",
        "stray_ids",
        "batch_ranges",
        "artifacts",
        "artifact",
        "events",
        "raw_events",
        "stored_events",
        "thaw_body",
        "as_of_seq",
        "counts",
        "state_digest",
        "hot_rows",
        "segments",
        "archive",
        "default_archive_dir",
        "log_size",
        "log_node",
        "log_range",
        "checkpoints",
        "latest_checkpoint",
        "get_meta",
        "access_size",
        "access_log_node",
        "access_log_range",
        "access_checkpoints",
        "latest_access_checkpoint",
        "search_access",
        "access_rows",
        # encryption at rest: what is sealed, the KEK, the data keys, sealed rows; the leaf form
        "encryption",
        "default_kek_path",
        "kek_path",
        "load_kek",
        "data_keys",
        "data_key_rows",
        "sealed_payloads",
        "artifact_rows",
        "artifact_contents",
        "leaf_form",
    }
)
# What the store does besides reading: writes and the connection's life.
STORE_WRITES = frozenset(
    {"ingest", "ingest_many", "add_segment", "add_checkpoint", "set_meta", "close"}
    | {"append_access", "add_access_checkpoint"}
    | {"enable_encryption", "use_kek", "rewrap_data_keys", "shred_scope"}
)
# The API tokens: credentials, not lineage (opslineage.governance.tokens and the server's
# authenticator keep and look them up; a token holder reads through a Reader like anyone).
TOKEN_TABLE = frozenset({"add_token", "token_by_hash", "tokens", "revoke_token", "has_tokens"})
# Reads of the transparency log that take a store.
LEDGER_READS = {
    "opslineage.ledger.log": frozenset({"root", "inclusion", "consistency", "latest_checkpoint"}),
    "opslineage.ledger.verify": frozenset({"verify_store", "verify_against"}),
    "opslineage.ledger.access_log": frozenset(
        {
            "access_root",
            "access_inclusion",
            "access_consistency",
            "latest_access_checkpoint",
            "verify_access_log",
        }
    ),
}
# What may come from opslineage.store: opening a store, its types, errors and constants; and the
# archive tier's writer (archiving moves rows, it reads nothing for anyone).
STORE_IMPORTS = {
    "opslineage.store": frozenset(
        {
            "open_store",
            "sqlite_path",  # reads a URL, not the store
            "default_store_url",
            "DEFAULT_STORE_URL",
            "ARCHIVE_DIR_ENV",
            "Store",
            "StoreError",
            "StoreUnavailable",
            "NodeRecord",
            "StoredEvent",
            "IngestResult",
            "SegmentInfo",
            "Walk",
            "event_leaf",  # a leaf's hash from an event's bytes: reads no store
        }
    ),
    "opslineage.store.archive": frozenset({"archive_store", "SEGMENT_EVENTS"}),
    "opslineage.store.keys": frozenset({"KeyError_"}),  # an error class, for the HTTP API's 503
    # Key management (key ids and scopes, never key material or a payload) and retention's
    # shredder, which destroys keys and blanks rows as archiving moves them; and the pure folds
    # of recorded rules and holds, which the CLI reads through the Reader.
    "opslineage.store.keyring": frozenset({"ensure_kek", "key_listing", "rotate_store_kek"}),
    "opslineage.store.retention": frozenset(
        {"apply_shred", "plan_retention", "rules_from_contents", "holds_from_contents"}
    ),
}


def _store_taking_queries() -> frozenset[str]:
    """Functions of opslineage.query (and its modules) whose first parameter is a bare store: they
    read without a principal."""
    names = set()
    for info in pkgutil.iter_modules(opslineage.query.__path__):
        module = importlib.import_module(f"opslineage.query.{info.name}")
        for name, value in vars(module).items():
            if inspect.isfunction(value) and value.__module__ == module.__name__:
                first = next(iter(inspect.signature(value).parameters.values()), None)
                if first is not None and first.annotation in ("Store", Store):
                    names.add(name)
    return frozenset(names)


def violations(source: str, package: str) -> list[str]:
    """Every read in ``source`` (a module of ``package``) that bypasses the read path, with its line."""
    found = []
    bypassing = _store_taking_queries() | ({"as_reader"} if package != "interop" else set())
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in STORE_READS
        ):
            found.append(f"line {node.lineno}: calls the store read method .{node.func.attr}()")
        elif isinstance(node, ast.Import):
            found += [
                f"line {node.lineno}: imports {alias.name}"
                for alias in node.names
                if alias.name.startswith(("opslineage.store", "opslineage.query", "opslineage.ledger"))
            ]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = {alias.name for alias in node.names}
            module = node.module
            if module.startswith("opslineage.store"):
                allowed = STORE_IMPORTS.get(module, frozenset())
                found += [f"line {node.lineno}: imports {n} from {module}" for n in sorted(names - allowed)]
            elif module.startswith("opslineage.query"):
                found += [
                    f"line {node.lineno}: imports {n}, which reads a bare store"
                    for n in sorted(names & bypassing)
                ]
            elif module in LEDGER_READS or module == "opslineage.ledger":
                reads = LEDGER_READS.get(module, frozenset().union(*LEDGER_READS.values()))
                found += [
                    f"line {node.lineno}: imports the log read {n} from {module}"
                    for n in sorted(names & reads)
                ]
    return found


def test_the_listed_read_methods_are_the_stores() -> None:
    public = {name for name, _ in inspect.getmembers(Store, callable) if not name.startswith("_")}
    assert public >= STORE_READS, sorted(STORE_READS - public)
    assert public - STORE_READS == STORE_WRITES | TOKEN_TABLE, (
        "a new store method: list it as a read or a write"
    )
    for module, names in LEDGER_READS.items():
        assert all(callable(getattr(importlib.import_module(module), name)) for name in names)
    assert {
        "why",
        "upstream",
        "downstream",
        "list_nodes",
        "resolve_node",
        "node_detail",
    } <= _store_taking_queries()


@pytest.mark.parametrize("package", CHECKED)
def test_no_read_bypasses_the_read_path(package: str) -> None:
    problems = [
        f"{path.relative_to(SRC)} {problem}"
        for path in sorted((SRC / package).rglob("*.py"))
        for problem in violations(path.read_text(), package)
    ]
    assert problems == []


def test_the_check_finds_each_kind_of_bypass() -> None:
    source = """
from opslineage.query import why, Reader
from opslineage.query.lineage import upstream
from opslineage.store import open_store, Store
from opslineage.store.sqlite import SQLiteStore
from opslineage.ledger.log import inclusion, checkpoint
import opslineage.store.postgres

def f(store: Store) -> None:
    store.events(run_id="x")
    Reader(store, None).run_events("x")
"""
    found = violations(source, "server")
    assert [line.split(":")[0] for line in found] == [
        "line 2",
        "line 3",
        "line 5",
        "line 6",
        "line 7",
        "line 10",
    ], found
    assert violations("from opslineage.query import as_reader\n", "cli")
    assert not violations("from opslineage.query import as_reader\n", "interop")
