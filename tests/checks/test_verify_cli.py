"""``opslineage verify --layers`` and ``rules register`` from the command line: the demo passes
every layer, registered rules apply from their registration on, and bad input is exit 2."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from helpers import record_chain
from opslineage import Tracer, open_store
from opslineage.cli.main import main
from opslineage.demo import DemoConfig, run_demo

RULES = """
name = "prod-governance"

[[rule]]
id = "high-risk-needs-approver"
require = "approver"
risk_class = "high"

[[rule]]
id = "at-most-one-scale-out-an-hour"
require = "max_actions"
count = 1
per = "1h"
action = "scale_out"
"""


def _verify(store: str, capsys: pytest.CaptureFixture[str], *flags: str) -> tuple[int, dict]:
    capsys.readouterr()
    status = main(["verify", "--store", store, "--json", *flags])
    return status, json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_every_demo_seed_passes_every_layer(
    seed: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    with open_store(url) as store:
        result = run_demo(store, DemoConfig(seed=seed, hours=12))
    assert result.remediations, "the run acted at least once: its chains are judged"
    status, answer = _verify(url, capsys, "--layers", "all")
    layers = answer["layers"]
    assert (status, layers["findings"]) == (0, []), layers["findings"][:5]
    assert set(layers["checks"]) == {"integrity", "data", "model", "policy"}
    assert all(figures["run"] == figures["passed"] > 0 for figures in layers["checks"].values())
    assert answer["events_checked"] == layers["checks"]["integrity"]["run"] == result.emitted


def test_registered_rules_apply_to_actions_from_their_registration_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    with open_store(url) as store:
        tracer = Tracer("test", store=store, sync=True)
        chain = record_chain(tracer)  # a scale_out on 2026-01-05, before the rules
        assert main(["rules", "register", str(rules), "--store", url, "--steward", "governance:carol"]) == 0
        assert "registered prod-governance: 2 rule(s)" in capsys.readouterr().out
        assert _verify(url, capsys)[0] == 0, "the rules were not in force on 2026-01-05"
        later = datetime.now(UTC) + timedelta(days=1)
        actions = []
        for minutes in (0, 10):
            tracer.clock = iter(later + timedelta(minutes=minutes, seconds=i) for i in range(9)).__next__
            with tracer.action(
                "scale_out", target="svc-01", params={"replicas": 2}, decision=chain.decision
            ) as step:
                pass
            assert step.record is not None
            actions.append(step.record)
    status, answer = _verify(url, capsys, "--layers", "policy")
    assert status == 1 and "events_checked" not in answer, "integrity was not asked for"
    second = ("rule:at-most-one-scale-out-an-hour", f"entity:{actions[1].digest}")
    assert [(f["check"], f["node"]) for f in answer["layers"]["findings"]] == [second]
    status, answer = _verify(
        url, capsys, "--layers", "policy", "--since", (later + timedelta(minutes=5)).isoformat()
    )
    assert status == 1 and [(f["check"], f["node"]) for f in answer["layers"]["findings"]] == [second]
    assert (
        _verify(url, capsys, "--layers", "policy", "--since", (later + timedelta(hours=1)).isoformat())[0]
        == 0
    )


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--layers", "data,taste"], "--layers 'data,taste': unknown layer 'taste'"),
        (["--layers", ""], "no layer named"),
        (["--since", "yesterday"], "--since 'yesterday' is not an ISO 8601 time"),
        (["--rules", "absent.toml"], "cannot read rules file absent.toml"),
    ],
)
def test_bad_options_are_exit_2_naming_what_was_wrong(
    flags: list[str],
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 's.db'}"
    with open_store(url) as store:
        record_chain(Tracer("test", store=store, sync=True))
    assert main(["verify", "--store", url, *flags]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name = 'x'\n[[rule]]\nid = 'a'\nrequire = 'vibes'\n", "require must be one of approver"),
        (
            "name = 'x'\n[[rule]]\nid = 'a'\nrequire = 'max_actions'\ncount = 0\nper = '1h'\n",
            "count, a whole number",
        ),
        (
            "name = 'x'\n[[rule]]\nid = 'a'\nrequire = 'max_actions'\ncount = 2\nper = 'hourly'\n",
            "per, a duration",
        ),
        (
            "name = 'x'\n[[rule]]\nid = 'a'\nrequire = 'approver_role'\nrole = 'op'\n",
            "a role listed under [roles]",
        ),
        ("name = 'x'\n[[rule]]\nid = 'a'\nrequire = 'approver'\ncolour = 'red'\n", "unknown key 'colour'"),
        ("[[rule]]\nid = 'a'\nrequire = 'approver'\n", "give the rule set a name"),
        ("name = 'x'\n[[rule\n", "not a TOML file"),
    ],
)
def test_a_bad_rules_file_is_refused_and_nothing_is_registered(
    text: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    rules = tmp_path / "rules.toml"
    rules.write_text(text)
    assert main(["rules", "register", str(rules), "--store", url]) == 2
    assert message in capsys.readouterr().err
    with open_store(url) as store:
        assert store.log_size() == 0


def test_an_integrity_finding_is_named_like_every_other(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], run_sql: Any
) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    with open_store(url) as store:
        record_chain(Tracer("test", store=store, sync=True))
    run_sql(
        url,
        "UPDATE events SET body = replace(body, X'7376632d3031', X'7376632d3039') WHERE seq = 2",
        tamper=True,
    )
    status, answer = _verify(url, capsys)
    findings = answer["layers"]["findings"]
    assert status == 1 and findings and {f["layer"] for f in findings} == {"integrity"}
    assert findings[0]["check"] == "log" and findings[0]["node"] == "seq 2"
    assert answer["layers"]["checks"]["integrity"]["passed"] < answer["layers"]["checks"]["integrity"]["run"]
