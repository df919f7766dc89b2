"""``opslineage ingest`` on hostile files: a clear error naming the line and field, exit 2, no
traceback and nothing stored, in JSON lines and in JSON arrays, on each backend."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from hostile import hostile_cases, valid_event
from opslineage import open_store
from opslineage.cli.main import main

CASES = hostile_cases()
GOOD = msgspec.json.encode(valid_event("0190a3c4-3333-7abc-8def-0123456789ab"))


def _state(url: str) -> tuple[dict[str, int], str]:
    with open_store(url) as store:
        return store.counts(), store.state_digest()


@pytest.mark.parametrize("shape", ["lines", "array"])
@pytest.mark.parametrize(("name", "body", "says"), CASES, ids=[case[0] for case in CASES])
def test_a_hostile_event_fails_the_file_with_its_line_and_field(
    name: str,
    body: bytes,
    says: str,
    shape: str,
    tmp_path: Path,
    store_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    first = tmp_path / "first.jsonl"
    first.write_bytes(msgspec.json.encode(valid_event()) + b"\n")
    assert main(["ingest", str(first), "--store", store_url]) == 0
    before = _state(store_url)
    capsys.readouterr()
    path = tmp_path / ("events.jsonl" if shape == "lines" else "events.json")
    path.write_bytes(
        GOOD + b"\n" + body + b"\n" if shape == "lines" else b"[\n" + GOOD + b",\n  " + body + b"\n]"
    )
    assert main(["ingest", str(path), "--store", store_url]) == 2
    err = capsys.readouterr().err
    assert says in err and "nothing was ingested" in err and "Traceback" not in err, err
    assert f"{path}, line {2 if shape == 'lines' else 3}: " in err or name == "nested 1,000 levels"
    assert _state(store_url) == before
