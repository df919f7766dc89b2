"""Hostile events: inputs that once made a parser error other than ``InvalidEvent`` (a 500 over
HTTP, a traceback in the CLI, a crash-looping worker) or were stored changed without a word.

Each case is ``(name, JSON bytes, what the refusal must say)``; the bytes are one line, so a case
is a line of a JSON-lines file too. The parser, the CLI and the worker tests share them.
"""

from __future__ import annotations

from typing import Any

import msgspec

RUN_ID = "0190a3c4-2222-7abc-8def-0123456789ab"
DEEP = 1000
"""How deeply the deep case nests (the parser refuses more than 64 levels)."""


def valid_event(run_id: str = RUN_ID) -> dict[str, Any]:
    """A small valid RunEvent."""
    return {
        "eventType": "COMPLETE",
        "eventTime": "2026-01-05T12:00:00Z",
        "producer": "https://example.test/producer",
        "run": {"runId": run_id},
        "job": {"namespace": "hostile", "name": "job"},
        "inputs": [{"namespace": "hostile", "name": "in"}],
        "outputs": [{"namespace": "hostile", "name": "out"}],
    }


def _with(change: dict[str, Any]) -> bytes:
    return msgspec.json.encode({**valid_event(), **change})


def _with_raw(key: str, literal: bytes) -> bytes:
    """The valid event with one more top-level key whose value is the literal text given."""
    return msgspec.json.encode({**valid_event(), key: msgspec.Raw(literal)})


_INPUT = {"namespace": "hostile", "name": "in"}
_MODEL = {"name": "m", "version": "1", "artifact_digest": "sha256:" + "0" * 64, "framework": "f"}


def hostile_cases() -> list[tuple[str, bytes, str]]:
    """Every hostile case: its name, its bytes and a phrase its refusal must hold."""
    duplicate_run_id = _with({"run": msgspec.Raw(b'{"runId":"first","runId":"second"}')})
    return [
        ("eventType is an array", _with({"eventType": []}), "eventType must be a string"),
        (
            "parent run is a number",
            _with({"run": {"runId": RUN_ID, "facets": {"parent": {"run": 5}}}}),
            "run.facets.parent.run must be an object",
        ),
        ("nested 1,000 levels", _with_raw("deep", b"[" * DEEP + b"]" * DEEP), "nested deeper than 64 levels"),
        (
            "entity facet empty on an input",
            _with({"inputs": [{**_INPUT, "facets": {"aiops_entity": {}}}]}),
            "inputs[0].facets.aiops_entity: Object missing required field",
        ),
        (
            "entity facet empty on a run",
            _with({"run": {"runId": RUN_ID, "facets": {"aiops_entity": {}}}}),
            "run.facets.aiops_entity is a dataset facet",
        ),
        (
            "entity facet empty beside a model",
            _with({"outputs": [{**_INPUT, "facets": {"aiops_model": _MODEL, "aiops_entity": {}}}]}),
            "outputs[0].facets.aiops_entity: Object missing required field",
        ),
        ("1e400", _with_raw("big", b"1e400"), "big: the number 1e400 is out of range"),
        ("-1e400", _with_raw("big", b"[1, -1e400]"), "big[1]: the number -1e400 is out of range"),
        (
            "1E+9999 beside a tiny float",
            _with_raw("big", b'{"tiny": 1e-7, "huge": 1E+9999}'),
            "big.huge: the number 1E+9999 is out of range",
        ),
        ("a duplicate runId", duplicate_run_id, "run.runId is given twice"),
        ("a date alone", _with({"eventTime": "2026-01-05"}), "not an RFC 3339 date-time"),
        ("a naive time", _with({"eventTime": "2026-01-05T12:00:00"}), "not an RFC 3339 date-time"),
    ]
