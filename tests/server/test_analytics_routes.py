"""The analytics routes over a real socket: they answer what the query functions answer, refuse bad
parameters with a 400 naming them, and redact restricted rows for an operator's token (with the
read on the access trail)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import msgspec
import pytest

from live import start_server
from opslineage import Tracer, open_store
from opslineage.demo import DemoResult
from opslineage.governance import AccessEvent, create_token
from opslineage.query import Principal, Reader
from opslineage.query.effectiveness import effectiveness
from opslineage.query.timeline import targets, timeline
from opslineage.server import ServerSettings
from planted import SECRET, record_secret_chain


class ListTrail(list[AccessEvent]):
    """Access events kept in a list."""

    def record(self, event: AccessEvent) -> None:
        """Keep ``event``."""
        self.append(event)


def _serve(store_url: str, trail: ListTrail | None = None) -> Iterator[str]:
    server, thread, url = start_server(ServerSettings(store=store_url), trail=trail)
    yield url
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def demo_url(demo_run: tuple[Path, DemoResult]) -> Iterator[str]:
    yield from _serve(f"sqlite:///{demo_run[0]}")


@pytest.fixture(scope="module")
def local(demo_run: tuple[Path, DemoResult]) -> Iterator[Reader]:
    """The demo store read in this process, by its local administrator."""
    with open_store(f"sqlite:///{demo_run[0]}") as store:
        yield Reader(store, Principal.local_admin())


def _plain(value: object) -> object:
    """``value`` as JSON would give it back (tuples as lists, floats as written)."""
    return msgspec.json.decode(msgspec.json.encode(value))


def test_effectiveness_answers_what_the_query_answers(demo_url: str, local: Reader) -> None:
    answer = httpx.get(f"{demo_url}/api/v1/effectiveness", params={"interval": "hour"})
    assert answer.status_code == 200
    assert answer.json() == _plain(effectiveness(local, interval="hour").to_dict())
    body = answer.json()
    assert set(body["groups"]) == {"policy", "model", "action"} and body["latencies"]
    since = "2026-01-05T12:00:00Z"
    narrowed = httpx.get(
        f"{demo_url}/api/v1/effectiveness", params={"since": since, "namespace": "aiops.demo"}
    )
    expected = effectiveness(
        local, since=datetime(2026, 1, 5, 12, tzinfo=UTC), namespace="aiops.demo"
    ).to_dict()
    assert narrowed.json() == _plain(expected)
    assert sum(g["actions"] for g in narrowed.json()["groups"]["action"]) < sum(
        g["actions"] for g in body["groups"]["action"]
    )


def test_the_timeline_answers_what_the_query_answers(
    demo_url: str, local: Reader, demo_run: tuple[Path, DemoResult]
) -> None:
    result = demo_run[1]
    remediation = result.remediations[0]
    params = {
        "target": remediation.target,
        "since": "2026-01-05T10:00:00Z",
        "until": "2026-01-05T14:00:00+00:00",
    }
    answer = httpx.get(f"{demo_url}/api/v1/timeline", params=params)
    assert answer.status_code == 200
    expected = timeline(
        local,
        remediation.target,
        since=datetime(2026, 1, 5, 10, tzinfo=UTC),
        until=datetime(2026, 1, 5, 14, tzinfo=UTC),
    )
    assert answer.json() == _plain(expected.to_dict())
    runs = [mark["run"] for mark in answer.json()["marks"] if mark["kind"] == "action"]
    assert f"run:{remediation.run_id}" in runs
    listed = httpx.get(f"{demo_url}/api/v1/targets").json()
    assert listed == {"targets": targets(local)} and remediation.target in listed["targets"]
    assert httpx.get(f"{demo_url}/api/v1/timeline").json() == {"target": None, **listed}


@pytest.mark.parametrize(
    ("route", "params", "field"),
    [
        ("effectiveness", {"since": "yesterday"}, "since"),
        ("effectiveness", {"until": "2026-01-05"}, "until"),
        ("effectiveness", {"interval": "month"}, "interval"),
        ("effectiveness", {"since": "2026-01-06T00:00:00Z", "until": "2026-01-05T00:00:00Z"}, "until"),
        ("timeline", {"target": "svc-01", "since": "2026-13-01T00:00:00Z"}, "since"),
        ("timeline", {"target": "svc-01", "until": "soon"}, "until"),
        ("timeline", {"target": " "}, "target"),
        ("timeline", {"target": "svc\x00"}, "target"),
    ],
)
def test_bad_parameters_are_a_400_naming_them(
    demo_url: str, route: str, params: dict[str, str], field: str
) -> None:
    answer = httpx.get(f"{demo_url}/api/v1/{route}", params=params)
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert body["error"] == "invalid_request" and body["field"] == field and field in body["detail"]


def test_an_operator_token_gets_the_timeline_redacted_and_no_analytics(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'secret.db'}"
    now = datetime.now(UTC)
    with open_store(url) as store:
        tracer = Tracer("ops", store=store, sync=True)
        chain = record_secret_chain(tracer)
        tracer.close()
        operator, _ = create_token(store, name="op", role="operator", created_by="test", now=now)
        analyst, _ = create_token(store, name="an", role="analyst", created_by="test", now=now)
        admin, _ = create_token(store, name="ad", role="admin", created_by="test", now=now)
    trail = ListTrail()
    served = _serve(url, trail)
    base = next(served)
    try:
        shown = httpx.get(
            f"{base}/api/v1/timeline",
            params={"target": "svc-01"},
            headers={"Authorization": f"Bearer {operator}"},
        )
        full = httpx.get(
            f"{base}/api/v1/timeline",
            params={"target": "svc-01"},
            headers={"Authorization": f"Bearer {admin}"},
        )
        refused = httpx.get(f"{base}/api/v1/effectiveness", headers={"Authorization": f"Bearer {operator}"})
        allowed = httpx.get(f"{base}/api/v1/effectiveness", headers={"Authorization": f"Bearer {analyst}"})
    finally:
        next(served, None)
    assert shown.status_code == 200 and SECRET.encode() not in shown.content
    assert shown.json()["series"] == []
    assert [item["id"] for item in shown.json()["withheld"]] == chain.snapshots
    assert [point["value"] for point in full.json()["series"][0]["points"]] == [90.0, 91.0]
    assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
    assert allowed.status_code == 200 and allowed.json()["groups"]["policy"][0]["resolved"] == 1
    read = [event for event in trail if event.name == "incident-timeline"]
    assert [event.outcome for event in read] == ["redacted", "allowed"]
    assert set(chain.snapshots) <= set(read[0].nodes)
