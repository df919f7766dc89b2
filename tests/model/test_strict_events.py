"""Hostile input to the parser: only ``InvalidEvent`` ever comes out, naming the field.

Duplicate keys, numbers beyond a double's range, nesting deeper than 64 levels and time stamps
that are not RFC 3339 are refused on every path (bytes, text, dicts); a property test mutates
valid events at every path and asserts nothing else escapes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import record_chain
from hostile import hostile_cases, valid_event
from opslineage.ingest import parse
from opslineage.model import InvalidEvent, ParsedEvent, parse_event
from opslineage.sdk import MemoryTransport
from opslineage.sdk.tracer import Tracer

CASES = hostile_cases()
DATA = Path("/work/shared/data/openlineage")
MAX_DEPTH = 64  # the deepest nesting an event may have
REPO_DATA = Path(__file__).parents[1] / "data" / "openlineage"


@pytest.mark.parametrize(("name", "body", "says"), CASES, ids=[case[0] for case in CASES])
def test_a_hostile_event_is_refused_naming_the_field(name: str, body: bytes, says: str) -> None:
    for given_as in (body, body.decode()):
        with pytest.raises(InvalidEvent) as refused:
            parse(given_as)
        assert says in refused.value.reason, refused.value.reason


def _nested(levels: int) -> Any:
    value: Any = []
    for _ in range(levels - 1):
        value = [value]
    return value


@pytest.mark.parametrize("as_dict", [False, True])
def test_nesting_is_bounded_at_64_levels(as_dict: bool) -> None:
    def event(levels: int) -> Any:  # the event is level 1, its "x" level 2
        if as_dict:
            return {**valid_event(), "x": _nested(levels - 1)}
        nested = b"[" * (levels - 1) + b"]" * (levels - 1)
        return msgspec.json.encode({**valid_event(), "x": msgspec.Raw(nested)})

    assert isinstance(parse_event(event(MAX_DEPTH)), ParsedEvent)
    with pytest.raises(InvalidEvent, match=r"^x\[0\]\[0\][][0…]+ is nested deeper than 64 levels$"):
        parse_event(event(MAX_DEPTH + 1))
    with pytest.raises(InvalidEvent, match="nested deeper than 64 levels"):
        parse_event(event(5000))


def test_wide_events_with_many_containers_are_not_too_deep() -> None:
    wide = {**valid_event(), "x": [{"a": [1]} for _ in range(500)], "y": _nested(60)}
    assert isinstance(parse_event(msgspec.json.encode(wide)), ParsedEvent)


def test_numbers_beyond_a_double_are_refused_in_dicts_too() -> None:
    for value in (float("inf"), float("-inf"), float("nan")):
        with pytest.raises(InvalidEvent, match=r"^x\.y\[1\] is"):
            parse_event({**valid_event(), "x": {"y": [1.5, value]}})
    tiny = parse_event(msgspec.json.encode({**valid_event(), "x": msgspec.Raw(b"[1e-400, 1.5e308]")}))
    assert b'"x":[0,1.5e+308]' in tiny.canonical  # underflow is zero, as every decoder makes it


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (b'{"a": 1, "a": 2}', "x.a is given twice"),
        (b'{"a": 1, "\\u0061": 2}', "x.a is given twice"),  # the same key, escaped
        (b'[{"k": {"a:b": 1, "a:b": 2}}]', "x[0].k.a:b is given twice"),
        (b'{"a\\u003ab": 1, "a:b": 2}', "x.a:b is given twice"),  # an escaped colon hides no key
    ],
)
def test_a_key_given_twice_is_refused(text: bytes, says: str) -> None:
    with pytest.raises(InvalidEvent) as refused:
        parse_event(msgspec.json.encode({**valid_event(), "x": msgspec.Raw(text)}))
    assert refused.value.reason == f"{says} (duplicate keys are refused)"


def test_keys_that_only_look_alike_are_not_duplicates() -> None:
    for text in (b'{"a\\u003ab": 1, "a:b:": 2}', b'{"a": {"a": 1}, "b": "a:a"}', b'{"A": 1, "a": 2}'):
        parse_event(msgspec.json.encode({**valid_event(), "x": msgspec.Raw(text)}))
    with pytest.raises(InvalidEvent, match="given twice"):
        parse_event({**valid_event(), "x": {1: "int key", "1": "str key"}})  # both encode as "1"


@pytest.mark.parametrize(
    "stamp",
    [
        "2026-01-05",
        "2026-01-05T12:00:00",
        "2026-01-05 12:00:00Z",
        "20260105T120000Z",
        "2026-01-05T12:00Z",
        "2026-13-05T12:00:00Z",
        "2026-01-05T12:00:00+24:00",
        "2026-01-05T12:00:00+0100",
        "yesterday",
    ],
)
def test_an_event_time_that_is_not_rfc_3339_is_refused(stamp: str) -> None:
    with pytest.raises(InvalidEvent, match=r"^eventTime"):
        parse_event({**valid_event(), "eventTime": stamp})


@pytest.mark.parametrize(
    "stamp",
    [
        "2026-01-05T12:00:00Z",
        "2026-01-05T12:00:00.123456789Z",
        "2026-01-05t12:00:00.5z",
        "2026-01-05T12:00:00.000+05:30",
        "2026-01-05T12:00:00-00:00",
    ],
)
def test_rfc_3339_event_times_are_accepted(stamp: str) -> None:
    assert parse_event({**valid_event(), "eventTime": stamp}).event_time == stamp


@pytest.mark.parametrize("event", [[], 5, None, "null", b"[1]", "\ud800", {"a": object()}, {(1,): 2}])
def test_what_is_not_an_event_object_is_refused(event: Any) -> None:
    with pytest.raises(InvalidEvent):
        parse(event)


def _producer_events() -> list[tuple[str, bytes]]:
    root = DATA if DATA.exists() else REPO_DATA
    files = sorted((root / "compatibility-tests").glob("*/events/*.json"))
    files += [root / "example_full_event.json", *sorted((root / "fluentd-events").glob("event_*.json"))]
    return [(str(path.relative_to(root)), path.read_bytes()) for path in files if path.exists()]


def test_real_producer_events_still_parse() -> None:
    events = _producer_events()
    if not events:
        pytest.skip("no OpenLineage producer events on this machine")
    refused = {}
    for name, body in events:
        try:
            parse_event(body)
        except InvalidEvent as error:
            refused[name] = error.reason
    assert refused.keys() == {  # fluentd's examples of invalid events that break what we read too
        "fluentd-events/event_invalid_run_facet.json",  # a parent run without its runId
        "fluentd-events/event_no_run_id.json",
    }, refused


# The property: mutate valid events anywhere, in any way, and only InvalidEvent comes out.

_ODD_NUMBERS = [
    b"1e400",
    b"-1e400",
    b"1E+9999",
    b"1e-400",
    b"-0",
    b"-0.0",
    b"1.5e308",
    b"5e-324",
    b"1e21",
    b"123456789012345678901234567890",
    b"-9223372036854775809",
    b"0.1",
]
_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(["START", "COMPLETE", "2026-01-05T12:00:00Z", "aiops_entity", "sha256:" + "0" * 64])
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
_raw = (
    st.sampled_from(_ODD_NUMBERS)
    | st.integers(min_value=MAX_DEPTH - 2, max_value=3 * MAX_DEPTH).map(lambda n: b"[" * n + b"]" * n)
    | st.integers(min_value=MAX_DEPTH - 2, max_value=3 * MAX_DEPTH).map(
        lambda n: b'{"a":' * n + b"1" + b"}" * n
    )
)


def _bases() -> list[dict[str, Any]]:
    tracer = Tracer.in_memory("prop.ns")
    record_chain(tracer)
    assert isinstance(tracer.transport, MemoryTransport)
    chain = tracer.transport.events
    foreign = [json.loads(body) for _, body in _producer_events()[:3]]
    return [valid_event(), *chain[::3], *foreign]


BASES = _bases()


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside ``value`` (the root too)."""
    found = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*path, index))
    return found


