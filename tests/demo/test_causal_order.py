"""Every demo and replay records causally ordered why-chains (issue 12, "Replay on a true clock").

Replayed files of different date ranges are shifted onto one timeline (the shift is recorded on
each snapshot and shown by ``why``), so the whole run has one clock: for every action, its inputs
were measured before its features were computed, the model and policy versions it names were
trained and registered before they were used, and its effect was observed after it ended.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from opslineage import open_store
from opslineage.checks.findings import LAYERS
from opslineage.checks.verify import verify_layers
from opslineage.cli.main import main
from opslineage.demo import DemoConfig, DemoResult, run_demo
from opslineage.demo.replay import CsvSeries
from opslineage.query import as_reader, list_nodes, why
from opslineage.store import Store

OPSLINEAGE = str(Path(sys.executable).parent / "opslineage")
BUNDLED = Path(__file__).parents[1] / "data" / "nab"
SHARED = Path("/work/shared/data/nab")
DATED = [  # NAB files of four date ranges, from 2013-10 to 2014-07, one at 30-minute intervals
    SHARED / "realKnownCause/machine_temperature_system_failure.csv",
    SHARED / "realAWSCloudwatch/rds_cpu_utilization_e47b3b.csv",
    SHARED / "realAWSCloudwatch/iio_us-east-1_i-a2eb1cd9_NetworkIn.csv",
    SHARED / "realKnownCause/nyc_taxi.csv",
]


def _t(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


def _registrations(store: Store) -> dict[str, list[tuple[str, datetime]]]:
    """Per model or policy name, every version registered, in log order, with its time."""
    registered: dict[str, list[tuple[str, datetime]]] = defaultdict(list)
    for stored in store.events():
        event = stored.event
        kind = event["job"]["name"].split(".")[0]
        if stored.event_type != "COMPLETE" or not event["job"]["name"].startswith(f"{kind}.register."):
            continue
        for dataset in event["outputs"]:
            version = dataset["facets"]["version"]["datasetVersion"]
            node = f"{kind}:{dataset['name']}@{version}"
            registered[f"{kind}:{dataset['name']}"].append((node, _t(stored.event_time)))
    return registered


def _in_force(registered: list[tuple[str, datetime]], when: datetime) -> str | None:
    """The version registered last at or before ``when``."""
    earlier = [node for node, at in registered if at <= when]
    return earlier[-1] if earlier else None


def _assert_causal(store: Store) -> int:
    """Check every action's why-chain; returns how many there were."""
    registered = _registrations(store)
    actions = list_nodes(store, "action", limit=10_000)
    for node in actions:
        chain = why(store, node.id)
        assert chain.complete, (node.id, chain.missing)
        action, decision, prediction = chain.action, chain.decision, chain.prediction
        features, model, policy = chain.features, chain.model, chain.policy
        assert action and decision and prediction and features and model and policy, node.id
        snapshots = {snapshot["digest"]: snapshot for snapshot in chain.snapshots}
        assert sorted(snapshots) == sorted(features["inputs"]), node.id  # every input exists
        window = (_t(features["window_start"]), _t(features["window_end"]))
        for snapshot in snapshots.values():
            assert snapshot["source"] in features["sources"], (node.id, snapshot["id"])
            assert window[0] <= _t(snapshot["window_start"]) <= _t(snapshot["window_end"]) <= window[1]
        measured = max(_t(snapshot["window_end"]) for snapshot in snapshots.values())
        order = [
            measured,
            _t(features["computed_at"]),
            _t(prediction["predicted_at"]),
            _t(decision["decided_at"]),
            _t(action["started_at"]),
            _t(action["ended_at"]),
        ]
        for effect in chain.effects:
            order.append(_t(effect["window_start"]))
            if effect.get("before_end"):
                assert _t(effect["before_end"]) <= _t(action["started_at"]), node.id
        assert order == sorted(order), (node.id, order)
        predicted, decided = _t(prediction["predicted_at"]), _t(decision["decided_at"])
        assert prediction["model"] == model["id"] and _t(model["trained_at"]) <= predicted, node.id
        model_versions = registered[f"model:{model['name']}"]
        assert any(id_ == model["id"] and at <= predicted for id_, at in model_versions), node.id
        policy_versions = registered[f"policy:{policy['name']}"]
        assert decision["policy"] == policy["id"], node.id
        assert _in_force(policy_versions, decided) == policy["id"], (node.id, decided)
    return len(actions)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_every_short_fleet_run_is_causally_ordered(seed: int, tmp_path: Path) -> None:
    with open_store(f"sqlite:///{tmp_path / 'fleet.db'}") as store:
        run_demo(store, DemoConfig(seed=seed, hours=6))
        assert _assert_causal(store) > 0


def test_the_full_default_demo_is_causally_ordered(demo_run: tuple[Path, DemoResult]) -> None:
    path, result = demo_run
    with open_store(f"sqlite:///{path}", create=False) as store:
        assert _assert_causal(store) == len(result.remediations) > 0


