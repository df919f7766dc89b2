"""The server keeps its OpenAPI promise (issue 10, defect 3): schemathesis, run against
``/openapi.json`` of a real server on a real socket over a store with a signed log, finds no 5xx
and no answer the document does not declare (status code, content type, body schema), and bad
input is refused; a bounded number of examples per operation, on both backends."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from helpers import record_chain
from live import LiveServer, start_server
from opslineage import Tracer, open_store
from opslineage.ledger.keys import load_private_key
from opslineage.ledger.log import checkpoint, init_log
from opslineage.server import ServerSettings

AUTH = "Authorization: Bearer s3cret"
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "missing_required_header",
    "unsupported_method",
    "allow_header_conformance",
]
BATCH = "/api/v1/lineage/batch"


@pytest.fixture
def signed(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveServer]:
    """A server over a store holding a remediation chain, with a log and a signed checkpoint."""
    monkeypatch.setenv("OPSLINEAGE_KEY", str(tmp_path / "log.key"))
    tracer = Tracer.in_memory()
    record_chain(tracer)
    with open_store(store_url) as store:
        init_log(store, origin="opslineage.test/openapi")
    server, thread, url = start_server(ServerSettings(store=store_url, token="s3cret", max_body=1 << 20))
    events = tracer.transport.events  # type: ignore[attr-defined]
    assert httpx.post(f"{url}{BATCH}", json=events, headers={"Authorization": "Bearer s3cret"}).is_success
    with open_store(store_url, create=False) as store:
        checkpoint(store, load_private_key(tmp_path / "log.key"))
    yield LiveServer(url, store_url)
    server.should_exit = True
    thread.join(timeout=10)


def schemathesis(url: str, cwd: Path, checks: list[str], *selection: str) -> subprocess.CompletedProcess[str]:
    """Run the schemathesis CLI against the server's own OpenAPI document."""
    program = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or "schemathesis"
    command = [
        program,
        "run",
        f"{url}/openapi.json",
        "--header",
        AUTH,
        "--checks",
        ",".join(checks),
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        "25",
        "--workers",
        "1",  # two threads calling ast.parse crash CPython 3.11.7 (gh-106905)
        "--generation-database",
        "none",
        "--request-timeout",
        "20",
        "--no-color",
        *selection,
    ]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=240, check=False)


def every_operation_tested(report: str) -> int:
    """How many operations the run selected, checking that it tested every one of them."""
    selected = re.search(r"Selected:\s+(\d+)/", report)
    tested = re.search(r"Tested:\s+(\d+)", report)
    assert selected and tested, report[-3000:]
    assert tested.group(1) == selected.group(1), report[-3000:]
    return int(tested.group(1))


def test_schemathesis_finds_no_5xx_and_no_answer_the_openapi_document_does_not_declare(
    signed: LiveServer, tmp_path: Path
) -> None:
    run = schemathesis(signed.url, tmp_path, CHECKS, "--exclude-path", BATCH)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert every_operation_tested(run.stdout) >= 14


def test_schemathesis_finds_nothing_wrong_with_the_batch_route(signed: LiveServer, tmp_path: Path) -> None:
    # The batch answers 200 with a reason per rejected item, whatever the items are: by design it
    # does not refuse a body whose items are not events, so negative data is not refused as a whole.
    checks = [check for check in CHECKS if check != "negative_data_rejection"]
    run = schemathesis(signed.url, tmp_path, checks, "--include-path", BATCH)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert every_operation_tested(run.stdout) == 1


def test_bad_parameters_and_methods_get_our_error_body(signed: LiveServer) -> None:
    with httpx.Client(base_url=signed.url, timeout=10) as client:
        depth = client.get("/api/v1/upstream/dataset:t:d0", params={"depth": "deep"})
        assert depth.status_code == 400
        assert depth.json()["error"] == "invalid_request" and depth.json()["field"] == "depth"
        missing = client.get("/api/v1/lineage")
        assert (missing.status_code, missing.json()["field"]) == (400, "nodeId")
        for as_of in ("0.5", "2026-01-01", "2026-01-01T00:00:00", "yesterday"):
            response = client.get("/api/v1/nodes", params={"as_of": as_of})
            assert (response.status_code, response.json()["field"]) == (400, "as_of"), as_of
        assert client.get("/api/v1/nodes", params={"as_of": "2026-01-01T00:00:00+02:00"}).status_code == 200
        wrong = client.delete("/api/v1/lineage")
        assert wrong.status_code == 405 and wrong.json()["error"] == "method_not_allowed"
        assert set(wrong.headers["allow"].split(", ")) == {"GET", "POST"}
        unknown = client.get("/api/v2/nothing")
        assert (unknown.status_code, unknown.json()["error"]) == (404, "not_found")
        empty = client.post(
            BATCH,
            content=b" \n",
            headers={"Authorization": "Bearer s3cret", "Content-Type": "application/x-ndjson"},
        )
        assert (empty.status_code, empty.json()["error"]) == (400, "invalid_request")
    spec = httpx.get(f"{signed.url}/openapi.json").json()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            assert "422" not in operation["responses"], (method, path)
            assert "405" in operation["responses"], (method, path)
    ingest = spec["paths"]["/api/v1/lineage"]["post"]["responses"]
    assert {"400", "401", "413", "415"} <= set(ingest)
    assert ingest["413"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorBody"
    }


def _kind(parameter: dict) -> str | None:
    schema = parameter["schema"]
    types = [schema.get("type")] + [option.get("type") for option in schema.get("anyOf", [])]
    return "integer" if "integer" in types else "time" if parameter["name"] == "as_of" else None


def test_every_route_answers_a_missing_or_malformed_parameter_with_a_400_naming_it(
    signed: LiveServer,
) -> None:
    """Walks every operation of ``/openapi.json``: each required query parameter left out, and each
    integer or time parameter given a malformed value, is a 400 with our body and the field named."""
    spec = httpx.get(f"{signed.url}/openapi.json").json()
    tried = 0
    with httpx.Client(base_url=signed.url, timeout=10, headers={"Authorization": "Bearer s3cret"}) as client:
        for path, operations in spec["paths"].items():
            parameters = operations.get("get", {}).get("parameters", [])
            url = re.sub(r"\{[^}]+\}", "node", path)
            valid = {p["name"]: "1" for p in parameters if p["in"] == "query" and p.get("required")}
            cases = [(name, {k: v for k, v in valid.items() if k != name}) for name in valid]
            cases += [
                (p["name"], {**valid, p["name"]: "abc" if _kind(p) == "integer" else "yesterday"})
                for p in parameters
                if p["in"] == "query" and _kind(p)
            ]
            for field, query in cases:
                response = client.get(url, params=query)
                body = response.json()
                assert response.status_code == 400, (path, query, body)
                assert body["error"] == "invalid_request" and body["field"] == field, (path, query, body)
                assert isinstance(body["detail"], str) and body["detail"], (path, query, body)
                tried += 1
    assert tried >= 19  # the routes of today; a new route only adds cases
