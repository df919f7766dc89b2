"""Human-readable renderings: the why-chain as a tree a responder can follow at 3 a.m."""

from __future__ import annotations

import re
from typing import Any

import msgspec
from rich.console import Console
from rich.markup import escape
from rich.tree import Tree

from opslineage.query import WhyChain

__all__ = ["short", "when", "why_tree", "wide_console"]


def wide_console() -> Console:
    """A console for stdout; when it is not a terminal, lines are not wrapped at 80 columns."""
    console = Console()
    return console if console.is_terminal else Console(width=160)


def short(digest: str | None) -> str:
    """A digest cut to 12 hex digits for reading (``--json`` shows it whole)."""
    if not digest:
        return "?"
    algo, _, hexdigest = digest.removeprefix("entity:").partition(":")
    return f"{algo}:{hexdigest[:12]}" if hexdigest else digest[:19]


def when(stamp: str | None) -> str:
    """``2026-01-05T14:35:00.000Z`` → ``2026-01-05 14:35:00Z``."""
    return (stamp or "?").replace("T", " ").replace(".000Z", "Z")


def _number(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def why_tree(chain: WhyChain) -> Tree:
    """The chain as a rich Tree: action and effects at the top, sources at the leaves."""
    root = _action(chain)
    decision = chain.decision
    if decision is None:
        root.add("[red]decision: missing from the store[/]")
        return _missing(root, chain)
    node = _decision(root, decision, chain.policy)
    prediction = chain.prediction
    if prediction is not None:
        node = node.add(
            f"[bold]prediction[/] {short(prediction['digest'])} — score {_number(prediction['score'])} "
            f"({escape(prediction['label'])})"
        )
        if chain.model is not None:
            model = chain.model
            node.add(
                f"[bold]model[/] {escape(model['name'])}@{escape(model['version'])} "
                f"artifact {short(model['artifact_digest'])} ({escape(model['framework'])})"
            )
        if chain.features is not None:
            _features(node, chain.features, chain)
    return _missing(root, chain)


def _action(chain: WhyChain) -> Tree:
    action = chain.action
    if action is None:
        return Tree("[bold]no action[/]: the decision below did not fire")
    status = action["status"] + (f" ({action['reason']})" if action.get("reason") else "")
    root = Tree(
        f"[bold]action {escape(action['type'])} → {escape(action['target'])}[/]  {escape(status)}\n"
        f"{escape(action.get('run', '?'))}  {when(action['started_at'])} → {when(action['ended_at'])}\n"
        f"executor {escape(action['executor'])}"
        + (f" · approver {escape(action['approver'])}" if action.get("approver") else "")
        + f" · params {escape(msgspec.json.encode(action.get('params', {})).decode())}"
    )
    if not chain.effects:
        root.add("[yellow]effect: not observed yet[/]")
    for effect in chain.effects:
        change = (
            f"{effect['metric']} {_number(effect['before'])} → {_number(effect['after'])}"
            if effect.get("metric")
            else "no metric covers the target"
        )
        root.add(
            f"[bold]effect: {effect['outcome']}[/] — {escape(change)} over "
            f"{when(effect['window_start'])} → {when(effect['window_end'])} "
            f"({effect['samples_before']} samples before, {effect['samples_after']} after)"
        )
    return root


def _decision(root: Tree, decision: dict[str, Any], policy: dict[str, Any] | None) -> Tree:
    breaches = "; ".join(
        f"{b['input']} {_number(b['value'])} {b['op']} {_number(b['threshold'])}"
        for b in decision.get("breaches", [])
    )
    node = root.add(
        f"[bold]decision[/] {short(decision['digest'])} — {'fired' if decision['fired'] else 'did not fire'} "
        f"at {when(decision['decided_at'])}"
        + (f"\nbreach: {escape(breaches)}" if breaches else "")
        + f"\nrationale: {escape(decision['rationale'])}"
    )
    if policy is not None:
        node.add(
            f"[bold]policy[/] {escape(policy['name'])}@{escape(policy['version'])} ({short(policy['digest'])}) "
            f"risk {policy['risk_class']}\nrule: {escape(_filled(policy['rule'], policy['thresholds']))}"
        )
    return node


def _features(parent: Tree, features: dict[str, Any], chain: WhyChain) -> None:
    transform = features["transform"]
    node = parent.add(
        f"[bold]features[/] {short(features['digest'])} — {escape(transform['name'])} "
        f"code {escape(transform['code_version'])}"
        f"{'' if transform.get('deterministic', True) else ' (stochastic)'}, "
        f"window {when(features['window_start'])} → {when(features['window_end'])}"
    )
    shown, hidden = _notable(chain.snapshots), 0
    for index, snapshot in enumerate(chain.snapshots):
        if index not in shown:
            hidden += 1
            continue
        if hidden:
            node.add(f"… {hidden} more snapshot(s), same schema (all of them: --json)")
            hidden = 0
        change = (
            f" [yellow]schema changed from {short(snapshot['previous_schema_fingerprint'])}[/]"
            if snapshot.get("schema_change_from")
            else ""
        )
        node.add(
            f"snapshot {short(snapshot['digest'])} {escape(snapshot['source'])} "
            f"{when(snapshot['window_start'])} → {when(snapshot['window_end'])}, {snapshot['row_count']} row(s), "
            f"schema {short(snapshot['schema_fingerprint'])}{change}"
        )
    for source in chain.sources:
        node.add(f"[bold]source[/] {escape(source['id'])}")


def _filled(rule: str, thresholds: dict[str, float]) -> str:
    """A rule with its threshold names replaced by their values."""
    return re.sub(r"\{(\w+)\}", lambda m: _number(thresholds.get(m.group(1), m.group(0))), rule)


def _notable(snapshots: list[dict[str, Any]]) -> set[int]:
    """Which snapshots to show: the first, the last, and every one where the schema changed."""
    return {0, len(snapshots) - 1} | {i for i, s in enumerate(snapshots) if s.get("schema_change_from")}


def _missing(root: Tree, chain: WhyChain) -> Tree:
    for node_id in chain.missing:
        root.add(f"[red]missing from the store: {escape(node_id)}[/]")
    return root