def _disordered(tmp_path: Path) -> Path:
    """A series from 2013, earlier than the bundled files, with a repeated and a backward timestamp."""
    rows = [datetime(2013, 6, 1, tzinfo=UTC).timestamp() + 300 * i for i in range(600)]
    rows[100] = rows[99]  # repeated
    rows[200] = rows[199] - 3300  # stamped before the row ahead of it, as in machine_temperature
    values = [10.0 + (i % 24) + (40.0 if i in range(400, 412) else 0.0) for i in range(600)]
    lines = [
        f"{datetime.fromtimestamp(when, UTC):%Y-%m-%d %H:%M:%S},{value}"
        for when, value in zip(rows, values, strict=True)
    ]
    path = tmp_path / "disordered_2013.csv"
    path.write_text("timestamp,value\n" + "\n".join(lines) + "\n")
    return path


def _snapshots(store: Store) -> list[dict[str, Any]]:
    nodes = list_nodes(store, "snapshot", limit=100_000)
    contents = store.artifacts([node.digest for node in nodes if node.digest])
    return [json.loads(content) for content in contents.values()]


def _assert_one_timeline(store: Store, files: list[Path]) -> None:
    """Each file's snapshots carry its shift; shifted, every file starts at the earliest file's start
    and every recorded time is one of the file's own, moved by the shift."""
    series = {item.name: item for item in (CsvSeries.load(path) for path in files)}
    start = min(item.rows[0][0] for item in series.values())
    by_source: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for snapshot in _snapshots(store):
        by_source[snapshot["source"].rsplit(":", 1)[1]].append(snapshot)
    assert sorted(by_source) == sorted(series)
    for name, snapshots in by_source.items():
        shift = start - series[name].rows[0][0]
        own = {when for when, _ in series[name].rows}
        assert {snapshot["time_shift_seconds"] for snapshot in snapshots} == {shift.total_seconds()}
        assert min(_t(snapshot["window_end"]) for snapshot in snapshots) == start
        assert all(_t(snapshot["window_end"]) - shift in own for snapshot in snapshots)


def _assert_verifies(store: Store) -> None:
    """``verify``'s judged layers find nothing, and judged something at each layer."""
    report = verify_layers(as_reader(store), LAYERS)
    assert report.ok, report.findings[:5]
    assert all(report.checked[layer] > 0 for layer in ("data", "model", "policy"))


def test_a_replay_of_files_of_different_dates_is_on_one_clock(store: Store, tmp_path: Path) -> None:
    files = [*sorted(BUNDLED.glob("*.csv")), _disordered(tmp_path)]
    result = run_demo(store, DemoConfig(telemetry_csv=files, hours=48))
    assert _assert_causal(store) == len(result.remediations) > 0
    _assert_one_timeline(store, files)
    _assert_verifies(store)
    for versions in [*result.model_versions.values(), *result.policy_versions.values()]:
        assert [since for _, since in versions] == sorted(since for _, since in versions)


@pytest.mark.skipif(not all(path.exists() for path in DATED), reason="the NAB data set is not here")
def test_the_issue_12_replay_is_causal_and_why_shows_the_shift(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'nab.db'}"
    demo = [OPSLINEAGE, "demo", "--store", db, "--telemetry-csv", *map(str, DATED), "--seed", "5"]
    run = subprocess.run([*demo, "--hours", "72", "--json"], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    remediations = json.loads(run.stdout)["remediations"]
    with open_store(db, create=False) as store:
        assert _assert_causal(store) == len(remediations) > 0
        _assert_one_timeline(store, DATED)
        _assert_verifies(store)
    shown: dict[str, str] = {}
    for target in ("machine_temperature_system_failure", "iio_us-east-1_i-a2eb1cd9_NetworkIn"):
        action = next(r["action"] for r in remediations if r["target"] == target)
        text = subprocess.run(
            [OPSLINEAGE, "why", action, "--store", db], capture_output=True, text=True, check=False
        )
        assert text.returncode == 0, text.stderr
        shown[target] = " ".join(text.stdout.split())
    # 2013-10-09 16:25 (the first row of iio_…, the earliest file) - 2013-12-02 21:15 (machine_temperature's)
    assert "replayed, shifted -54d 4h 50m" in shown["machine_temperature_system_failure"]
    assert "replayed, not shifted" in shown["iio_us-east-1_i-a2eb1cd9_NetworkIn"]


def test_a_file_with_no_rows_is_exit_2_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("timestamp,value\n")
    files = [str(empty), str(next(BUNDLED.glob("*.csv")))]
    assert main(["demo", "--store", f"sqlite:///{tmp_path / 'x.db'}", "--telemetry-csv", *files]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "empty.csv: no rows to replay" in error


def test_the_help_says_how_a_replay_is_shifted(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["demo", "--help"])
    assert exited.value.code == 0
    assert "shifted to start together, at the earliest file's first row" in " ".join(
        capsys.readouterr().out.split()
    )
