"""Retention by crypto-shredding with a legal hold, on both backends: the due contents' key is
destroyed and their ciphertext removed, the held one stays readable, ``verify`` passes naming the
shredded count, the rule and the shred event, and any byte changed in what remains is still found."""

from __future__ import annotations

import base64
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from conftest import RunSql
from opslineage import Tracer, open_store
from opslineage.ledger.verify import verify_store
from opslineage.model.facets import HoldFacet, LabelFacet, RetentionFacet, ShredFacet
from opslineage.query import as_reader
from opslineage.store import Store, StoreError
from opslineage.store.archive import archive_store
from opslineage.store.keys import KEK_ENV, new_kek
from opslineage.store.retention import ScopePlan, apply_shred, holds_in_force, plan_retention, rules_in_force
from opslineage.store.sealing import SHREDDED_PREFIX
from planted import NAMESPACE, SECRET, SecretChain, record_secret_chain

NOW = datetime(2026, 12, 3, tzinfo=UTC)
STORES = Path(__file__).parents[1] / "data" / "stores"


@pytest.fixture(autouse=True)
def kek(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEK_ENV, base64.b64encode(new_kek()).decode())


def _chain(store: Store, *, hold: bool = True) -> tuple[Tracer, SecretChain]:
    """The planted chain (January 2026) in a store sealing restricted records, with a 30-day rule
    on its namespace and, with ``hold``, a hold on its second snapshot."""
    store.enable_encryption("restricted")
    tracer = Tracer(NAMESPACE, store=store, sync=True)
    at = "2026-01-01T00:00:00Z"
    tracer.set_label(
        LabelFacet(namespace=NAMESPACE, level="restricted", source="svc-01", set_at=at, set_by="cli:c")
    )
    chain = record_secret_chain(tracer, label=False)
    tracer.set_retention(RetentionFacet(namespace=NAMESPACE, keep_days=30, set_at=at, set_by="cli:c"))
    if hold:
        tracer.set_hold(
            HoldFacet(
                namespace=NAMESPACE, node=chain.snapshots[1], reason="case 7", set_at=at, set_by="cli:c"
            )
        )
    return tracer, chain


def _shred(store: Store, tracer: Tracer) -> list[ScopePlan]:
    plans = plan_retention(store, NOW)
    for plan in plans:
        apply_shred(store, plan)
        tracer.record_shred(
            ShredFacet(
                namespace=plan.namespace,
                period=plan.period,
                data_keys=plan.keys,
                artifacts=len(plan.due),
                held=len(plan.held),
                rule=plan.rule,
                shredded_at="2026-12-03T00:00:00Z",
                shredded_by="cli:c",
            )
        )
    tracer.close()
    assert tracer.stats.errors == 0, tracer.stats.last_error
    return plans


def test_a_shred_destroys_the_months_key_and_keeps_the_held_record(store: Store, run_sql: RunSql) -> None:
    tracer, chain = _chain(store)
    state = store.state_digest()
    (plan,) = plan_retention(store, NOW)
    assert (plan.namespace, plan.period, len(plan.due), plan.held) == (
        NAMESPACE,
        "2026-01",
        1,
        [chain.snapshots[1].removeprefix("entity:")],
    )
    assert store.state_digest() == state  # planning changes nothing
    _shred(store, tracer)
    shredded, held = (store.nodes_with_content([node])[node].content or b"" for node in chain.snapshots)
    assert shredded.startswith(b'{"shredded":{"data_key":"') and SECRET.encode() in held
    rows = run_sql(store.url, "SELECT namespace, period, wrapped IS NULL, shredded_at IS NULL FROM data_keys")
    assert sorted(tuple(row) for row in rows) == [
        (NAMESPACE, "2026-01", False, True),
        (NAMESPACE, "2026-01", True, False),
    ]
    (content,) = run_sql(
        store.url,
        f"SELECT content FROM artifacts WHERE digest = '{chain.snapshots[0].removeprefix('entity:')}'",
    )[0]
    assert bytes(content).startswith(SHREDDED_PREFIX) and len(bytes(content)) < 64  # the ciphertext is gone
    report = verify_store(store, None)
    assert report.ok, report.findings
    assert report.shredded == 1
    (shred,) = report.shreds
    assert shred["rule"]["keep_days"] == 30 and (shred["artifacts"], shred["held"]) == (1, 1)
    assert plan_retention(store, NOW) == []  # nothing more is due


def test_why_on_a_shredded_chain_answers_with_digests_and_marks_the_payload(store: Store) -> None:
    tracer, chain = _chain(store)
    _shred(store, tracer)
    chain_answer = as_reader(store).why(chain.action)
    assert chain_answer.complete
    text = json.dumps(chain_answer.to_dict())
    assert (
        chain.snapshots[0].removeprefix("entity:") in text
        and chain.snapshots[1].removeprefix("entity:") in text
    )
    (gone,) = [link for link in chain_answer.to_dict()["snapshots"] if "shredded" in link]
    assert gone["digest"] == chain.snapshots[0].removeprefix("entity:") and "rows" not in gone
    assert SECRET in text  # the held snapshot is still there


