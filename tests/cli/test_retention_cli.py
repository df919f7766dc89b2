"""``opslineage retention`` and ``hold``: rules and holds recorded as ledgered events, ``apply
--dry-run`` changes nothing, ``apply`` shreds around a hold and ``verify`` reports it; bad input
exits 2 with a clear line, on each backend."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from opslineage import Tracer, open_store
from opslineage.cli.main import main
from planted import NAMESPACE, SECRET, SecretChain, record_secret_chain


@pytest.fixture
def sealed(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, SecretChain]:
    """A store made with ``init --encrypt``, its source restricted, holding the planted chain of
    January 2026 (long past a 30-day retention)."""
    monkeypatch.setenv("OPSLINEAGE_KEY", str(tmp_path / "log.key"))
    monkeypatch.delenv("OPSLINEAGE_KEK", raising=False)
    assert main(["init", "--store", store_url, "--encrypt", "--kek-file", str(tmp_path / "s.kek")]) == 0
    restrict = ["label", "set", "--store", store_url, "--namespace", NAMESPACE, "--source", "svc-01"]
    assert main([*restrict, "--level", "restricted"]) == 0
    with open_store(store_url) as store:
        tracer = Tracer(NAMESPACE, store=store, sync=True)
        chain = record_secret_chain(tracer, label=False)
        tracer.close()
    return store_url, chain


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> object:
    capsys.readouterr()
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_apply_shreds_around_a_hold_and_verify_reports_it(
    sealed: tuple[str, SecretChain], capsys: pytest.CaptureFixture[str]
) -> None:
    url, chain = sealed
    rule = _json(capsys, "retention", "set", "--store", url, "--namespace", NAMESPACE, "--keep", "30d")
    assert isinstance(rule, dict) and rule["keep_days"] == 30 and rule["node"].startswith("entity:sha256:")
    assert [r["keep_days"] for r in _json(capsys, "retention", "list", "--store", url)] == [30]  # type: ignore[union-attr]
    held = chain.snapshots[1]
    placed = _json(capsys, "hold", "add", held, "--reason", "case 7", "--store", url)
    assert isinstance(placed, dict) and placed["namespace"] == NAMESPACE and placed["active"] is True
    assert [h["node"] for h in _json(capsys, "hold", "list", "--store", url)] == [held]  # type: ignore[union-attr]
    dry = _json(capsys, "retention", "apply", "--dry-run", "--store", url)
    assert isinstance(dry, dict) and [(s["artifacts"], s["held"]) for s in dry["scopes"]] == [(1, 1)]
    with open_store(url) as store:
        assert all(row.shredded_at is None for row in store.data_key_rows())
    done = _json(capsys, "retention", "apply", "--store", url)
    assert isinstance(done, dict)
    (scope,) = done["scopes"]
    assert scope["shred_event"].startswith("entity:sha256:") and scope["blocked"] is None
    assert main(["why", chain.action, "--store", url, "--json"]) == 0
    why = json.loads(capsys.readouterr().out)
    assert [("shredded" in link) for link in why["snapshots"]] == [True, False] and SECRET in json.dumps(why)
    assert main(["why", chain.action, "--store", url]) == 0
    tree = capsys.readouterr().out
    assert tree.count("payload shredded (retention)") == 1  # the held snapshot is drawn as usual
    assert main(["verify", "--store", url, "--layers", "integrity"]) == 0
    out = capsys.readouterr().out
    assert "shredded: 1 content(s) of ops 2026-01 (1 held)" in out and "keep 30 days" in out
    assert f"recorded by {scope['shred_event']}" in out
    assert main(["retention", "apply", "--store", url]) == 0
    assert capsys.readouterr().out == "nothing is past its retention\n"
    released = _json(capsys, "hold", "release", held, "--reason", "case closed", "--store", url)
    assert isinstance(released, dict) and released["active"] is False
    assert _json(capsys, "hold", "list", "--store", url) == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["retention", "set", "--namespace", "ops", "--keep", "forever"], "is not a retention such as 400d"),
        (["retention", "set", "--namespace", "bad name", "--keep", "4d"], "is not a name"),
        (["hold", "add", "--reason", "x"], "name one NODE"),
        (["hold", "add", "run:x", "--reason", "x"], "is not an artifact's node id"),
        (["hold", "add", "entity:sha256:" + "0" * 64, "--reason", "x"], "no node entity:sha256:"),
        (["hold", "add", "--namespace", "ops", "--reason", " "], "--reason must be"),
    ],
)
def test_bad_input_exits_2_naming_it(
    sealed: tuple[str, SecretChain], argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = sealed
    capsys.readouterr()
    try:
        status = main([*argv, "--store", url])
    except SystemExit as exit_:  # argparse's own refusal of an option's value
        status = int(exit_.code or 0)
    assert status == 2
    assert message in capsys.readouterr().err


def test_apply_on_a_store_that_seals_nothing_is_a_clear_error(
    store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    open_store(store_url).close()
    assert main(["retention", "apply", "--store", store_url]) == 2
    assert "seals nothing" in capsys.readouterr().err
