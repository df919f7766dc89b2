"""``opslineage archive``: the cut-off by age or sequence number, the report with its compression
ratio, and clear errors for bad input, on each backend."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import CHAIN_EVENTS, Chain
from opslineage import open_store
from opslineage.cli.main import main
from opslineage.store import Store


def test_archive_by_age_reports_what_moved_and_the_ratio(
    store: Store, chain: Chain, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, archive = store.url, str(tmp_path / "archive")
    action = "run:" + chain.action.run_id
    assert main(["why", action, "--store", url, "--json"]) == 0
    before = json.loads(capsys.readouterr().out)
    assert main(["archive", "--older-than", "30d", "--store", url, "--archive-dir", archive]) == 0
    assert capsys.readouterr().out == "nothing to archive through seq 0\n"  # everything is minutes old
    assert main(["archive", "--older-than", "0s", "--store", url, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["archive_dir"] == archive and report["through_seq"] == CHAIN_EVENTS
    assert report["moved"]["events"] == CHAIN_EVENTS == report["archive"]["events"]
    assert report["moved"]["compression_ratio"] == round(
        report["moved"]["raw_bytes"] / report["moved"]["stored_bytes"], 2
    )
    assert main(["why", action, "--store", url, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == before
    assert main(["verify", "--store", url]) == 0
    assert "1 archive segment(s) among them" in capsys.readouterr().out


def test_archive_by_sequence_number_prints_a_summary(
    store: Store, chain: Chain, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["archive", "--store", store.url, "--archive-dir", str(tmp_path / "a"), "--segment-events", "4"]
    assert main([*args, "--through-seq", "10"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("archived 10 events and ") and "(through seq 10) into 3 segment(s) under" in out
    assert "the archive holds 10 events in 3 segment(s)" in out
    with open_store(store.url) as reopened:
        assert [(s.first_seq, s.last_seq) for s in reopened.segments()] == [(1, 4), (5, 8), (9, 10)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--older-than", "30 days"], "'30 days' is not an age such as 30d"),
        (["--older-than", "30y"], "'30y' is not an age"),
        (["--through-seq", "-1"], "--through-seq must not be negative"),
        (["--through-seq", "5", "--segment-events", "0"], "--segment-events must be at least 1"),
        ([], "one of the arguments --older-than --through-seq is required"),
    ],
)
def test_bad_arguments_exit_2_with_the_reason(
    store: Store, chain: Chain, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    state = store.state_digest()
    try:
        status = main(["archive", "--store", store.url, *args])
    except SystemExit as exited:  # argparse's own errors
        status = int(exited.code or 0)
    assert status == 2
    assert message in capsys.readouterr().err
    assert store.state_digest() == state and store.segments() == []


def test_a_postgresql_store_needs_an_archive_directory_the_first_time(
    postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    open_store(postgres_url).close()
    assert main(["archive", "--through-seq", "5", "--store", postgres_url]) == 2
    assert "has no archive directory yet: give one (`opslineage archive --archive-dir DIR`" in (
        capsys.readouterr().err
    )
