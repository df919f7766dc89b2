"""Governance rules: what a steward requires of every action, read from a TOML file, registered
in the log so that the rules in force at any time are provable, and checked by ``verify``.

A rules file::

    name = "prod-governance"

    [roles]                       # who holds a role, by agent name
    operator = ["oncall:alice"]

    [[rule]]
    id = "high-risk-needs-approver"
    require = "approver"          # the action names an approver
    risk_class = "high"           # selectors, all optional: risk_class, action, namespace, target

    [[rule]]
    id = "prod-restart-by-operator"
    require = "approver_role"     # ... an approver holding `role`
    role = "operator"
    action = "restart"
    namespace = "prod"

    [[rule]]
    id = "approved-models-only"
    require = "approved_model"    # the model behind it was approved before the action

    [[rule]]
    id = "restart-at-most-3-an-hour"
    require = "max_actions"       # at most `count` such actions on one target per `per`
    count = 3
    per = "1h"                    # s, m, h or d
    action = "restart"
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from opslineage.checks.findings import LayerReport
from opslineage.checks.recorded import Artifact, Recorded, parse_time

__all__ = ["REQUIREMENTS", "GovernanceRule", "RuleSet", "RulesError", "check_rules", "load_rules"]

REQUIREMENTS = ("approver", "approver_role", "approved_model", "max_actions")
"""What a rule can require of an action."""
_SELECTORS = ("risk_class", "action", "namespace", "target")
_DURATION = re.compile(r"^([1-9][0-9]*)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_LAYER = "policy"


class RulesError(ValueError):
    """A rules file or registered rule set that is not valid; the message says where and why."""


@dataclass(frozen=True)
class GovernanceRule:
    """One rule: what it requires, and of which actions (its selectors)."""

    id: str
    require: str
    selectors: dict[str, str] = field(default_factory=dict)
    role: str | None = None
    count: int | None = None
    per: str | None = None

    def applies(self, facts: dict[str, str | None]) -> bool:
        """The rule selects an action with these facts (risk_class, action, namespace, target)."""
        return all(facts.get(key) == value for key, value in self.selectors.items())

    def to_dict(self) -> dict[str, Any]:
        """The rule as it is written in a file and recorded."""
        extra = {"role": self.role, "count": self.count, "per": self.per}
        return {
            "id": self.id,
            "require": self.require,
            **self.selectors,
            **{k: v for k, v in extra.items() if v},
        }


@dataclass(frozen=True)
class RuleSet:
    """A named set of rules, the roles they refer to, and the digest of the file they came from."""

    name: str
    rules: tuple[GovernanceRule, ...]
    roles: dict[str, tuple[str, ...]] = field(default_factory=dict)
    file_digest: str | None = None

    def holds_role(self, agent: str, role: str) -> bool:
        """``agent`` holds ``role``: listed under it in ``[roles]``."""
        return agent in self.roles.get(role, ())


def load_rules(path: Path) -> RuleSet:
    """Read and check a rules file.

    Raises:
        RulesError: it cannot be read, is not TOML, or a rule is not valid.
    """
    try:
        data = path.read_bytes()
    except OSError as error:
        raise RulesError(f"cannot read rules file {path}: {error.strerror or error}") from None
    try:
        document = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise RulesError(f"{path}: not a TOML file: {error}") from None
    return parse_rules(document, str(path), "sha256:" + hashlib.sha256(data).hexdigest())


def parse_rules(document: dict[str, Any], where: str, file_digest: str | None = None) -> RuleSet:
    """A :class:`RuleSet` from a parsed file, or from a registered set's recorded fields.

    Raises:
        RulesError: a rule is not valid; the message names it.
    """
    name = document.get("name")
    if not isinstance(name, str) or not name:
        raise RulesError(f'{where}: give the rule set a name (name = "...")')
    roles = document.get("roles") or {}
    if not isinstance(roles, dict) or not all(
        isinstance(members, list) and all(isinstance(m, str) for m in members) for members in roles.values()
    ):
        raise RulesError(f"{where}: [roles] maps each role to a list of agent names")
    rules = document.get("rule", document.get("rules"))
    if not isinstance(rules, list) or not rules:
        raise RulesError(f"{where}: no rules ([[rule]] tables)")
    parsed = tuple(_rule(item, f"{where}, rule {i + 1}", roles) for i, item in enumerate(rules))
    ids = [rule.id for rule in parsed]
    if len(set(ids)) != len(ids):
        raise RulesError(
            f"{where}: rule ids must be unique, found {sorted(i for i in ids if ids.count(i) > 1)[0]!r} twice"
        )
    return RuleSet(name, parsed, {role: tuple(members) for role, members in roles.items()}, file_digest)


def _rule(item: Any, where: str, roles: dict[str, Any]) -> GovernanceRule:
    if not isinstance(item, dict):
        raise RulesError(f"{where}: a rule is a table")
    known = {"id", "require", "role", "count", "per", *_SELECTORS}
    unknown = sorted(set(item) - known)
    if unknown:
        raise RulesError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})")
    rule_id, require = item.get("id"), item.get("require")
    if not isinstance(rule_id, str) or not rule_id:
        raise RulesError(f"{where}: every rule needs an id")
    if require not in REQUIREMENTS:
        raise RulesError(
            f"{where} ({rule_id}): require must be one of {', '.join(REQUIREMENTS)}, not {require!r}"
        )
    selectors = {key: item[key] for key in _SELECTORS if key in item}
    if not all(isinstance(value, str) for value in selectors.values()):
        raise RulesError(f"{where} ({rule_id}): selectors ({', '.join(_SELECTORS)}) are strings")
    role, count, per = item.get("role"), item.get("count"), item.get("per")
    if require == "approver_role" and (not isinstance(role, str) or role not in roles):
        raise RulesError(
            f"{where} ({rule_id}): approver_role needs a role listed under [roles], not {role!r}"
        )
    if require == "max_actions":
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise RulesError(f"{where} ({rule_id}): max_actions needs count, a whole number of at least 1")
        if not isinstance(per, str) or not _DURATION.match(per):
            raise RulesError(f'{where} ({rule_id}): max_actions needs per, a duration such as "1h" or "30m"')
    return GovernanceRule(rule_id, require, selectors, role, count, per)


def _duration(text: str) -> timedelta:
    match = _DURATION.match(text)
    assert match is not None  # checked when the rule was read
    return timedelta(**{_UNITS[match[2]]: int(match[1])})


def rules_in_force(recorded: Recorded) -> Callable[[datetime], RuleSet | None]:
    """For a time, the newest rule set registered at or before it (None before the first)."""
    registered = []
    for artifact in recorded.of_type("rules"):
        when = parse_time(artifact.content.get("registered_at"))
        if when is not None:
            document = {**artifact.content, "rule": artifact.content.get("rules")}
            registered.append((when, parse_rules(document, artifact.id, artifact.content.get("file_digest"))))
    registered.sort(key=lambda pair: pair[0])

    def at(when: datetime) -> RuleSet | None:
        chosen = [rules for since, rules in registered if since <= when]
        return chosen[-1] if chosen else None

    return at


def check_rules(
    recorded: Recorded, report: LayerReport, wanted: Callable[[Artifact], bool], given: RuleSet | None = None
) -> None:
    """Check every action ``wanted`` keeps against ``given`` rules, or else against the rules
    registered in force when the action started."""
    in_force = (lambda _: given) if given is not None else rules_in_force(recorded)
    history: dict[str, list[datetime]] = defaultdict(list)
    for action in recorded.of_type("action"):
        started = parse_time(action.content.get("started_at"))
        if started is not None:
            history[_key(action.content)].append(started)
    for action in filter(wanted, recorded.of_type("action")):
        started = parse_time(action.content.get("started_at"))
        rules = in_force(started) if started else None
        if rules is None:
            continue
        facts = _facts(recorded, action)
        for rule in rules.rules:
            if rule.applies(facts):
                _check(recorded, report, action, rule, rules, started, history)


def _key(action: dict[str, Any]) -> str:
    """Which actions a rate limit counts together: one type on one target."""
    return f"{action.get('type')}\0{action.get('target')}"


def _facts(recorded: Recorded, action: Artifact) -> dict[str, str | None]:
    policy = recorded.policies.get(str(action.content.get("policy")))
    run = recorded.runs.get(action.run)
    return {
        "risk_class": policy[0].get("risk_class", "low") if policy else None,
        "action": action.content.get("type"),
        "namespace": run.namespace if run else None,
        "target": action.content.get("target"),
    }


def _check(
    recorded: Recorded,
    report: LayerReport,
    action: Artifact,
    rule: GovernanceRule,
    rules: RuleSet,
    started: datetime | None,
    history: dict[str, list[datetime]],
) -> None:
    check, content = f"rule:{rule.id}", action.content
    approver = content.get("approver")
    if rule.require == "approver":
        report.check(_LAYER, check, action.id, bool(approver), "an approver", "none")
    elif rule.require == "approver_role":
        holds = bool(approver) and rules.holds_role(str(approver), str(rule.role))
        report.check(
            _LAYER, check, action.id, holds, f"an approver with role {rule.role}", str(approver or "none")
        )
    elif rule.require == "approved_model":
        model = str(content.get("model"))
        approved = [r.at for r in recorded.registered.get(model, []) if r.approvers]
        holds = started is not None and any(at <= started for at in approved)
        found = f"first approved {min(approved).isoformat()}" if approved else "never approved"
        report.check(_LAYER, check, action.id, holds, f"{model} approved before the action", found)
    elif rule.require == "max_actions" and started is not None and rule.per and rule.count:
        window = _duration(rule.per)
        times = history[_key(content)]
        recent = sum(1 for then in times if started - window < then <= started)
        report.check(
            _LAYER,
            check,
            action.id,
            recent <= rule.count,
            f"at most {rule.count} {content.get('type')} on {content.get('target')} per {rule.per}",
            f"{recent} in the {rule.per} up to this one",
        )
