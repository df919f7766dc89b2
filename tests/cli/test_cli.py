"""The command line: ingest all-or-nothing with line-numbered errors, why/upstream/ls, exit statuses.

The commands run against a store of each backend (see the ``store_url`` fixture).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest

from helpers import CHAIN_EVENTS, record_chain
from opslineage import Tracer, open_store
from opslineage.cli.main import main
from opslineage.store import StoreError


@pytest.fixture
def events() -> list[dict[str, Any]]:
    tracer = Tracer.in_memory()
    record_chain(tracer)
    return tracer.transport.events  # type: ignore[attr-defined,no-any-return]


@pytest.fixture
def db(store_url: str) -> str:
    return store_url


def _jsonl(path: Path, events: list[Any]) -> Path:
    path.write_bytes(b"".join(msgspec.json.encode(e) + b"\n" for e in events))
    return path


def _state(db: str) -> tuple[dict[str, int], str]:
    with open_store(db) as store:
        return store.counts(), store.state_digest()


def _action_id(db: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["ls", "--kind", "action", "--store", db, "--json"]) == 0
    return str(json.loads(capsys.readouterr().out)[0]["id"])


def test_ingest_json_lines_and_arrays_idempotently(
    tmp_path: Path, db: str, events: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    lines = _jsonl(tmp_path / "events.jsonl", events)
    assert main(["ingest", str(lines), "--store", db, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["accepted"] == CHAIN_EVENTS
    state = _state(db)
    array = tmp_path / "events.json"
    array.write_text(json.dumps(events, indent=2))
    assert main(["ingest", str(array), "--store", db]) == 0
    assert f"0 event(s) from {array}, {CHAIN_EVENTS} already stored" in capsys.readouterr().out
    assert _state(db) == state


def _bad_cases(events: list[dict[str, Any]]) -> list[tuple[str, list[bytes], str]]:
    good = [msgspec.json.encode(e) for e in events]
    no_run_id = json.loads(good[4])
    del no_run_id["run"]["runId"]
    no_time = json.loads(good[4])
    del no_time["eventTime"]
    bad_type = {**json.loads(good[4]), "eventType": "DONE"}
    wrong_facet = json.loads(good[4])
    wrong_facet["run"]["facets"]["parent"] = ["not", "an", "object"]
    huge = {**json.loads(good[4]), "padding": "x" * (1 << 20)}
    return [
        ("malformed", [*good[:4], b'{"eventType": "START",', *good[5:]], "line 5: malformed JSON"),
        ("no run id", [*good[:4], json.dumps(no_run_id).encode(), *good[5:]], "line 5: run.runId is missing"),
        ("no time", [*good[:4], json.dumps(no_time).encode(), *good[5:]], "line 5: eventTime is missing"),
        ("bad type", [*good[:4], json.dumps(bad_type).encode(), *good[5:]], "line 5: eventType 'DONE'"),
        (
            "wrong facet",
            [*good[:4], json.dumps(wrong_facet).encode(), *good[5:]],
            "line 5: run.facets.parent must be an object",
        ),
        ("too big", [*good[:4], json.dumps(huge).encode(), *good[5:]], "line 5: event is"),
    ]


@pytest.mark.parametrize("case", range(6))
def test_one_bad_event_rejects_the_whole_file(
    case: int, tmp_path: Path, db: str, events: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    other = Tracer.in_memory()
    record_chain(other, subject="svc-09")
    assert (
        main(["ingest", str(_jsonl(tmp_path / "before.jsonl", other.transport.events)), "--store", db]) == 0
    )  # type: ignore[attr-defined]
    before = _state(db)
    capsys.readouterr()
    name, lines, says = _bad_cases(events)[case]
    path = tmp_path / f"{name}.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    assert main(["ingest", str(path), "--store", db]) == 2
    err = capsys.readouterr().err
    assert says in err and err.count("\n") == 1 and "nothing was ingested" in err
    assert _state(db) == before


def test_a_bad_event_in_an_array_names_its_line(
    tmp_path: Path, db: str, events: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    broken = [*events[:2], {**events[2], "eventType": "NOPE"}]
    path = tmp_path / "array.json"
    path.write_text(json.dumps(broken, indent=1))
    assert main(["ingest", str(path), "--store", db]) == 2
    starts = [number for number, text in enumerate(path.read_text().splitlines(), start=1) if text == " {"]
    assert f"{path}, line {starts[2]}: eventType 'NOPE'" in capsys.readouterr().err


def test_why_prints_a_tree_and_json(
    tmp_path: Path, db: str, events: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    main(["ingest", str(_jsonl(tmp_path / "e.jsonl", events)), "--store", db])
    capsys.readouterr()
    action = _action_id(db, capsys)
    assert main(["why", action, "--store", db]) == 0
    tree = capsys.readouterr().out
    for text in (
        "action scale_out → svc-01",
        "effect: resolved",
        "policy cpu-guard@1",
        "rule: cpu_mean > 85",
        "model detector@1",
        "features",
        "source source:test:svc-01",
    ):
        assert text in tree
    assert main(["why", action, "--store", db, "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["complete"] is True and len(answer["snapshots"]) == 3


def test_why_exits_1_when_the_chain_is_incomplete(
    tmp_path: Path, db: str, events: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    partial = [e for e in events if e["job"]["name"] != "ingest"]
    main(["ingest", str(_jsonl(tmp_path / "e.jsonl", partial)), "--store", db])
    capsys.readouterr()
    assert main(["why", _action_id(db, capsys), "--store", db]) == 1
    assert "missing from the store" in capsys.readouterr().out


def test_upstream_downstream_and_as_of(
    tmp_path: Path, db: str, events: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    main(["ingest", str(_jsonl(tmp_path / "e.jsonl", events)), "--store", db])
    capsys.readouterr()
    assert main(["downstream", "source:test:svc-01", "--depth", "30", "--store", db, "--json"]) == 0
    graph = json.loads(capsys.readouterr().out)
    assert any(n.get("type") == "effect" for n in graph["nodes"])
    assert main(["upstream", "source:test:svc-01", "--as-of", "2000-01-01", "--store", db]) == 2
    assert "no node source:test:svc-01 as of sequence 0" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["why", "not-an-id"], "must start with one of"),
        (["why", "run:00000000-0000-4000-8000-000000000000"], "no node"),
        (["upstream", "source:a:b", "--as-of", "soon"], "not an ISO 8601 time"),
        (["ingest", "/nonexistent/file.jsonl"], "cannot read"),
    ],
)
def test_bad_usage_exits_2_with_one_line(
    argv: list[str],
    says: str,
    tmp_path: Path,
    db: str,
    events: list[dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    main(["ingest", str(_jsonl(tmp_path / "e.jsonl", events)), "--store", db])
    capsys.readouterr()
    assert main([*argv, "--store", db]) == 2
    err = capsys.readouterr().err
    assert says in err and err.startswith("opslineage: error:") and err.count("\n") == 1


def test_reading_a_store_that_does_not_exist_is_exit_2(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ls", "--kind", "action", "--store", db]) == 2
    assert "no store at" in capsys.readouterr().err
    with pytest.raises(StoreError, match="no store at"):  # and reading made none
        open_store(db, create=False)


def test_the_installed_command_runs_and_argparse_errors_exit_2() -> None:
    ok = subprocess.run(
        [sys.executable, "-m", "opslineage.cli.main", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0 and ok.stdout.startswith("opslineage ")
    bad = subprocess.run(
        [sys.executable, "-m", "opslineage.cli.main", "ls", "--kind", "widgets"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
