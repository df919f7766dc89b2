"""``opslineage label set|list``: label rules are ledgered events with who set them and when, the
rules in force fold oldest first, and bad input exits 2 without writing anything."""

from __future__ import annotations

import json

import pytest

from helpers import record_chain
from opslineage import Tracer, open_store
from opslineage.cli.main import main
from opslineage.governance import AccessDenied, LabelRule, Principal, level_of, rules_from_contents
from opslineage.query import Reader
from opslineage.query.visibility import label_rules


def test_label_set_records_a_ledgered_rule_that_redacts_at_once(
    store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with open_store(store_url) as store:
        tracer = Tracer("test.ns", store=store, sync=True)
        chain = record_chain(tracer)
        tracer.close()
        before = store.log_size()
    args = ["--store", store_url, "--json"]
    assert (
        main(["label", "set", "--namespace", "test.ns", "--kind", "snapshot", "--level", "restricted", *args])
        == 0
    )
    made = json.loads(capsys.readouterr().out)
    assert made["level"] == "restricted" and made["kind"] == "snapshot" and made["set_by"].startswith("cli:")
    assert main(["label", "list", *args]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(r["namespace"], r["kind"], r["level"]) for r in listed] == [
        ("test.ns", "snapshot", "restricted")
    ]
    assert listed[0]["set_at"] == made["set_at"]
    with open_store(store_url) as store:
        assert store.log_size() == before + 2  # the REGISTER run's START and COMPLETE
        reader = Reader(store, Principal.token("o", "operator"))
        detail = reader.detail(made["node"])
        assert detail.type == "label" and detail.content["set_by"] == made["set_by"]
        events = reader.run_events(reader.upstream(made["node"], 1).nodes[1]["id"].removeprefix("run:"))
        assert events[0].event["job"]["name"] == "label.set.test.ns"
        assert reader.detail(f"entity:{chain.snapshots[0].digest}").content == {"redacted": "restricted"}
        assert reader.detail(f"entity:{chain.features.digest}").content["values"] == {"cpu_mean": 91.0}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--namespace", "ops", "--level", "secret"], "public, internal, restricted"),
        (["--namespace", "bad ns", "--level", "public"], "--namespace 'bad ns' is not a name"),
        (["--namespace", "ops", "--source", "", "--level", "public"], "--source '' is not a name"),
    ],
)
def test_bad_label_input_exits_2_and_writes_nothing(
    tmp_path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    assert main(["label", "set", *argv, "--store", url]) == 2
    assert message in capsys.readouterr().err
    with open_store(url) as store:
        assert store.log_size() == 0


def test_label_list_in_text(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    assert (
        main(
            ["label", "set", "--namespace", "ops", "--source", "svc-01", "--level", "public", "--store", url]
        )
        == 0
    )
    assert "labelled ops source svc-01 public: entity:sha256:" in capsys.readouterr().out
    assert main(["label", "list", "--store", url]) == 0
    out = capsys.readouterr().out
    assert "svc-01" in out and "1 rule(s)" in out


def test_rules_fold_from_contents_oldest_first() -> None:
    contents = [
        {"namespace": "ops", "level": "restricted", "set_at": "t1", "set_by": "a"},
        {"namespace": "ops", "level": "public", "set_at": "t2", "set_by": "b"},
        {"namespace": "ops", "level": "top-secret"},
        {"level": "public"},
    ]
    rules = rules_from_contents(contents)
    assert rules == [
        LabelRule("ops", "restricted", set_at="t1", set_by="a"),
        LabelRule("ops", "public", set_at="t2", set_by="b"),
    ]
    assert level_of(rules, "ops", "snapshot", "snapshot/x") == "public"
    assert rules[0].to_dict() == {"namespace": "ops", "level": "restricted", "set_at": "t1", "set_by": "a"}


def test_label_rules_through_a_reader_is_an_audited_read(store_url: str) -> None:
    with open_store(store_url) as store:
        assert label_rules(store) == []
        producer = Reader(store, Principal.token("p", "producer"))
        with pytest.raises(AccessDenied, match="lineage:read"):
            label_rules(producer)
