"""The why-chain as a tree a responder can follow at 3 a.m., independent of how it is drawn.

:func:`why_view` turns a :class:`~opslineage.query.WhyChain` into a :class:`WhyView`: a tree of
lines, each a run of :class:`Span` texts with a semantic style (``strong``, ``warning``, ``error``).
The CLI draws it with rich, the HTTP API serialises it, and the web pages will lay it out: all
three say the same thing in the same words.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from opslineage.query.why import WhyChain

__all__ = ["ERROR", "STRONG", "WARNING", "Span", "WhyNode", "WhyView", "shift", "short", "when", "why_view"]

STRONG = "strong"
WARNING = "warning"
ERROR = "error"


class Span(msgspec.Struct, frozen=True, omit_defaults=True):
    """A piece of a line's text and how to stress it (None: plainly)."""

    text: str
    style: str | None = None


class WhyNode(msgspec.Struct):
    """One line of the tree (it may hold line breaks) and the lines under it."""

    spans: list[Span]
    children: list[WhyNode] = msgspec.field(default_factory=list)

    def add(self, *spans: Span) -> WhyNode:
        """Append a child line made of ``spans``; returns it."""
        child = WhyNode(list(spans))
        self.children.append(child)
        return child


class WhyView(msgspec.Struct):
    """The tree of a why-chain: action and effects at the root, sources at the leaves."""

    complete: bool
    root: WhyNode


def short(digest: str | None) -> str:
    """A digest cut to 12 hex digits for reading (the chain itself holds it whole)."""
    if not digest:
        return "?"
    algo, _, hexdigest = digest.removeprefix("entity:").partition(":")
    return f"{algo}:{hexdigest[:12]}" if hexdigest else digest[:19]


def when(stamp: str | None) -> str:
    """``2026-01-05T14:35:00.000Z`` → ``2026-01-05 14:35:00Z``."""
    return (stamp or "?").replace("T", " ").replace(".000Z", "Z")


def shift(seconds: float) -> str:
    """How far a replay moved recorded times: ``10551600`` → ``+122d 3h``, ``-90`` → ``-1m 30s``."""
    sign, rest = "-" if seconds < 0 else "+", round(abs(seconds))
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    return sign + " ".join(parts) if parts else "0s"


def _number(value: Any) -> str:
    if value is None:
        return "n/a"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _withheld(kind: str, link: dict[str, Any]) -> list[Span] | None:
    """The line of a link whose payload the reader may not see, or retention shredded (None
    when it is there)."""
    reason = link.get("redacted")
    if reason is not None:
        gone = f"payload redacted ({reason})"
    elif isinstance(link.get("shredded"), dict):
        gone = "payload shredded (retention)"
    else:
        return None
    return [
        Span(kind, STRONG),
        Span(f" {short(link.get('digest') or link['id'])} — {gone}", WARNING),
        *_owned(link),
    ]


def _owned(link: dict[str, Any]) -> list[Span]:
    """Who owns and stewards a link, when an ownership entry names it."""
    owners = link.get("owners")
    if not owners:
        return []
    text = f"owners {', '.join(owners['owners']) or 'none'}"
    if owners["stewards"]:
        text += f" · stewards {', '.join(owners['stewards'])}"
    return [Span(f"\n{text}")]


def why_view(chain: WhyChain) -> WhyView:
    """The chain as a tree of lines (a link the reader may not see shows its digest and label)."""
    root = _action(chain)
    decision = chain.decision
    if decision is None:
        root.add(Span("decision: missing from the store", ERROR))
        return _missing(root, chain)
    node = _decision(root, decision, chain.policy)
    prediction = chain.prediction
    if prediction is not None:
        node = node.add(
            *_withheld("prediction", prediction)
            or [
                Span("prediction", STRONG),
                Span(
                    f" {short(prediction['digest'])} — score {_number(prediction['score'])} ({prediction['label']})"
                ),
                *_owned(prediction),
            ]
        )
        if chain.model is not None:
            model = chain.model
            node.add(
                *_withheld("model", model)
                or [
                    Span("model", STRONG),
                    Span(
                        f" {model['name']}@{model['version']} artifact {short(model['artifact_digest'])}"
                        f" ({model['framework']})"
                    ),
                    *_owned(model),
                ]
            )
        if chain.features is not None:
            _features(node, chain.features, chain)
    return _missing(root, chain)


def _action(chain: WhyChain) -> WhyNode:
    action = chain.action
    if action is None:
        return WhyNode([Span("no action", STRONG), Span(": the decision below did not fire")])
    hidden = _withheld("action", action)
    root = WhyNode(hidden) if hidden else _action_line(action)
    if not chain.effects:
        root.add(Span("effect: not observed yet", WARNING))
    for effect in chain.effects:
        root.add(*_withheld("effect", effect) or _effect_line(effect))
    return root


