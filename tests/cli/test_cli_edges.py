"""The CLI at its edges (issue 11): standard input, mistyped paths, and commands that name the
command that works."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from helpers import CHAIN_EVENTS, record_chain
from opslineage import Tracer
from opslineage.cli.main import main

OPSLINEAGE = str(Path(sys.executable).parent / "opslineage")


def _chain_jsonl() -> bytes:
    tracer = Tracer.in_memory()
    record_chain(tracer)
    return b"".join(msgspec.json.encode(e) + b"\n" for e in tracer.transport.events)  # type: ignore[attr-defined]


def test_ingest_dash_reads_standard_input(store_url: str) -> None:
    run = subprocess.run(
        [OPSLINEAGE, "ingest", "-", "--store", store_url, "--json"],
        input=_chain_jsonl(),
        capture_output=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["accepted"] == CHAIN_EVENTS


def test_a_store_in_a_missing_directory_is_refused_and_nothing_is_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = tmp_path / "events.jsonl"
    events.write_bytes(_chain_jsonl())
    missing = tmp_path / "no" / "such" / "dir"
    assert main(["ingest", str(events), "--store", f"sqlite:///{missing / 'x.db'}"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and f"no directory {missing}" in error
    assert not (tmp_path / "no").exists()


def test_init_creates_the_directories_of_a_new_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSLINEAGE_KEY", str(tmp_path / "log.key"))
    store = tmp_path / "new" / "dir" / "x.db"
    assert main(["init", "--store", f"sqlite:///{store}"]) == 0
    assert store.is_file()


def test_ingest_help_names_every_kind_of_event(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["ingest", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "RunEvents" not in text and "run, job and dataset events" in text
    assert "'-' reads standard input" in text


def test_serve_on_a_taken_port_is_one_line_and_exit_2(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        run = subprocess.run(
            [OPSLINEAGE, "serve", "--port", str(port), "--store", f"sqlite:///{tmp_path / 's.db'}"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert run.returncode == 2
    assert (
        run.stderr == f"opslineage: error: cannot listen on 127.0.0.1 port {port}: Address already in use\n"
    )


@pytest.mark.parametrize("command", [["worker"], ["demo", "--hours", "4"]])
@pytest.mark.parametrize("url", ["http://127.0.0.1:4222", "127.0.0.1:4222", "nats://"])
def test_a_bus_url_that_is_not_nats_is_refused_at_once(
    command: list[str], url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*command, "--bus", url, "--store", f"sqlite:///{tmp_path / 's.db'}"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "is not a NATS server URL: give nats://HOST:PORT" in error


def test_a_worker_gives_up_after_its_connect_timeout_logging_every_attempt(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]  # free once closed: nothing listens there
    run = subprocess.run(
        [
            OPSLINEAGE,
            "worker",
            "--bus",
            f"nats://127.0.0.1:{port}",
            "--connect-timeout",
            "2.5",
            "--store",
            f"sqlite:///{tmp_path / 's.db'}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 2
    lines = run.stderr.splitlines()
    attempts = [line for line in lines[:-1] if "attempt" in line and "failed" in line]
    assert len(attempts) >= 2, run.stderr
    assert lines[-1].startswith(
        f"opslineage: error: no NATS server answered at nats://127.0.0.1:{port} within 2.5 s"
        f" ({len(attempts)} attempt(s); last: "
    ), run.stderr
    assert "Connect call failed" in lines[-1]


@pytest.mark.parametrize(
    "command", [["verify-bundle", "b.json"], ["witness", "init", "--name", "w.example/w", "--key", "w.key"]]
)
def test_commands_that_read_no_store_offer_no_store_option(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main([*command, "--store", "sqlite:///x.db"])
    assert stopped.value.code == 2
    assert "unrecognized arguments: --store" in capsys.readouterr().err


def test_the_log_key_stays_with_the_store_whatever_the_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("OPSLINEAGE_KEY", raising=False)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    store = f"sqlite:///{tmp_path / 'data' / 'l.db'}"
    monkeypatch.chdir(tmp_path / "a")
    assert main(["init", "--store", store, "--json"]) == 0
    made = json.loads(capsys.readouterr().out)
    assert (
        made["key"] == str(tmp_path / "data" / "l.key")
        and (tmp_path / "data" / "l.key").stat().st_mode & 0o777 == 0o600
    )
    events = tmp_path / "events.jsonl"
    events.write_bytes(_chain_jsonl())
    monkeypatch.chdir(tmp_path / "b")
    assert main(["ingest", str(events), "--store", store]) == 0
    capsys.readouterr()
    assert main(["checkpoint", "--store", store, "--json"]) == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out)["tree_size"] == CHAIN_EVENTS
    assert main(["verify", "--store", store]) == 0
    assert not list((tmp_path / "a").iterdir()) and not list((tmp_path / "b").iterdir())


def test_a_bundle_of_a_store_without_a_log_names_the_command_that_works(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = tmp_path / "events.jsonl"
    events.write_bytes(_chain_jsonl())
    store = f"sqlite:///{tmp_path / 's.db'}"
    assert main(["ingest", str(events), "--store", store]) == 0
    capsys.readouterr()
    assert main(["ls", "--kind", "action", "--store", store, "--json"]) == 0
    action = json.loads(capsys.readouterr().out)[0]["id"]
    bundle = ["export", "--format", "bundle", action, "-o", str(tmp_path / "b.json"), "--store", store]
    assert main(bundle) == 2
    assert "run `opslineage init`" in capsys.readouterr().err
    assert not (tmp_path / "b.json").exists()


def test_as_of_help_says_it_is_the_time_events_were_stored(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["why", "--help"])
    assert "not by their eventTime" in " ".join(capsys.readouterr().out.split())


def test_event_time_before_cuts_by_when_things_happened(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The chain happened on 2026-01-05 (its eventTimes) and was stored today: --as-of yesterday
    sees nothing, --event-time-before sees it from the day it happened."""
    events = tmp_path / "events.jsonl"
    events.write_bytes(_chain_jsonl())
    store = f"sqlite:///{tmp_path / 's.db'}"
    assert main(["ingest", str(events), "--store", store]) == 0
    capsys.readouterr()

    def actions(*flags: str) -> list[dict[str, object]]:
        assert main(["ls", "--kind", "action", "--store", store, "--json", *flags]) == 0
        return json.loads(capsys.readouterr().out)

    assert actions("--event-time-before", "2026-01-05T11:59:59Z") == []
    assert len(actions("--event-time-before", "2026-01-06")) == 1
    assert actions("--as-of", "2026-01-06") == []
    assert actions("--as-of", "2026-01-06", "--event-time-before", "2026-01-06") == []
    action = actions()[0]["id"]
    assert (
        main(["upstream", str(action), "--store", store, "--json", "--event-time-before", "2026-01-06"]) == 0
    )
    assert len(json.loads(capsys.readouterr().out)["nodes"]) > 1
    assert main(["why", str(action), "--store", store, "--event-time-before", "last tuesday"]) == 2
    assert "--event-time-before 'last tuesday' is not an ISO 8601 time" in capsys.readouterr().err
