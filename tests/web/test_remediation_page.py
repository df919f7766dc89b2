"""The remediation page in Chromium: the why-chain drawn layer by layer with the versions and
digests the API answers, the proof badge checked by the browser (and failing on a proof of another
leaf or a tampered checkpoint), the evidence downloads, redaction by role, JavaScript off, a chain
of 500 snapshots; and the two evidence routes it uses (the leaf's bytes, the in-toto statement)."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from browsing import CHROMIUM, CHROMIUM_ARGS, ORIGINS, Site, axe_violations, sign_in
from helpers import T0
from live import start_server
from opslineage import Tracer, open_store
from opslineage.model import parse_event
from opslineage.server import ServerSettings

BADGE = "#proof-badge"


def _an_action(page: Any, site: Site) -> str:
    """The id of the first action the catalog lists."""
    page.goto(f"{site.url}/catalog?kind=action")
    href = page.locator("table.results tbody tr a").first.get_attribute("href")
    assert href is not None and href.startswith("/nodes/run:")
    return href.removeprefix("/nodes/")


def _verdict(page: Any) -> tuple[str, str]:
    # a locator, not wait_for_function: Playwright before 1.5x evaluates a string predicate with
    # eval, which the page's Content-Security-Policy refuses
    page.locator(f"{BADGE}:is([data-state=verified], [data-state=failed], [data-state=unable])").wait_for()
    badge = page.locator(BADGE)
    return str(badge.get_attribute("data-state")), badge.inner_text()


def _short(digest: str) -> str:
    algorithm, _, value = digest.partition(":")
    return f"{algorithm}:{value[:12]}"


def test_the_page_draws_the_seven_layers_as_the_api_answers_and_the_browser_verifies_the_proof(
    page: Any, open_site: Site
) -> None:
    action = _an_action(page, open_site)
    page.goto(f"{open_site.url}/remediations/{action}")
    why = httpx.get(f"{open_site.url}/api/v1/why/{action}").json()
    box = lambda node_id: page.locator(f'svg.graph [data-node="{node_id}"] title')  # noqa: E731
    singles = {
        "feature set": (why["features"], why["features"]["transform"]["code_version"][:20]),
        "prediction": (why["prediction"], why["model"]["version"]),
        "decision": (why["decision"], f"{why['policy']['name']}@{why['policy']['version']}"),
        "action": (why["action"], why["action"]["type"]),
        "effect": (why["effects"][0], why["effects"][0]["outcome"]),
    }
    for kind, (link, version) in singles.items():
        text = box(link["id"]).text_content()
        assert text.startswith(kind) and version in text and _short(link["digest"]) in text, (kind, text)
    assert "svc-02" in box(why["sources"][0]["id"]).text_content()
    assert len(why["snapshots"]) == 12  # over 8: drawn as one group box
    assert f"{len(why['snapshots'])} snapshots of" in box("snapshots").text_content()
    table = page.locator("table.links")
    for link in why["snapshots"]:
        assert table.locator(f'tr[data-node="{link["id"]}"]').inner_text().endswith(link["digest"])
    assert f"{why['model']['name']}@{why['model']['version']}" in page.inner_text("dl.versions")
    assert why["policy"]["rule"] in page.inner_text("code.rule")
    assert page.locator("table.breaches tbody tr").count() == len(why["decision"]["breaches"])
    assert page.locator("table.frozen .holds").count() == 6  # every cause the action recorded is the chain's
    state, text = _verdict(page)
    signed = httpx.get(f"{open_site.url}/api/v1/log/checkpoint").json()
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(signed["public_key"]))
    assert state == "verified", text
    assert f"against checkpoint {signed['tree_size']} signed by {signed['origin']}" in text
    assert base64.b64decode(signed["signature"])[:4].hex() in text
    assert page.get_attribute(BADGE, "data-public-key") == signed["public_key"] and key is not None
    assert axe_violations(page) == []
    page.click("#all-snapshots")
    assert page.locator("svg.graph .node.snapshot").count() == 12


def test_a_proof_of_another_leaf_fails_the_badge(page: Any, open_site: Site) -> None:
    action = _an_action(page, open_site)

    def another(route: Any) -> None:
        asked = dict(part.split("=") for part in route.request.url.split("?")[1].split("&"))
        other = httpx.get(
            f"{open_site.url}/api/v1/log/proof/inclusion", params={"seq": 1, "tree_size": asked["tree_size"]}
        ).json()
        other["leaf_index"] = int(asked["seq"]) - 1  # it claims to be the action's
        route.fulfill(status=200, content_type="application/json", body=json.dumps(other))

    page.route("**/api/v1/log/proof/inclusion*", another)
    page.goto(f"{open_site.url}/remediations/{action}")
    state, text = _verdict(page)
    assert state == "failed" and "does not lead from this action's leaf" in text, text


def test_a_tampered_checkpoint_signature_fails_the_badge(page: Any, open_site: Site) -> None:
    action = _an_action(page, open_site)

    def tampered(route: Any) -> None:
        signed = httpx.get(f"{open_site.url}/api/v1/log/checkpoint").json()
        signature = bytearray(base64.b64decode(signed["signature"]))
        signature[-1] ^= 0x01  # the key id (first 4 bytes) kept, the signature changed
        forged = base64.b64encode(bytes(signature)).decode()
        signed["note"] = signed["note"].replace(signed["signature"], forged)
        route.fulfill(status=200, content_type="application/json", body=json.dumps(signed))

    page.route("**/api/v1/log/checkpoint", tampered)
    page.goto(f"{open_site.url}/remediations/{action}")
    state, text = _verdict(page)
    assert state == "failed" and "Ed25519 signature does not verify" in text, text


def test_the_bundle_and_the_in_toto_statement_download_as_json_naming_the_action(
    page: Any, open_site: Site, tmp_path: Path
) -> None:
    action = _an_action(page, open_site)
    page.goto(f"{open_site.url}/remediations/{action}")
    with page.expect_download() as bundle:
        page.click("text=Download the audit bundle")
    document = json.loads(Path(bundle.value.path()).read_text())
    assert document["format"] == "opslineage-bundle/1" and document["action"] == action
    with page.expect_download() as intoto:
        page.click("text=Download the in-toto statement")
    envelope = json.loads(Path(intoto.value.path()).read_text())
    statement = json.loads(base64.b64decode(envelope["payload"]))
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    assert statement["predicate"]["action"] == action


def test_an_operator_sees_the_restricted_snapshots_redacted_and_an_auditor_sees_them_whole(
    page: Any, guarded_site: Site
) -> None:
    sign_in(page, guarded_site, "operator")
    action = _an_action(page, guarded_site)
    page.goto(f"{guarded_site.url}/remediations/{action}?snapshots=all")
    redacted = page.locator("svg.graph .node.redacted")
    assert redacted.count() == 12 and "redacted (" in redacted.first.locator("title").text_content()
    assert page.locator("table.links tr.redacted").count() == 12
    assert "may not download" in page.inner_text(".proof")
    state, text = _verdict(page)  # the action's own event is not restricted: it still proves
    assert state == "verified", text
    page.click("text=Sign out")
    sign_in(page, guarded_site, "auditor")
    page.goto(f"{guarded_site.url}/remediations/{action}?snapshots=all")
    assert page.locator("svg.graph .node.redacted").count() == 0
    assert page.locator("svg.graph .node.snapshot").count() == 12
    assert page.locator("text=Download the audit bundle").count() == 1


def test_with_javascript_off_the_badge_points_to_the_cli_and_the_group_expands_by_a_link(
    browser: Any, open_site: Site
) -> None:
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(f"{open_site.url}/catalog?kind=action")
        action = str(page.locator("table.results tbody tr a").first.get_attribute("href")).removeprefix(
            "/nodes/"
        )
        page.goto(f"{open_site.url}/remediations/{action}")
        text = page.inner_text(BADGE)
        assert "needs JavaScript" in text and "opslineage proof inclusion" in text and "verify-bundle" in text
        assert "Compare that key with the one you pinned" in page.inner_text(".proof")
        page.click("#all-snapshots")
        assert page.url.endswith("?snapshots=all")
        assert page.locator("svg.graph .node.snapshot").count() == 12
    finally:
        context.close()


def test_off_a_secure_context_the_badge_says_it_cannot_check_here(browser: Any, open_site: Site) -> None:
    port = open_site.url.rsplit(":", 1)[1]
    mapped = "--host-resolver-rules=MAP remediation.test 127.0.0.1"  # a name that is not loopback
    other = browser.browser_type.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, mapped])
    try:
        page = other.new_page()
        action = httpx.get(f"{open_site.url}/api/v1/nodes", params={"kind": "action"}).json()["nodes"][0][
            "id"
        ]
        page.goto(f"http://remediation.test:{port}/remediations/{action}")
        assert page.evaluate("window.isSecureContext") is False
        state, text = _verdict(page)
        assert state == "unable" and text.startswith(
            "cannot check here: this page is not a secure context"
        ), text
    finally:
        other.close()


def test_a_decision_that_did_not_fire_has_a_page_without_an_action(page: Any, open_site: Site) -> None:
    decisions = httpx.get(f"{open_site.url}/api/v1/nodes", params={"kind": "decision", "limit": 1000}).json()
    held = next(
        node["id"]
        for node in decisions["nodes"]
        if httpx.get(f"{open_site.url}/api/v1/why/{node['id']}").json()["action"] is None
    )
    page.goto(f"{open_site.url}/remediations/{held}")
    assert "did not fire" in page.inner_text("main")
    assert page.locator(BADGE).count() == 0 and page.locator(f'svg.graph [data-node="{held}"]').count() == 1
    missing = httpx.get(f"{open_site.url}/remediations/run:00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/html")


def _record_long_chain(tracer: Tracer, snapshots: int) -> str:
    """A remediation whose features come from ``snapshots`` snapshots; its action's run id."""
    clock = iter(T0 + timedelta(hours=1, seconds=i) for i in range(100_000))
    tracer.clock = lambda: next(clock)
    source = tracer.source("svc-big", owner="team-a")
    taken = []
    fields = {"timestamp": "datetime", "cpu": "float"}
    with tracer.ingest(source) as step:
        for i in range(snapshots):
            when = T0 + timedelta(seconds=i)
            taken.append(
                step.snapshot([[tracer.timestamp(when), 90.0]], fields, when, when + timedelta(seconds=1))
            )
    with tracer.features(_mean, taken, subject="svc-big") as step:
        features = step.feature_set({"cpu_mean": 90.0}, T0, T0 + timedelta(seconds=snapshots))
    model = tracer.model("detector", "1", b"model bytes", "robust-z")
    tracer.register_model(model, approver="mlops:bob")
    policy = tracer.policy(
        "cpu-guard", "1", rule="cpu_mean > {cpu_mean}", thresholds={"cpu_mean": 85.0}, action="scale_out"
    )
    tracer.register_policy(policy, approver="alice")
    with tracer.inference(model, features, subject="svc-big") as step:
        prediction = step.prediction(6.5, "anomaly", {"cpu_mean": 6.5})
    with tracer.evaluate(policy, prediction, subject="svc-big") as step:
        step.decide(
            True, "cpu_mean 90 > 85", [{"input": "cpu_mean", "value": 90.0, "op": ">", "threshold": 85.0}]
        )
        with tracer.action("scale_out", target="svc-big") as action:
            pass
    return "run:" + action.run_id


