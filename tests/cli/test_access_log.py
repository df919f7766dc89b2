"""``opslineage access-log`` and ``verify`` over the access log, on both backends: every CLI read
is an access event (client ``cli``), filtered, printed as a table or JSON lines; bad options exit
2; a changed byte fails verify naming the access event; a read the log cannot record is refused."""

from __future__ import annotations

import json
import re

import pytest

from conftest import RunSql
from helpers import Chain
from opslineage import open_store
from opslineage.cli.main import main
from trail import one_byte_changed, refuse_access_writes

pytestmark = pytest.mark.usefixtures("chain")


def _lines(capsys: pytest.CaptureFixture[str]) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_every_cli_read_is_in_the_access_log(
    store_url: str, chain: Chain, capsys: pytest.CaptureFixture[str]
) -> None:
    action = "run:" + chain.action.run_id
    assert main(["why", action, "--store", store_url, "--json"]) == 0
    assert main(["upstream", chain.decision.id, "--store", store_url, "--json"]) == 0
    capsys.readouterr()
    assert main(["access-log", "--store", store_url, "--json"]) == 0
    events = _lines(capsys)
    assert [(e["seq"], e["name"], e["client"], e["role"]) for e in events] == [
        (1, "why", "cli", "admin"),
        (2, "upstream", "cli", "admin"),
    ]
    assert events[0]["actor"].startswith("local:") and events[0]["outcome"] == "allowed"
    assert chain.decision.id in events[0]["nodes"] and events[0]["target"] == action

    assert main(["access-log", "--store", store_url, "--json", "--node", chain.decision.id]) == 0
    assert [e["seq"] for e in _lines(capsys)] == [1, 2]
    assert main(["access-log", "--store", store_url, "--json", "--after", "1", "--limit", "2"]) == 0
    assert [e["name"] for e in _lines(capsys)] == ["upstream", "access-log"], (
        "reading the log is itself recorded"
    )
    assert main(["access-log", "--store", store_url, "--json", "--outcome", "denied"]) == 0
    assert _lines(capsys) == []
    assert main(["access-log", "--store", store_url, "--json", "--actor", "token:nobody"]) == 0
    assert _lines(capsys) == []
    assert main(["access-log", "--store", store_url, "--json", "--since", "2999-01-01"]) == 0
    assert _lines(capsys) == []

    assert main(["access-log", "--store", store_url]) == 0
    table = capsys.readouterr().out
    assert "8 access event(s)" in table and "upstream" in table and " cli " in table


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--since", "yesterday"], "--since 'yesterday' is not an ISO 8601 time"),
        (["--after", "-1"], "--after -1: a sequence number is at least 0"),
    ],
)
def test_bad_options_exit_2_naming_them(
    store_url: str, flags: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["access-log", "--store", store_url, *flags]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("flags", [["--limit", "0"], ["--outcome", "maybe"]])
def test_bad_choices_are_refused_by_the_parser(
    store_url: str, flags: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["access-log", "--store", store_url, *flags])
    assert stopped.value.code == 2 and flags[0] in capsys.readouterr().err


@pytest.mark.parametrize(
    ("command", "name"),
    [
        (["verify"], "verify"),
        (["quality"], "quality"),
        (["export", "--format", "prov-json"], "export"),
        (["baseline", "save", "b1"], "baseline save"),
        (["retention", "list"], "retention list"),
        (["hold", "list"], "hold list"),
    ],
)
def test_a_command_is_one_access_event_however_many_reads_it_makes(
    store_url: str, chain: Chain, capsys: pytest.CaptureFixture[str], command: list[str], name: str
) -> None:
    assert main([*command, "--store", store_url]) == 0
    capsys.readouterr()
    assert main(["access-log", "--store", store_url, "--json"]) == 0
    assert [(e["seq"], e["name"], e["outcome"]) for e in _lines(capsys)] == [(1, name, "allowed")]


def test_a_command_that_ends_in_an_error_is_a_failed_access_event(
    store_url: str, chain: Chain, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["reconcile", "nosuch", "--store", store_url]) == 2
    capsys.readouterr()
    assert main(["access-log", "--store", store_url, "--json", "--outcome", "failed"]) == 0
    [failed] = _lines(capsys)
    assert (failed["name"], failed["target"]) == ("reconcile", "nosuch")
    assert failed["reason"].startswith("UsageError: no baseline named 'nosuch'")


def test_verify_checks_the_access_log_and_names_a_changed_event(
    store_url: str, chain: Chain, run_sql: RunSql, capsys: pytest.CaptureFixture[str]
) -> None:
    action = "run:" + chain.action.run_id
    assert main(["why", action, "--store", store_url, "--json"]) == 0
    assert main(["verify", "--store", store_url, "--layers", "integrity"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"ok: the access log's \d+ access event\(s\) and 0 checkpoint\(s\) verified", out), out
    assert main(["verify", "--store", store_url, "--layers", "integrity", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    access = answer["access_log"]
    assert access["ok"] and access["size"] == access["events_checked"] > 1  # why, then verify's reads

    run_sql(store_url, one_byte_changed(store_url, 1, '"why"', '"whY"'), tamper=True)
    assert main(["verify", "--store", store_url, "--layers", "integrity"]) == 1
    out = capsys.readouterr().out
    assert "access log FAILED" in out and "access event 1: access event does not match its log leaf" in out
    assert main(["verify", "--store", store_url, "--layers", "integrity", "--json"]) == 1
    answer = json.loads(capsys.readouterr().out)
    assert not answer["ok"] and {f["seq"] for f in answer["access_log"]["findings"]} == {1}


def test_a_read_the_access_log_cannot_record_is_refused(
    store_url: str, chain: Chain, run_sql: RunSql, capsys: pytest.CaptureFixture[str]
) -> None:
    with open_store(store_url) as store:
        before = store.state_digest()
    refuse_access_writes(run_sql, store_url)
    assert main(["why", "run:" + chain.action.run_id, "--store", store_url]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "the read is refused" in captured.err
    assert "Traceback" not in captured.err
    with open_store(store_url) as store:
        assert store.state_digest() == before and store.access_size() == 0
