"""The whole journey (R15): the demo's every remediation traces back to its sources, with the model
and policy versions that were in force when it was decided, and forward to its effect."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from opslineage import open_store
from opslineage.cli.main import main
from opslineage.demo import DemoConfig, DemoResult, run_demo
from opslineage.query import list_nodes, why

NAB = Path(__file__).parents[2] / "tests" / "data" / "nab"


def test_every_action_has_a_complete_why_chain_with_the_versions_in_force(
    demo_run: tuple[Path, DemoResult],
) -> None:
    path, result = demo_run
    assert len(result.remediations) >= 3
    assert len({v for versions in result.model_versions.values() for v, _ in versions}) == 2
    assert len(result.policy_versions["cpu-guard"]) == 2
    with open_store(f"sqlite:///{path}", create=False) as store:
        actions = list_nodes(store, "action", limit=1000)
        assert len(actions) == len(result.remediations)
        for action in actions:
            chain = why(store, action.id)
            assert chain.complete, (action.id, chain.missing)
            decided = datetime.fromisoformat(chain.decision["decided_at"])  # type: ignore[index]
            policy_name = chain.policy["name"]  # type: ignore[index]
            assert chain.policy["id"] == DemoResult.in_force(result.policy_versions[policy_name], decided)  # type: ignore[index]
            model_name = chain.model["name"]  # type: ignore[index]
            assert chain.model["id"] == DemoResult.in_force(result.model_versions[model_name], decided)  # type: ignore[index]
            assert chain.action["policy_digest"] == chain.policy["digest"]  # type: ignore[index]
            assert chain.prediction["features"] == chain.features["digest"][:]  # type: ignore[index]
            assert len(chain.snapshots) == 12
            assert [s["id"] for s in chain.sources] == [f"source:aiops.demo:{chain.action['target']}"]  # type: ignore[index]
            assert all(snapshot["source"] == chain.sources[0]["id"] for snapshot in chain.snapshots)
            assert len(chain.effects) == (1 if chain.action["status"] == "succeeded" else 0)  # type: ignore[index]


def test_the_demo_remediates_its_incidents(demo_run: tuple[Path, DemoResult]) -> None:
    _, result = demo_run
    fixed = {(r.target, r.incident) for r in result.remediations if r.outcome == "resolved" and r.incident}
    assert len(fixed) >= result.incidents - 1
    assert result.not_fired > 0 and result.decisions > len(result.remediations)


def test_the_demo_is_deterministic_and_rerunning_adds_nothing(
    demo_run: tuple[Path, DemoResult], tmp_path: Path
) -> None:
    path, _ = demo_run
    with open_store(f"sqlite:///{path}") as store:
        before = store.counts()
        again = run_demo(store, DemoConfig())
        assert store.counts() == before == again.counts


def test_a_schema_change_is_recorded_in_the_demo(demo_run: tuple[Path, DemoResult]) -> None:
    path, _ = demo_run
    with open_store(f"sqlite:///{path}", create=False) as store:
        changed = [
            e
            for e in store.edges(
                [n.id for n in list_nodes(store, "snapshot", limit=5000)],
                direction="up",
                kinds=["wasDerivedFrom"],
            )
            if e[3] == "schema_change"
        ]
        assert len(changed) == 1


def test_demo_command_prints_summary_and_a_why_chain(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = f"sqlite:///{tmp_path / 'small.db'}"
    assert main(["demo", "--services", "3", "--hours", "12", "--seed", "3", "--store", db]) == 0
    out = capsys.readouterr().out
    assert "lineage events" in out and "Remediations:" in out and "Why did run:" in out
    assert main(["demo", "--services", "3", "--hours", "12", "--seed", "3", "--store", db, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["why"]["complete"] is True


def test_demo_replays_real_telemetry_and_records_file_digests(tmp_path: Path) -> None:
    files = sorted(NAB.glob("*.csv"))
    assert files, "NAB test data is missing"
    with open_store(f"sqlite:///{tmp_path / 'nab.db'}") as store:
        result = run_demo(store, DemoConfig(telemetry_csv=files, hours=72))
        snapshots = list_nodes(store, "snapshot", limit=3)
        digests = store.artifacts([s.digest for s in snapshots if s.digest])
        assert all(json.loads(content)["file_digest"].startswith("sha256:") for content in digests.values())
        assert {s.name for s in list_nodes(store, "source")} == {f.stem for f in files}
        assert len(result.model_versions) == len(files)
        for action in list_nodes(store, "action", limit=100):
            assert why(store, action.id).complete


def test_a_malformed_csv_is_exit_2_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,value\n2014-02-14 14:30:00,abc\n")
    assert main(["demo", "--telemetry-csv", str(bad), "--store", f"sqlite:///{tmp_path / 'x.db'}"]) == 2
    assert "bad.csv" in capsys.readouterr().err
