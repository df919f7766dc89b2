"""The role-by-route matrix, generated: every route of a real server's ``/openapi.json``, called by
every role, no token, a revoked token, an expired token and a token of another namespace, each
answer checked against the one declared table (``opslineage.server.auth.ROUTE_PERMISSIONS``),
each refusal checked on the access trail; and the planted secret of a restricted snapshot, read
over HTTP with real tokens, reaches auditors and admins only.

The full matrix runs on SQLite; a slice of it on PostgreSQL.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import RunSql
from live import start_server
from opslineage import Tracer, open_store
from opslineage.governance import ROLES, AccessEvent, Permission, create_token, permissions_of, revoke
from opslineage.ledger.access_log import AccessLog
from opslineage.ledger.keys import load_private_key
from opslineage.ledger.log import checkpoint, init_log
from opslineage.server import ServerSettings, create_app
from opslineage.server.auth import ROUTE_PERMISSIONS, route_key
from planted import NAMESPACE, SecretChain, assert_no_secret, assert_secret_shown, record_secret_chain, routes

SHARED = "shared-s3cret"
OUTSIDERS = ("none", "revoked", "expired")
NODE_PARAMETERS = ("node_id", "action_id", "nodeId")


class ListTrail(list[AccessEvent]):
    """Access events kept in a list, in the order recorded, and in the store's access log."""

    def __init__(self, then: AccessLog) -> None:
        super().__init__()
        self.then = then

    def record(self, event: AccessEvent) -> None:
        """Keep ``event``, here and in the access log."""
        self.then.record(event)
        self.append(event)


@dataclass
class Served:
    """A live server over the planted chain, its trail and a secret per caller."""

    url: str
    chain: SecretChain
    trail: ListTrail
    secrets: dict[str, str | None]