def _action_line(action: dict[str, Any]) -> WhyNode:
    status = action["status"] + (f" ({action['reason']})" if action.get("reason") else "")
    return WhyNode(
        [
            Span(f"action {action['type']} → {action['target']}", STRONG),
            Span(
                f"  {status}\n{action.get('run', '?')}  {when(action['started_at'])} → {when(action['ended_at'])}\n"
                f"executor {action['executor']}"
                + (f" · approver {action['approver']}" if action.get("approver") else "")
                + f" · params {msgspec.json.encode(action.get('params', {})).decode()}"
            ),
            *_owned(action),
        ]
    )


def _effect_line(effect: dict[str, Any]) -> list[Span]:
    change = (
        f"{effect['metric']} {_number(effect.get('before'))} → {_number(effect.get('after'))}"
        if effect.get("metric")
        else "no metric covers the target"
    )
    before = (
        f"{when(effect['before_start'])} → {when(effect['before_end'])} "
        if effect.get("before_start")
        else ""
    )
    return [
        Span(f"effect: {effect['outcome']}", STRONG),
        Span(
            f" — {change}: before {before}({effect['samples_before']} samples), after "
            f"{when(effect['window_start'])} → {when(effect['window_end'])} ({effect['samples_after']} samples)"
        ),
        *(
            [Span(" — observed in replayed data, not caused by the action", WARNING)]
            if effect.get("attribution") == "observed"
            else []
        ),
        *_owned(effect),
    ]


def _decision(root: WhyNode, decision: dict[str, Any], policy: dict[str, Any] | None) -> WhyNode:
    node = root.add(*_withheld("decision", decision) or _decision_line(decision))
    if policy is not None:
        node.add(
            *_withheld("policy", policy)
            or [
                Span("policy", STRONG),
                Span(
                    f" {policy['name']}@{policy['version']} ({short(policy['digest'])}) risk {policy['risk_class']}"
                    f"\nrule: {_filled(policy['rule'], policy['thresholds'])}"
                ),
                *_owned(policy),
            ]
        )
    return node


def _decision_line(decision: dict[str, Any]) -> list[Span]:
    breaches = "; ".join(
        f"{b['input']} {_number(b['value'])} {b['op']} {_number(b['threshold'])}"
        for b in decision.get("breaches", [])
    )
    return [
        Span("decision", STRONG),
        Span(
            f" {short(decision['digest'])} — {'fired' if decision['fired'] else 'did not fire'} "
            f"at {when(decision['decided_at'])}"
            + (f"\nbreach: {breaches}" if breaches else "")
            + f"\nrationale: {decision['rationale']}"
        ),
        *_owned(decision),
    ]


def _features(parent: WhyNode, features: dict[str, Any], chain: WhyChain) -> None:
    hidden_line = _withheld("features", features)
    if hidden_line:
        node = parent.add(*hidden_line)
    else:
        transform = features["transform"]
        node = parent.add(
            Span("features", STRONG),
            Span(
                f" {short(features['digest'])} — {transform['name']} code {transform['code_version']}"
                f"{'' if transform.get('deterministic', True) else ' (stochastic)'}, "
                f"window {when(features['window_start'])} → {when(features['window_end'])}"
            ),
            *_owned(features),
        )
    shown, hidden = _notable(chain.snapshots), 0
    for index, snapshot in enumerate(chain.snapshots):
        if index not in shown:
            hidden += 1
            continue
        if hidden:
            node.add(Span(f"… {hidden} more snapshot(s), same schema (all of them: --json)"))
            hidden = 0
        withheld = _withheld("snapshot", snapshot)
        if withheld:
            node.add(*withheld)
            continue
        line = [
            Span(
                f"snapshot {short(snapshot['digest'])} {snapshot['source']} "
                f"{when(snapshot['window_start'])} → {when(snapshot['window_end'])}, "
                f"{snapshot['row_count']} row(s), schema {short(snapshot['schema_fingerprint'])}"
            )
        ]
        moved = snapshot.get("time_shift_seconds")
        if moved is not None:
            line.append(Span(f", replayed, shifted {shift(moved)}" if moved else ", replayed, not shifted"))
        if snapshot.get("schema_change_from"):
            line.append(
                Span(f" schema changed from {short(snapshot['previous_schema_fingerprint'])}", WARNING)
            )
        node.add(*line, *_owned(snapshot))
    for source in chain.sources:
        node.add(Span("source", STRONG), Span(f" {source['id']}"), *_owned(source))


def _filled(rule: str, thresholds: dict[str, float]) -> str:
    """A rule with its threshold names replaced by their values."""
    return re.sub(r"\{(\w+)\}", lambda m: _number(thresholds.get(m.group(1), m.group(0))), rule)


def _notable(snapshots: list[dict[str, Any]]) -> set[int]:
    """Which snapshots to show: the first, the last, and every one where the schema changed."""
    return {0, len(snapshots) - 1} | {i for i, s in enumerate(snapshots) if s.get("schema_change_from")}


def _missing(root: WhyNode, chain: WhyChain) -> WhyView:
    for node_id in chain.missing:
        root.add(Span(f"missing from the store: {node_id}", ERROR))
    return WhyView(chain.complete, root)
