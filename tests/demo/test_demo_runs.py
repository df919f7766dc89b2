"""The demo through the real command (issue 11): short runs refuse with the real minimum instead of
crashing, the retrained model really saw more data, and bad input or a closed pipe ends in one
line (or none), never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from opslineage import open_store
from opslineage.cli.main import main
from opslineage.demo import MIN_HOURS
from opslineage.query import list_nodes

OPSLINEAGE = str(Path(sys.executable).parent / "opslineage")


def _demo(store: Path, *options: str) -> list[str]:
    return ["demo", "--store", f"sqlite:///{store}", "--services", "2", *options]


@pytest.fixture(scope="module")
def short_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """The shortest demo that can train, its store and its JSON summary."""
    store = tmp_path_factory.mktemp("demo") / "short.db"
    run = subprocess.run(
        [OPSLINEAGE, *_demo(store, "--hours", f"{MIN_HOURS:g}", "--json")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    return store, json.loads(run.stdout)


def test_a_run_too_short_to_train_is_refused_with_the_real_minimum(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "short.db"
    assert main(_demo(store, "--hours", f"{MIN_HOURS - 1:g}")) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and f"--hours must be at least {MIN_HOURS:g}" in error
    assert not store.exists()


def test_the_shortest_run_that_can_train_does_train_and_retrain(short_run: tuple[Path, dict]) -> None:
    _, summary = short_run
    assert [len(versions) for versions in summary["model_versions"].values()] == [2]


def _training_inputs(store: Path, model: str) -> list[dict]:
    run = subprocess.run(
        [OPSLINEAGE, "upstream", model, "--depth", "2", "--json", "--store", f"sqlite:///{store}"],
        capture_output=True,
        text=True,
        check=True,
    )
    nodes = json.loads(run.stdout)["nodes"]
    return [node for node in nodes if node["depth"] == 2 and node["type"] == "feature"]


def test_the_retrained_model_is_trained_on_the_data_seen_up_to_its_training(
    short_run: tuple[Path, dict],
) -> None:
    store, summary = short_run
    [(first, second)] = summary["model_versions"].values()
    before, after = _training_inputs(store, first), _training_inputs(store, second)
    assert before and len(after) > len(before)
    assert max(node["seq"] for node in after) > max(node["seq"] for node in before)  # data after v1's


def test_a_missing_telemetry_file_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "replay.db"
    assert main(["demo", "--store", f"sqlite:///{store}", "--telemetry-csv", str(tmp_path / "nope.csv")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "nope.csv" in error and "Traceback" not in error
    assert not store.exists()


@pytest.mark.parametrize("command", [["why"], ["downstream", "--depth", "3"], ["ls", "--kind", "snapshot"]])
def test_a_reader_that_closed_the_pipe_ends_the_command_quietly(
    short_run: tuple[Path, dict], command: list[str]
) -> None:
    store, summary = short_run
    target = {
        "why": summary["remediations"][0]["action"],
        "downstream": next(iter(summary["model_versions"].values()))[0],
    }
    argv = [OPSLINEAGE, command[0], *([target[command[0]]] if command[0] in target else []), *command[1:]]
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first byte is written
    run = subprocess.run(
        [*argv, "--store", f"sqlite:///{store}"],
        stdout=write_end,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    os.close(write_end)
    assert run.returncode == 141, run.stderr
    assert run.stderr == ""


def test_the_summary_says_what_this_run_added_and_what_the_store_holds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "twice.db"
    assert main(_demo(store, "--hours", "4")) == 0
    first = capsys.readouterr().out.splitlines()
    emitted = int(first[0].split(" recorded ")[1].split()[0])
    assert first[0].endswith(f": {emitted} new.") and first[1].startswith(
        f"The store now holds {emitted} events"
    )
    assert main(_demo(store, "--hours", "4")) == 0
    again = capsys.readouterr().out.splitlines()
    assert f": 0 new, {emitted} already stored" in again[0]
    assert again[1].startswith(f"The store now holds {emitted} events")
    assert main(_demo(store, "--hours", "4", "--seed", "7")) == 0
    other = capsys.readouterr().out.splitlines()
    added = int(other[0].split(": ")[1].split()[0])
    assert added > 0 and other[1].startswith(f"The store now holds {emitted + added} events")


def test_version_times_carry_their_date_when_the_run_spans_days(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["demo", "--store", f"sqlite:///{tmp_path / 'long.db'}", "--services", "1", "--hours", "60"])
        == 0
    )
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("  fleet-anomaly:")]
    assert lines and "(from 2026-01-05 " in lines[0] and "(from 2026-01-06 " in lines[0], lines


NAB = Path(__file__).parents[1] / "data" / "nab"


def test_a_replay_is_not_sized_by_services_and_claims_no_incidents_it_did_not_inject(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = [str(path) for path in sorted(NAB.glob("*.csv"))]
    store = f"sqlite:///{tmp_path / 'nab.db'}"
    assert main(["demo", "--store", store, "--services", "3", "--telemetry-csv", *files]) == 2
    assert "one service per --telemetry-csv file" in capsys.readouterr().err
    assert main(["demo", "--store", store, "--hours", "72", "--telemetry-csv", *files]) == 0
    out = capsys.readouterr().out
    assert "injected incidents" not in out and "resolved their target's problem" not in out
    assert "observed, not caused" in out


def _records(store: str, kind: str) -> list[dict]:
    with open_store(store, create=False) as opened:
        nodes = list_nodes(opened, kind, limit=10_000)
        contents = opened.artifacts([node.digest for node in nodes if node.digest])
    return [json.loads(content) for content in contents.values()]


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_effects_keep_both_windows_and_say_the_fleet_could_react(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'fleet.db'}"
    assert main(["demo", "--store", store, "--hours", "24", "--json"]) == 0
    effects = _records(store, "effect")
    with open_store(store, create=False) as opened:
        actions = {d: json.loads(c) for d, c in opened.artifacts([e["action"] for e in effects]).items()}
    assert effects and len(actions) == len(effects)
    for effect in effects:
        acted = _time(actions[effect["action"]]["started_at"])
        assert effect["attribution"] == "caused"
        assert _time(effect["before_start"]) < _time(effect["before_end"]) <= acted
        assert acted <= _time(effect["window_start"]) < _time(effect["window_end"])
    approved = [record for record in actions.values() if record.get("approver")]
    assert approved, "the default run has an action that needed approval"
    assert all(_time(record["approved_at"]) <= _time(record["started_at"]) for record in approved)


def test_a_replay_keeps_every_series_whole_and_claims_no_caused_effect(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    longer, other = sorted(NAB.glob("*.csv"))
    shorter = tmp_path / "short_series.csv"
    shorter.write_text("".join(other.read_text().splitlines(keepends=True)[:301]))  # header + 300 rows
    store = f"sqlite:///{tmp_path / 'replay.db'}"
    assert (
        main(["demo", "--store", store, "--hours", "72", "--telemetry-csv", str(longer), str(shorter)]) == 0
    )
    out = capsys.readouterr().out
    snapshots = _records(store, "snapshot")
    assert len(snapshots) == 72 * 12 + 300  # the longer series is not cut to the shorter one
    effects = _records(store, "effect")
    assert effects
    assert {effect["attribution"] for effect in effects} == {"observed"}
    assert {effect["outcome"] for effect in effects} <= {"resolved", "worsened", "unverifiable"}
    assert "observed in replayed data, not caused by the action" in out