def _mean(rows: list[dict[str, float]]) -> dict[str, float]:
    """Mean CPU over the window."""
    return {"cpu_mean": sum(row["cpu"] for row in rows) / len(rows)}


@pytest.fixture(scope="module")
def long_chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A server on a store holding one chain of 500 snapshots, and its action's id."""
    url = f"sqlite:///{tmp_path_factory.mktemp('long-chain') / 'lineage.db'}"
    tracer = Tracer.in_memory()
    action = _record_long_chain(tracer, 500)
    with open_store(url) as store:
        store.ingest([parse_event(event) for event in tracer.transport.events])  # type: ignore[attr-defined]
    server, thread, base = start_server(ServerSettings(store=url))
    ORIGINS.add(base)
    yield base, action
    server.should_exit = True
    thread.join(timeout=10)


def test_a_chain_of_500_snapshots_draws_one_group_box_until_asked_for_all(
    page: Any, long_chain: tuple[str, str]
) -> None:
    base, action = long_chain
    page.goto(f"{base}/remediations/{action}")
    assert page.locator("svg.graph .node.snapshot").count() == 0
    assert (
        "500 snapshots of svc-big" in page.locator('svg.graph [data-node="snapshots"] title').text_content()
    )
    assert "no key yet" in page.inner_text(".proof")  # this store's log has no key: nothing to check
    page.click("#all-snapshots")
    assert page.locator("svg.graph .node.snapshot").count() == 500
    assert page.locator("table.links tbody tr").count() == 500 + 5  # and the source, features … action