def test_a_changed_byte_in_what_a_shred_leaves_is_found(store: Store, run_sql: RunSql) -> None:
    tracer, chain = _chain(store)
    _shred(store, tracer)
    digest = chain.snapshots[0].removeprefix("entity:")
    (content,) = run_sql(store.url, f"SELECT content FROM artifacts WHERE digest = '{digest}'")[0]
    changed = bytes(content).replace(b'":"', b'":"0', 1)[: len(bytes(content))]
    literal = f"x'{changed.hex()}'" if store.url.startswith("sqlite") else f"'\\x{changed.hex()}'::bytea"
    run_sql(store.url, f"UPDATE artifacts SET content = {literal} WHERE digest = '{digest}'", tamper=True)
    report = verify_store(store, None)
    assert not report.ok
    assert any("no shred event records it" in f.what or "tampered" in f.what for f in report.findings)


@pytest.mark.parametrize("change", ["type = 'feature'", "seq = seq + 1"])
def test_a_changed_column_of_a_shredded_row_is_found(store: Store, run_sql: RunSql, change: str) -> None:
    tracer, chain = _chain(store)
    _shred(store, tracer)
    digest = chain.snapshots[0].removeprefix("entity:")
    run_sql(store.url, f"UPDATE artifacts SET {change} WHERE digest = '{digest}'", tamper=True)
    report = verify_store(store, None)
    assert [f.what for f in report.findings] == [
        f"the row of shredded artifact {digest} was changed (type or seq)"
    ]


def test_the_triggers_allow_no_blank_or_re_seal_a_shred_does_not_make(store: Store, run_sql: RunSql) -> None:
    tracer, chain = _chain(store, hold=False)
    tracer.close()
    digest = chain.snapshots[0].removeprefix("entity:")
    (key,) = [row.key_id for row in store.data_key_rows()]
    blank = (SHREDDED_PREFIX + key.encode() + b'"}').hex()
    literal = f"x'{blank}'" if store.url.startswith("sqlite") else f"'\\x{blank}'::bytea"
    with pytest.raises(Exception, match="append-only"):  # its key is not shredded
        run_sql(store.url, f"UPDATE artifacts SET content = {literal} WHERE digest = '{digest}'")
    with pytest.raises(Exception, match="append-only"):
        run_sql(store.url, f"UPDATE artifacts SET content = (SELECT content FROM artifacts WHERE digest <> '{digest}'"
                f" AND content = content LIMIT 1) WHERE digest = '{digest}'")  # fmt: skip
    with pytest.raises(Exception, match="data keys"):
        run_sql(store.url, "DELETE FROM data_keys")
    assert verify_store(store, None).ok


def test_a_namespace_hold_keeps_everything_and_its_release_lets_the_shred_run(store: Store) -> None:
    tracer, _ = _chain(store, hold=False)
    at = "2026-02-01T00:00:00Z"
    tracer.set_hold(HoldFacet(namespace=NAMESPACE, reason="litigation", set_at=at, set_by="cli:c"))
    assert [hold.reason for hold in holds_in_force(store)] == ["litigation"]
    assert plan_retention(store, NOW) == []
    tracer.set_hold(HoldFacet(namespace=NAMESPACE, reason="settled", active=False, set_at=at, set_by="cli:c"))
    assert holds_in_force(store) == []
    (plan,) = _shred(store, tracer)
    assert len(plan.due) == 2 and not plan.held
    assert [rule.keep_days for rule in rules_in_force(store)] == [30]
    assert verify_store(store, None).ok


def test_a_young_month_is_not_shredded(store: Store) -> None:
    tracer, _ = _chain(store)
    tracer.close()
    assert plan_retention(store, datetime(2026, 2, 15, tzinfo=UTC)) == []


def test_a_month_whose_kept_records_are_archived_keeps_its_key(store: Store, tmp_path: Path) -> None:
    tracer, _ = _chain(store)
    tracer.close()
    archive_store(store, store.log_size(), tmp_path / "archive")
    (plan,) = plan_retention(store, NOW)
    assert plan.blocked is not None and "archived" in plan.blocked
    with pytest.raises(StoreError, match="is not shredded"):
        apply_shred(store, plan)


def test_retention_needs_a_sealing_store_of_the_new_leaf_form(store: Store, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="seals nothing"):
        plan_retention(store, NOW)
    shutil.copy(STORES / "sqlite-v6.db", tmp_path / "old.db")
    with open_store(f"sqlite:///{tmp_path / 'old.db'}") as old:
        old.enable_encryption("restricted")
        assert old.leaf_form() == 1
        with pytest.raises(StoreError, match="before schema 9"):
            plan_retention(old, NOW)
        assert verify_store(old, None).ok
