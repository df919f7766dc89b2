"""Ownership: ``owners set|list`` records owners and stewards per namespace, source, job, model or
policy; the newest entry of a scope is in force, and node answers and why-chains show it."""

from __future__ import annotations

import json

import msgspec
import pytest

from helpers import record_chain
from opslineage import Tracer, open_store
from opslineage.cli.main import main
from opslineage.governance import Ownership, Principal, owners_from_contents, owners_of
from opslineage.query import Reader, why_view
from planted import NAMESPACE, record_secret_chain


def test_the_most_specific_newest_entry_is_in_force() -> None:
    entries = owners_from_contents(
        [
            {"namespace": "ops", "owners": ["sre"], "set_at": "t1"},
            {"namespace": "ops", "scope": "source", "name": "svc-01", "owners": ["team-a"]},
            {"namespace": "ops", "owners": ["platform"], "stewards": ["carol"], "set_at": "t2"},
            {"namespace": "ops", "scope": "galaxy", "owners": ["x"]},
        ]
    )
    assert len(entries) == 3
    assert owners_of(entries, "ops", "source", "svc-01").owners == ("team-a",)  # type: ignore[union-attr]
    fallback = owners_of(entries, "ops", "job", "ingest")
    assert fallback == Ownership("ops", owners=("platform",), stewards=("carol",), set_at="t2")
    assert owners_of(entries, "billing") is None and owners_of(entries, None) is None


def test_owners_show_in_node_answers_and_why_links(store_url: str) -> None:
    with open_store(store_url) as store:
        tracer = Tracer(NAMESPACE, store=store, sync=True)
        chain = record_secret_chain(tracer)
        tracer.close()
        reader = Reader(store, Principal.token("o", "operator"))
        source = reader.detail(chain.source)
        assert source.owners == {"scope": "source", "name": "svc-01", "owners": ["team-a"], "stewards": []}
        snapshot = reader.detail(chain.snapshots[0])
        assert snapshot.owners["owners"] == ["team-a"] and snapshot.content == {"redacted": "restricted"}
        features = reader.detail(chain.features)
        assert features.owners == {"scope": "namespace", "owners": ["sre"], "stewards": ["carol"]}
        why = reader.why(chain.action)
        assert why.snapshots[0]["owners"]["owners"] == ["team-a"]
        assert why.decision is not None and why.decision["owners"]["stewards"] == ["carol"]
        view = msgspec.json.encode(why_view(why)).decode()
        assert "owners team-a" in view and "owners sre · stewards carol" in view
        assert [e["scope"] for e in reader.ownership()] == ["namespace", "source"]


def test_owners_set_and_list_and_the_why_view(store_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    with open_store(store_url) as store:
        tracer = Tracer("test.ns", store=store, sync=True)
        chain = record_chain(tracer)
        tracer.close()
    args = ["--store", store_url]
    assert (
        main(["owners", "set", "--namespace", "test.ns", "--owner", "sre", "--steward", "carol", *args]) == 0
    )
    assert (
        main(
            [
                "owners",
                "set",
                "--namespace",
                "test.ns",
                "--job",
                "remediation.scale_out",
                "--owner",
                "oncall",
                *args,
            ]
        )
        == 0
    )
    assert main(["owners", "set", "--namespace", "test.ns", "--owner", "platform", "--json", *args]) == 0
    capsys.readouterr()
    assert main(["owners", "list", "--json", *args]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {(e["scope"], tuple(e["owners"])) for e in listed} == {
        ("namespace", ("platform",)),
        ("job", ("oncall",)),
    }
    assert all(e["set_by"].startswith("cli:") for e in listed)
    assert main(["why", f"run:{chain.action.run_id}", *args]) == 0
    out = capsys.readouterr().out
    assert "owners oncall" in out and "owners platform" in out
    assert main(["why", f"run:{chain.action.run_id}", "--json", *args]) == 0
    chain_json = json.loads(capsys.readouterr().out)
    assert chain_json["action"]["owners"] == {
        "scope": "job",
        "name": "remediation.scale_out",
        "owners": ["oncall"],
        "stewards": [],
    }


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--namespace", "ops"], "at least one --owner or --steward"),
        (["--namespace", "ops", "--owner", " "], "1 to 200 characters"),
        (["--namespace", "b a d", "--owner", "x"], "is not a name"),
    ],
)
def test_bad_owners_input_exits_2(
    tmp_path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    assert main(["owners", "set", *argv, "--store", url]) == 2
    assert message in capsys.readouterr().err
    with open_store(url) as store:
        assert store.log_size() == 0