def test_the_leaf_route_answers_the_bytes_whose_hash_the_inclusion_proof_starts_from(open_site: Site) -> None:
    with httpx.Client(base_url=open_site.url) as client:
        signed = client.get("/api/v1/log/checkpoint").json()
        for seq in (1, signed["tree_size"]):
            leaf = client.get("/api/v1/log/leaf", params={"seq": seq}).json()
            proof = client.get("/api/v1/log/proof/inclusion", params={"seq": seq}).json()
            data = base64.b64decode(leaf["data"])
            assert hashlib.sha256(b"\x00" + data).hexdigest() == proof["leaf_hash"]
            assert data.startswith(b"opslineage-leaf/2\n") and data[18:50].hex() == leaf["digest"][7:]
            assert leaf["seq"] == seq and json.loads(data[50:])["eventTime"] == leaf["event"]["eventTime"]
        for bad in ("0", str(signed["tree_size"] + 10**6), "x", "1\x00"):
            refused = client.get("/api/v1/log/leaf", params={"seq": bad})
            assert refused.status_code == 400 and refused.json()["error"] == "invalid_request"


def test_the_leaf_of_a_restricted_event_is_refused_to_an_operator(guarded_site: Site) -> None:
    as_role = {role: {"Authorization": f"Bearer {token}"} for role, token in guarded_site.tokens.items()}
    with httpx.Client(base_url=guarded_site.url) as client:
        action = client.get("/api/v1/nodes", params={"kind": "action"}, headers=as_role["auditor"]).json()
        bundle = client.get(f"/api/v1/bundle/{action['nodes'][0]['id']}", headers=as_role["auditor"]).json()
        why = client.get(f"/api/v1/why/{action['nodes'][0]['id']}", headers=as_role["auditor"]).json()
        snapshot_run = why["snapshots"][0]["run"].removeprefix("run:")
        seq = next(
            e["seq"]
            for e in bundle["events"]
            if e["event"]["run"]["runId"] == snapshot_run and e["event"]["eventType"] == "COMPLETE"
        )
        refused = client.get("/api/v1/log/leaf", params={"seq": seq}, headers=as_role["operator"])
        assert refused.status_code == 403 and "redacted" in refused.json()["detail"]
        assert (
            client.get("/api/v1/log/leaf", params={"seq": seq}, headers=as_role["auditor"]).status_code == 200
        )


