"""The permission table, the principal's checks and the label rules are what docs/security.md says."""

from __future__ import annotations

from pathlib import Path

import pytest

from opslineage.governance import (
    DEFAULT_LEVEL,
    PERMISSIONS,
    ROLES,
    LabelRule,
    Permission,
    Principal,
    level_of,
    parse_level,
)


def test_every_permission_is_held_by_admin_and_producers_read_nothing() -> None:
    assert all("admin" in roles for roles in PERMISSIONS.values())
    producer = Principal.token("ci", "producer")
    assert producer.can(Permission.WRITE_EVENTS)
    assert not any(producer.can(p) for p in Permission if p is not Permission.WRITE_EVENTS)
    assert producer.clearance == "none" and not producer.sees_level("public")


@pytest.mark.parametrize(
    ("role", "restricted", "access_log", "tokens"),
    [
        ("admin", True, True, True),
        ("auditor", True, True, False),
        ("steward", False, False, False),
        ("operator", False, False, False),
        ("analyst", False, False, False),
    ],
)
def test_who_sees_restricted_payloads_and_the_access_log(
    role: str, restricted: bool, access_log: bool, tokens: bool
) -> None:
    principal = Principal.token("t", role)
    assert principal.sees_level("restricted") is restricted
    assert principal.sees_level("internal") and principal.sees_level("public")
    assert principal.can(Permission.READ_ACCESS_LOG) is access_log
    assert principal.can(Permission.MANAGE_TOKENS) is tokens
    assert principal.can(Permission.READ_LINEAGE)


def test_an_unknown_or_missing_role_grants_nothing() -> None:
    for principal in (Principal.anonymous(), Principal("token:x", "root")):
        assert not any(principal.can(p) for p in Permission)
        assert principal.clearance == "none"
    assert set(ROLES) == {"admin", "steward", "auditor", "operator", "analyst", "producer"}


def test_namespaces_confine_a_principal() -> None:
    scoped = Principal.token("t", "operator", frozenset({"ops"}))
    assert scoped.covers("ops") and not scoped.covers("billing") and scoped.covers(None)
    assert Principal.local_admin().covers("billing")
    assert scoped.name == "t"


def test_the_most_specific_newest_label_rule_wins() -> None:
    rules = [
        LabelRule("ops", "public"),
        LabelRule("ops", "restricted", source="svc-01"),
        LabelRule("ops", "internal", kind="snapshot"),
    ]
    assert level_of(rules, "ops", "snapshot", "snapshot/svc-01") == "restricted"
    assert level_of(rules, "ops", "source", "svc-01") == "restricted"
    assert level_of(rules, "ops", "snapshot", "snapshot/svc-02") == "internal"
    assert level_of(rules, "ops", "decision", "decision/svc-01/x") == "public"
    assert level_of(rules, "billing", "snapshot", "snapshot/svc-01") == DEFAULT_LEVEL
    assert (
        level_of([*rules, LabelRule("ops", "public", source="svc-01")], "ops", "source", "svc-01") == "public"
    )


def test_a_level_is_one_of_three() -> None:
    assert parse_level("restricted") == "restricted"
    with pytest.raises(ValueError, match="public, internal, restricted"):
        parse_level("secret")


def test_docs_security_prints_the_permission_table() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "security.md").read_text()
    header = next(line for line in doc.splitlines() if line.startswith("| permission |"))
    roles = [cell.strip() for cell in header.strip("|").split("|")][2:]
    assert roles == list(ROLES)
    rows = {
        cells[0].strip("` "): [cell.strip() for cell in cells[2:]]
        for line in doc.splitlines()
        if line.startswith("| `") or line.startswith("| clearance")
        for cells in [line.strip().strip("|").split("|")]
    }
    for permission in Permission:
        assert rows[permission.value] == ["✓" if permission in ROLES[r][0] else "" for r in roles]
    assert rows["clearance"] == [ROLES[r][1] for r in roles]
