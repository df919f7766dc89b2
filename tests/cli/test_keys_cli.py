"""``opslineage init --encrypt``, ``keys init|rotate|list``: a sealed store read back through the
CLI, rotated, and refused (exit 2, one clear line) with a wrong or unsafe KEK, on each backend."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import pytest

from opslineage import Tracer, open_store
from opslineage.cli.main import main
from opslineage.store.keys import new_kek
from planted import NAMESPACE, SECRET, record_secret_chain


@pytest.fixture
def sealed(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path, str]:
    """A store made with ``init --encrypt``, a restricted source and the planted chain; returns its
    URL, its KEK file and the chain's action."""
    monkeypatch.setenv("OPSLINEAGE_KEY", str(tmp_path / "log.key"))
    monkeypatch.delenv("OPSLINEAGE_KEK", raising=False)
    kek = tmp_path / "store.kek"
    assert main(["init", "--store", store_url, "--encrypt", "--kek-file", str(kek), "--json"]) == 0
    assert main(["label", "set", "--store", store_url, "--namespace", NAMESPACE, "--source", "svc-01",
                 "--level", "restricted"]) == 0  # fmt: skip
    with open_store(store_url) as store:
        tracer = Tracer(NAMESPACE, store=store, sync=True)
        chain = record_secret_chain(tracer, label=False)
        tracer.close()
        assert tracer.stats.errors == 0, tracer.stats.last_error
    return store_url, kek, chain.action


def test_init_encrypt_makes_an_owner_only_kek_and_keys_list_shows_the_data_keys(
    sealed: tuple[str, Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    url, kek, _ = sealed
    assert kek.stat().st_mode & 0o777 == 0o600
    capsys.readouterr()
    assert main(["keys", "list", "--store", url, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["encryption"] == "restricted"
    assert [(k["namespace"], k["period"], k["shredded_at"]) for k in listed["data_keys"]] == [
        (NAMESPACE, "2026-01", None)
    ]
    assert listed["data_keys"][0]["kek_id"] == listed["kek_id"]
    assert "wrapped" not in json.dumps(listed)
    assert main(["keys", "init", "--store", url, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["created"] is False  # the recorded file is adopted


def test_rotate_then_everything_reads_back_and_the_old_kek_is_refused(
    sealed: tuple[str, Path, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, kek, action = sealed
    shutil.copy(kek, tmp_path / "old.kek")
    assert main(["why", action, "--store", url, "--json"]) == 0
    before = capsys.readouterr().out
    assert SECRET in before
    assert main(["keys", "rotate", "--store", url, "--json"]) == 0
    rotated = json.loads(capsys.readouterr().out)
    assert rotated["data_keys_rewrapped"] == 1 and rotated["kek_id"] != rotated["old_kek_id"]
    assert kek.read_bytes() != (tmp_path / "old.kek").read_bytes() and kek.stat().st_mode & 0o777 == 0o600
    assert main(["why", action, "--store", url, "--json"]) == 0
    assert capsys.readouterr().out == before
    assert main(["verify", "--store", url, "--layers", "integrity"]) == 0
    capsys.readouterr()
    monkeypatch.setenv("OPSLINEAGE_KEK_FILE", str(tmp_path / "old.kek"))
    assert main(["why", action, "--store", url]) == 2
    captured = capsys.readouterr()
    assert "is not this store's" in captured.err and SECRET not in captured.out
    assert main(["verify", "--store", url, "--layers", "integrity"]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "is not this store's" in captured.err


def test_an_unsafe_or_missing_kek_file_is_a_clear_error(
    sealed: tuple[str, Path, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, kek, action = sealed
    kek.chmod(0o644)
    capsys.readouterr()
    assert main(["why", action, "--store", url]) == 2
    assert f"chmod 600 {kek}" in capsys.readouterr().err
    monkeypatch.setenv("OPSLINEAGE_KEK_FILE", str(kek.with_name("nowhere.kek")))
    assert main(["why", action, "--store", url]) == 2
    assert "no key-encryption key file" in capsys.readouterr().err
    monkeypatch.setenv("OPSLINEAGE_KEK", "not base64!")
    assert main(["why", action, "--store", url]) == 2
    assert "$OPSLINEAGE_KEK is not base64" in capsys.readouterr().err


def test_rotating_a_kek_given_in_the_environment_needs_a_new_file(
    store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPSLINEAGE_KEY", str(tmp_path / "log.key"))
    monkeypatch.setenv("OPSLINEAGE_KEK", base64.b64encode(new_kek()).decode())
    assert main(["init", "--store", store_url, "--encrypt-all"]) == 0
    assert main(["keys", "rotate", "--store", store_url]) == 2
    assert "give --new-kek-file PATH" in capsys.readouterr().err
    target = tmp_path / "next.kek"
    assert main(["keys", "rotate", "--store", store_url, "--new-kek-file", str(target), "--json"]) == 0
    rotated = json.loads(capsys.readouterr().out)
    assert rotated["kek_file"] == str(target) and target.stat().st_mode & 0o777 == 0o600
    monkeypatch.delenv("OPSLINEAGE_KEK")
    assert main(["keys", "list", "--store", store_url, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["kek_id"] == rotated["kek_id"]


def test_keys_init_makes_no_new_kek_for_a_store_sealed_under_another(
    sealed: tuple[str, Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, _, _ = sealed
    capsys.readouterr()
    assert main(["keys", "init", "--store", url, "--kek-file", str(tmp_path / "other.kek")]) == 2
    assert "which is not at" in capsys.readouterr().err and not (tmp_path / "other.kek").exists()