def test_the_in_toto_route_signs_with_the_log_key_and_needs_bundles_read(guarded_site: Site) -> None:
    with httpx.Client(base_url=guarded_site.url) as client:
        auditor = {"Authorization": f"Bearer {guarded_site.tokens['auditor']}"}
        action = client.get("/api/v1/nodes", params={"kind": "action"}, headers=auditor).json()["nodes"][0][
            "id"
        ]
        path = f"/api/v1/intoto/{quote(action, safe=':')}"
        operator = client.get(path, headers={"Authorization": f"Bearer {guarded_site.tokens['operator']}"})
        assert operator.status_code == 403 and operator.json()["error"] == "forbidden"
        answer = client.get(path, headers=auditor)
        assert answer.status_code == 200 and "attachment" in answer.headers["content-disposition"]
        envelope = answer.json()
        public = client.get("/api/v1/log/checkpoint", headers=auditor).json()["public_key"]
        missing = client.get("/api/v1/intoto/run:00000000-0000-0000-0000-000000000000", headers=auditor)
        assert missing.status_code == 404
    payload = base64.b64decode(envelope["payload"])
    kind = envelope["payloadType"].encode()
    signed = b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public))
    key.verify(base64.b64decode(envelope["signatures"][0]["sig"]), signed)  # raises if it does not hold