def _serve(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    monkeypatch.setenv("OPSLINEAGE_KEY", str(tmp_path / "log.key"))
    now = datetime.now(UTC)
    with open_store(store_url) as store:
        init_log(store, origin="opslineage.test/matrix")
        tracer = Tracer(NAMESPACE, store=store, sync=True)
        chain = record_secret_chain(tracer)
        tracer.close()
        assert tracer.stats.errors == 0, tracer.stats.last_error
        checkpoint(store, load_private_key(tmp_path / "log.key"))
        secrets: dict[str, str | None] = {"none": None}
        for role in ROLES:
            secrets[role], _ = create_token(store, name=role, role=role, created_by="test", now=now)
        secrets["other"], _ = create_token(
            store, name="other", role="admin", namespaces=["elsewhere"], created_by="test", now=now
        )
        secrets["revoked"], _ = create_token(store, name="revoked", role="admin", created_by="test", now=now)
        revoke(store, "revoked", now)
        secrets["expired"], _ = create_token(
            store,
            name="expired",
            role="admin",
            lifetime=timedelta(minutes=1),
            created_by="test",
            now=now - timedelta(hours=1),
        )
    with open_store(store_url) as trail_store, AccessLog(trail_store) as access_log:
        trail = ListTrail(access_log)
        server, thread, url = start_server(ServerSettings(store=store_url, token=SHARED), trail=trail)
        yield Served(url, chain, trail, secrets)
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    yield from _serve(f"sqlite:///{tmp_path / 'lineage.db'}", tmp_path, monkeypatch)


@pytest.fixture
def served_postgres(postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    yield from _serve(postgres_url, tmp_path, monkeypatch)


def _headers(secret: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"} if secret else {}


def _event(namespace: str = NAMESPACE) -> dict[str, Any]:
    return {
        "eventType": "COMPLETE",
        "eventTime": "2026-01-05T13:00:00Z",
        "producer": "https://example.com/matrix",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": str(uuid.uuid4())},
        "job": {"namespace": namespace, "name": "matrix"},
        "inputs": [],
        "outputs": [{"namespace": namespace, "name": "matrix-out"}],
    }


def _operations(served: Served) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path template, OpenAPI operation) of every operation the server declares."""
    spec = httpx.get(f"{served.url}/openapi.json", headers=_headers(served.secrets["admin"])).json()
    return [(method.upper(), path, op) for path, item in spec["paths"].items() for method, op in item.items()]


def _request(served: Served, method: str, path: str, operation: dict[str, Any]) -> dict[str, Any]:
    """The arguments of one valid call of ``operation``: real ids, the required parameters, a body."""
    values = {
        "node_id": served.chain.action,
        "action_id": served.chain.action,
        "nodeId": served.chain.action,
        "seq": 1,
        "first": 1,
        "second": 2,
    }
    query = {}
    for parameter in operation.get("parameters", []):
        name = parameter["name"]
        if parameter["in"] == "path":
            path = path.replace(f"{{{name}}}", str(values[name]))
        elif parameter.get("required"):
            query[name] = values[name]
    call: dict[str, Any] = {"method": method, "url": f"{served.url}{path}", "params": query}
    if method == "POST":
        call["json"] = [_event()] if path.endswith("/batch") else _event()
    return call


def _expected(caller: str, key: tuple[str, str], operation: dict[str, Any]) -> int | str:
    """What ``caller`` must get from the route: 401, 403, or ``ok`` (a 2xx)."""
    permission = ROUTE_PERMISSIONS[key]
    if permission is None:
        return "ok"
    if caller in OUTSIDERS:
        return 401
    role = "admin" if caller == "other" else caller
    if permission not in permissions_of(role):
        return 403
    names_node = any(p["name"] in NODE_PARAMETERS for p in operation.get("parameters", []))
    if caller == "other" and (names_node or permission is Permission.WRITE_EVENTS):
        return 403
    return "ok"


def _check(served: Served, caller: str, method: str, path: str, operation: dict[str, Any]) -> list[str]:
    """Call the route as ``caller``; the mismatches with the table and the trail, as text."""
    key = route_key(method, path)
    expected = _expected(caller, key, operation)
    before = len(served.trail)
    answer = httpx.request(
        **_request(served, method, path, operation), headers=_headers(served.secrets[caller])
    )
    where = f"{caller} {method} {path}: {answer.status_code}"
    recorded = served.trail[before:]
    if expected == "ok":
        missing = answer.status_code == 404 and answer.json().get("error") == "not_found"
        if not (answer.is_success or missing):
            return [f"{where}, expected a 2xx (or a 404 of nothing there): {answer.text[:200]}"]
        events = 0 if ROUTE_PERMISSIONS[key] is None else 1
        if len(recorded) != events or any(e.outcome == "denied" for e in recorded):
            return [f"{where} recorded {recorded}, not {events} allowed or redacted event(s)"]
        return []
    problems = []
    body = answer.json() if answer.headers.get("content-type") == "application/json" else {}
    if answer.status_code != expected or body.get("error") not in ("unauthorized", "forbidden"):
        problems.append(f"{where}, expected {expected} with a JSON error: {answer.text[:200]}")
    if expected == 401 and not answer.headers.get("www-authenticate", "").startswith("Bearer"):
        problems.append(f"{where} without WWW-Authenticate: Bearer")
    if len(recorded) != 1 or recorded[0].outcome != "denied":
        return [*problems, f"{where} recorded {recorded} on the trail, not one denied event"]
    event = recorded[0]
    actor, role = (
        ("anonymous", None)
        if expected == 401
        else (f"token:{caller}", "admin" if caller == "other" else caller)
    )
    if (event.actor, event.role) != (actor, role) or not (event.client or "").startswith("127.0.0.1:"):
        problems.append(f"{where} recorded {event}, not actor {actor} role {role} from 127.0.0.1")
    if not event.reason or event.reason != body.get("detail"):
        problems.append(f"{where} recorded reason {event.reason!r}, answered {body.get('detail')!r}")
    return problems


def test_every_route_has_a_row_and_every_row_a_route(tmp_path: Path) -> None:
    app = create_app(ServerSettings(store=f"sqlite:///{tmp_path / 'empty.db'}"))
    declared = {
        route_key(method, route.path)  # type: ignore[attr-defined]
        for route in app.routes
        for method in getattr(route, "methods", ())
        if method != "HEAD"
    }
    assert declared - ROUTE_PERMISSIONS.keys() == set(), "routes without a permission row"
    assert ROUTE_PERMISSIONS.keys() - declared == set(), "rows without a route"
    assert [key for key, permission in ROUTE_PERMISSIONS.items() if permission is None] == [
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/"),  # a redirect to the catalog, which is not open
        ("GET", "/sign-in"),
        ("POST", "/sign-in"),
        ("POST", "/sign-out"),
    ]


def test_the_generated_matrix_matches_the_table_and_the_trail(served: Served) -> None:
    operations = _operations(served)
    assert len(operations) >= 15
    missing = [(m, p) for m, p, _ in operations if route_key(m, p) not in ROUTE_PERMISSIONS]
    assert missing == [], f"routes of /openapi.json without a row in ROUTE_PERMISSIONS: {missing}"
    problems = [
        problem
        for caller in (*ROLES, "other", *OUTSIDERS)
        for method, path, operation in operations
        for problem in _check(served, caller, method, path, operation)
    ]
    assert problems == []
    denied = [event for event in served.trail if event.outcome == "denied"]
    assert {event.reason for event in denied} >= {
        "no bearer token was presented",
        f"token 'revoked' was revoked at {_first_reason(denied, 'revoked')}",
        f"token 'expired' expired at {_first_reason(denied, 'expired')}",
    }
    assert any(event.target == served.chain.action and event.actor == "token:other" for event in denied)
    recorded = repr(served.trail)
    assert not [caller for caller, secret in served.secrets.items() if secret and secret in recorded]


def _first_reason(events: list[AccessEvent], name: str) -> str:
    """The time named in the first refusal of the token ``name``."""
    prefix = f"token '{name}' "
    reason = next(e.reason for e in events if e.reason and e.reason.startswith(prefix))
    return reason.rsplit(" at ", 1)[1]


def test_the_openapi_document_itself_needs_a_token(served: Served) -> None:
    refused = httpx.get(f"{served.url}/openapi.json")
    assert refused.status_code == 401 and refused.json()["error"] == "unauthorized"
    assert httpx.get(f"{served.url}/openapi.json", headers=_headers(served.secrets["operator"])).is_success
    assert httpx.get(f"{served.url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{served.url}/readyz").json()["status"] == "ready"


def test_the_scheme_is_case_insensitive_and_a_malformed_header_is_a_401(served: Served) -> None:
    operator = served.secrets["operator"]
    url = f"{served.url}/api/v1/nodes"
    assert httpx.get(url, headers={"Authorization": f"bEaReR {operator}"}).is_success
    for header in (f"Basic {operator}", str(operator), "Bearer", "Bearer olt_", "Bearer " + "x" * 5000):
        answer = httpx.get(url, headers={"Authorization": header})
        assert answer.status_code == 401, header[:20]
        assert operator not in answer.text


def test_a_namespaced_token_writes_and_lists_only_its_namespaces(served: Served) -> None:
    other = _headers(served.secrets["other"])
    before = httpx.get(f"{served.url}/readyz").json()["events"]
    mixed = [_event("elsewhere"), _event(NAMESPACE)]
    refused = httpx.post(f"{served.url}/api/v1/lineage/batch", json=mixed, headers=other)
    assert refused.status_code == 403 and "not ops" in refused.json()["detail"]
    assert httpx.get(f"{served.url}/readyz").json()["events"] == before, "a refused batch stored events"
    accepted = httpx.post(f"{served.url}/api/v1/lineage", json=_event("elsewhere"), headers=other)
    assert accepted.status_code == 201
    listed = httpx.get(f"{served.url}/api/v1/nodes", params={"limit": 1000}, headers=other).json()["nodes"]
    namespaces = {node.get("namespace") for node in listed}
    assert "elsewhere" in namespaces and namespaces <= {"elsewhere", None}  # agents and models have none
    everything = httpx.get(
        f"{served.url}/api/v1/nodes", params={"limit": 1000}, headers=_headers(served.secrets["admin"])
    )
    assert NAMESPACE in {node.get("namespace") for node in everything.json()["nodes"]}
    asked = httpx.get(f"{served.url}/api/v1/quality", params={"namespace": NAMESPACE}, headers=other)
    assert asked.status_code == 403


def test_the_shared_secret_still_ingests_and_reads_nothing(
    served: Served, tmp_path: Path, run_sql: RunSql
) -> None:
    shared = {"Authorization": f"Bearer {SHARED}"}
    assert httpx.post(f"{served.url}/api/v1/lineage", json=_event(), headers=shared).status_code == 201
    assert httpx.get(f"{served.url}/api/v1/nodes", headers=shared).status_code == 403
    assert served.trail[-1].actor == "shared-secret" and served.trail[-1].outcome == "denied"
    producer = _headers(served.secrets["producer"])
    assert httpx.post(f"{served.url}/api/v1/lineage", json=_event(), headers=producer).status_code == 201
    actors = run_sql(f"sqlite:///{tmp_path / 'lineage.db'}", "SELECT actor FROM batches ORDER BY id")
    assert [actor for (actor,) in actors[-2:]] == ["http:token", "http:producer"]
    assert served.trail[-1].actor == "token:producer" and served.trail[-1].outcome == "allowed"


def test_a_revoked_token_is_refused_within_the_cache_time(served: Served, tmp_path: Path) -> None:
    headers = _headers(served.secrets["analyst"])
    assert httpx.get(f"{served.url}/api/v1/nodes", headers=headers).is_success
    with open_store(f"sqlite:///{tmp_path / 'lineage.db'}") as store:
        revoke(store, "analyst", datetime.now(UTC))
    deadline = time.monotonic() + 3
    while httpx.get(f"{served.url}/api/v1/nodes", headers=headers).status_code != 401:
        assert time.monotonic() < deadline, "the revoked token still works after 3 s"
        time.sleep(0.1)


@pytest.mark.parametrize("role", ["operator", "analyst", "producer"])
def test_uncleared_tokens_never_read_the_planted_secret_over_http(served: Served, role: str) -> None:
    answered = assert_no_secret(_fetch(served, role), _http_routes(served.chain))
    if role == "producer":
        assert answered == []
    else:
        assert f"/api/v1/why/{served.chain.action}" in answered and len(answered) >= 10
        assert any(event.outcome == "redacted" and event.actor == f"token:{role}" for event in served.trail)


@pytest.mark.parametrize("role", ["auditor", "admin"])
def test_auditor_and_admin_tokens_read_the_planted_secret_over_http(served: Served, role: str) -> None:
    chain = served.chain
    assert_secret_shown(
        _fetch(served, role),
        [
            f"/api/v1/why/{chain.action}",
            f"/api/v1/nodes/{chain.snapshots[0]}",
            f"/api/v1/bundle/{chain.action}",
        ],
    )


def _http_routes(chain: SecretChain) -> list[str]:
    return [route for route in routes(chain) if route.startswith("/api/")]


def _fetch(served: Served, caller: str) -> Any:
    headers = _headers(served.secrets[caller])

    def fetch(route: str) -> bytes:
        answer = httpx.get(f"{served.url}{route}", headers=headers)
        assert answer.status_code in (200, 403), f"{route}: {answer.status_code} {answer.text[:200]}"
        return answer.content

    return fetch


@pytest.mark.parametrize("caller", ["operator", "producer", "other", "none", "revoked"])
def test_a_slice_of_the_matrix_on_postgres(served_postgres: Served, caller: str) -> None:
    slice_of = {
        ("GET", "/api/v1/why/{node_id}"),
        ("GET", "/api/v1/nodes"),
        ("GET", "/api/v1/bundle/{action_id}"),
        ("POST", "/api/v1/lineage"),
        ("GET", "/readyz"),
    }
    operations = [op for op in _operations(served_postgres) if route_key(op[0], op[1]) in slice_of]
    assert len(operations) == len(slice_of)
    problems = [
        problem
        for method, path, op in operations
        for problem in _check(served_postgres, caller, method, path, op)
    ]
    assert problems == []


def test_auditors_read_the_refusals_in_the_access_log_over_http(served: Served) -> None:
    assert httpx.get(f"{served.url}/api/v1/nodes").status_code == 401
    auditor = _headers(served.secrets["auditor"])
    denied = httpx.get(f"{served.url}/api/v1/access-log", params={"outcome": "denied"}, headers=auditor)
    assert denied.status_code == 200
    [refusal] = [e for e in denied.json() if e["reason"] == "no bearer token was presented"]
    assert refusal["actor"] == "anonymous" and refusal["client"].startswith("127.0.0.1:")
    proof = httpx.get(
        f"{served.url}/api/v1/access-log/proof/inclusion", params={"seq": refusal["seq"]}, headers=auditor
    )
    assert proof.status_code == 200 and proof.json()["leaf_index"] == refusal["seq"] - 1
    assert served.trail[-1].name == "access-log-inclusion" and served.trail[-2].name == "access-log"
    operator = _headers(served.secrets["operator"])
    assert httpx.get(f"{served.url}/api/v1/access-log", headers=operator).status_code == 403
    bad = httpx.get(f"{served.url}/api/v1/access-log", params={"outcome": "maybe"}, headers=auditor)
    assert bad.status_code == 400 and "outcome must be one of" in bad.json()["detail"]
