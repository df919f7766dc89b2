"""The SDK is light: importing it loads no store, log, server, bus or heavy client library."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = (
    "opslineage.store",
    "opslineage.ledger",
    "opslineage.server",
    "opslineage.bus",
    "opslineage.ingest",
    "opslineage.query",
    "opslineage.interop",
    "opslineage.demo",
    "opslineage.cli",
    "fastapi",
    "uvicorn",
    "psycopg",
    "psycopg_pool",
    "nats",
    "numpy",
    "cryptography",
    "sqlite3",
    "_sqlite3",
    "prov",
    "zstandard",
    "openlineage",
)


def _imported(statement: str) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", statement],
        capture_output=True,
        text=True,
        check=True,
    )
    lines = [line.rpartition("|")[2].strip() for line in result.stderr.splitlines() if "|" in line]
    return {name for name in lines if name and name != "package"}


@pytest.mark.parametrize(
    "statement",
    [
        "import opslineage",
        "import opslineage.sdk",
        "import opslineage.testing",
        "from opslineage import Tracer",
    ],
)
def test_importing_the_sdk_loads_nothing_heavy(statement: str) -> None:
    imported = _imported(statement)
    assert "opslineage.sdk.tracer" in imported  # the measurement sees our own modules
    heavy = sorted(
        name for name in imported if any(name == bad or name.startswith(bad + ".") for bad in HEAVY)
    )
    assert heavy == [], f"{statement!r} loaded {heavy}"


def test_a_tracer_recording_to_memory_or_a_file_stays_light(tmp_path: Path) -> None:
    statement = (
        "import datetime, opslineage.sdk as s\n"
        f"t = s.Tracer('x', transport=s.FileTransport({str(tmp_path)!r} + '/e.jsonl'))\n"
        "src = t.source('svc')\n"
        "now = datetime.datetime.now(datetime.UTC)\n"
        "with t.ingest(src) as step: step.snapshot([[1.0]], {'cpu': 'float'}, now, now)\n"
        "t.close()"
    )
    heavy = sorted(name for name in _imported(statement) if name.split(".")[0] in {"sqlite3", "cryptography"})
    assert heavy == []


def test_the_store_and_its_transport_load_when_first_named() -> None:
    imported = _imported("from opslineage import open_store\nfrom opslineage.sdk import StoreTransport")
    assert {"opslineage.store", "opslineage.sdk._store_transport"} <= imported