def _mutated(event: Any, path: tuple[Any, ...], how: str, replacement: Any) -> Any:
    """A copy of ``event`` with the value at ``path`` dropped, replaced or given a duplicate key."""
    if not path:
        return replacement if how != "drop" else {}
    head, *rest = path
    copy: Any = dict(event) if isinstance(event, dict) else list(event)
    if rest:
        copy[head] = _mutated(event[head], tuple(rest), how, replacement)
    elif how == "drop":
        del copy[head]
    elif how == "duplicate" and isinstance(copy, dict):
        first = msgspec.json.encode({head: replacement})[1:-1]
        copy = msgspec.Raw(b"{" + first + b"," + msgspec.json.encode(copy)[1:])
    else:
        copy[head] = replacement
    return copy


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_mutated_events_raise_only_invalid_event(data: st.DataObject) -> None:
    event = data.draw(st.sampled_from(BASES), label="base")
    path = data.draw(st.sampled_from(_paths(event)), label="path")
    how = data.draw(st.sampled_from(["drop", "replace", "raw", "duplicate"]), label="how")
    replacement = data.draw(_raw.map(msgspec.Raw) if how == "raw" else _values, label="with")
    mutated = _mutated(event, path, how, replacement)
    body = msgspec.json.encode(mutated)
    for given_as in (body, mutated) if how in ("drop", "replace") else (body,):
        try:
            parse(given_as)
        except InvalidEvent as error:
            assert error.reason
        else:
            assert not _must_refuse(event, path, how, replacement), "accepted"


def _must_refuse(event: Any, path: tuple[Any, ...], how: str, replacement: Any) -> bool:
    """Whether the mutation made the event invalid whatever else it holds: a key given twice, a
    number beyond a double, nesting deeper than 64 levels."""
    parent = event
    for key in path[:-1]:
        parent = parent[key]
    if how == "duplicate":
        return bool(path) and isinstance(parent, dict)
    if how != "raw":
        return False
    text = bytes(replacement)
    if text in (b"1e400", b"-1e400", b"1E+9999"):
        return True
    return len(path) + text.count(b"[") + text.count(b"{") > MAX_DEPTH
