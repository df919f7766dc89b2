"""The data layer of ``verify``: is each feature set made of what it says, in causal order, with
honest schemas, and does a deterministic transform give the recorded output when run again?"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from opslineage.checks.findings import LayerReport
from opslineage.checks.recorded import Artifact, Recorded, parse_time
from opslineage.model.canonical import canonical_json, digest_of
from opslineage.model.code import identify, load_entry_point

__all__ = ["METRIC_TYPES", "check_data", "metric_rows"]

METRIC_TYPES = frozenset({"float", "double", "int", "integer", "number"})
"""Field types whose values are metrics: what a transform is given when it is run again."""
_LAYER = "data"


def metric_rows(snapshots: list[Artifact]) -> list[dict[str, Any]]:
    """The rows of ``snapshots`` as a transform sees them again: one ``{field: value}`` per row, in
    input order, with the metric fields that have a value."""
    rows = []
    for snapshot in snapshots:
        fields = snapshot.content.get("fields") or []
        for row in snapshot.content.get("rows") or []:
            rows.append(
                {
                    f["name"]: value
                    for f, value in zip(fields, row, strict=False)
                    if f.get("type") in METRIC_TYPES and value is not None
                }
            )
    return rows


def check_data(recorded: Recorded, report: LayerReport, wanted: Callable[[Artifact], bool]) -> None:
    """Run the data checks on every feature set and snapshot ``wanted`` keeps, and the causal
    order along every chain."""
    for features in filter(wanted, recorded.of_type("feature")):
        _check_inputs(recorded, report, features)
        _check_transform(recorded, report, features)
    _check_schemas(recorded, report, wanted)
    _check_order(recorded, report, wanted)


def _check_inputs(recorded: Recorded, report: LayerReport, features: Artifact) -> None:
    content = features.content
    start, end = parse_time(content.get("window_start")), parse_time(content.get("window_end"))
    sources = set(content.get("sources") or [])
    for digest in content.get("inputs") or []:
        snapshot = recorded.artifacts.get(digest)
        exists = snapshot is not None and snapshot.type == "snapshot"
        report.check(_LAYER, "input_exists", features.id, exists, f"snapshot {digest} recorded", "absent")
        if snapshot is None or not exists:
            continue
        source = snapshot.content.get("source")
        report.check(
            _LAYER,
            "input_source",
            features.id,
            source in sources,
            f"a snapshot of {', '.join(sorted(sources)) or 'a named source'}",
            f"{snapshot.id} of {source}",
        )
        first, last = (
            parse_time(snapshot.content.get("window_start")),
            parse_time(snapshot.content.get("window_end")),
        )
        inside = None not in (start, end, first, last) and start <= first and last <= end  # type: ignore[operator]
        report.check(
            _LAYER,
            "input_in_window",
            features.id,
            inside,
            f"inside {content.get('window_start')} → {content.get('window_end')}",
            f"{snapshot.id} {snapshot.content.get('window_start')} → {snapshot.content.get('window_end')}",
        )


def _check_transform(recorded: Recorded, report: LayerReport, features: Artifact) -> None:
    transform = features.content.get("transform") or {}
    if not transform.get("deterministic", True):
        declared = transform.get("seed") is not None or bool(transform.get("stochastic_reason"))
        if report.check(
            _LAYER,
            "stochastic_declared",
            features.id,
            declared,
            "a stochastic transform records its seed or its reason",
            "neither",
        ):
            report.stochastic.append(
                {
                    "node": features.id,
                    "transform": transform.get("name"),
                    "seed": transform.get("seed"),
                    "reason": transform.get("stochastic_reason"),
                }
            )
        return
    entry_point, recorded_digest = transform.get("entry_point"), transform.get("code_digest")
    if not entry_point or not recorded_digest:
        return  # nothing recorded to run again: the transform is only as good as its code version
    try:
        function = load_entry_point(entry_point)
    except LookupError as error:
        report.check(_LAYER, "transform_found", features.id, False, f"{entry_point} importable", str(error))
        return
    current = identify(function).digest
    if not report.check(
        _LAYER,
        "transform_code",
        features.id,
        current == recorded_digest,
        f"code {recorded_digest}",
        f"code changed since recorded: {current}",
    ):
        return
    snapshots = [
        recorded.artifacts[d] for d in features.content.get("inputs") or [] if d in recorded.artifacts
    ]
    expected = digest_of(features.content.get("values"))
    try:
        again = digest_of(function(metric_rows(snapshots)))
    except Exception as error:  # whatever the user's transform raises is the finding
        again = f"{type(error).__name__}: {error}"
    report.check(
        _LAYER,
        "transform_reexecuted",
        features.id,
        again == expected,
        f"output {expected}",
        f"output {again} when run again on the recorded inputs",
    )


def _fingerprint(fields: list[dict[str, Any]]) -> str:
    """The schema fingerprint the SDK records for these fields."""
    pairs = [[f.get("name"), f.get("type")] for f in fields]
    return "sha256:" + hashlib.sha256(canonical_json(pairs)).hexdigest()


def _check_schemas(recorded: Recorded, report: LayerReport, wanted: Callable[[Artifact], bool]) -> None:
    previous: dict[str, str] = {}
    for snapshot in recorded.of_type("snapshot"):
        content = snapshot.content
        fingerprint, source = content.get("schema_fingerprint"), str(content.get("source"))
        before, previous[source] = previous.get(source), str(fingerprint)
        if not wanted(snapshot):
            continue
        computed = _fingerprint(content.get("fields") or [])
        report.check(
            _LAYER, "schema_fingerprint", snapshot.id, computed == fingerprint, computed, str(fingerprint)
        )
        if before is not None and before != fingerprint:
            report.check(
                _LAYER,
                "schema_change_recorded",
                snapshot.id,
                bool(content.get("schema_change_from")),
                f"the change from {before} recorded (schema_change_from)",
                "no schema change recorded",
            )


_STEPS = (
    ("feature", "computed_at", "inputs", "window_end", "snapshot window end"),
    ("prediction", "predicted_at", "features", "computed_at", "features computed"),
    ("decision", "decided_at", "prediction", "predicted_at", "prediction made"),
    ("action", "started_at", "decision", "decided_at", "decision made"),
    ("effect", "window_start", "action", "ended_at", "action ended"),
)
"""Each artifact type, its own time, the field naming what it follows, and that one's time."""


def _check_order(recorded: Recorded, report: LayerReport, wanted: Callable[[Artifact], bool]) -> None:
    for artifact_type, own, follows, their, label in _STEPS:
        for artifact in filter(wanted, recorded.of_type(artifact_type)):
            named = artifact.content.get(follows)
            for digest in named if isinstance(named, list) else [named]:
                earlier = recorded.artifacts.get(str(digest))
                if earlier is not None:
                    _ordered(report, artifact, (earlier.content, their, label), (artifact.content, own))
    for action in filter(wanted, recorded.of_type("action")):
        _ordered(
            report, action, (action.content, "started_at", "action started"), (action.content, "ended_at")
        )
    for effect in filter(wanted, recorded.of_type("effect")):
        acted = recorded.artifacts.get(str(effect.content.get("action")))
        if acted is not None and effect.content.get("before_end") is not None:
            _ordered(
                report,
                effect,
                (effect.content, "before_end", "before-window end"),
                (acted.content, "started_at"),
            )


def _ordered(
    report: LayerReport,
    artifact: Artifact,
    earlier: tuple[dict[str, Any], str, str],
    later: tuple[dict[str, Any], str],
) -> None:
    """Check that the time ``earlier`` names (content, field, label) is not after ``later``'s."""
    (first, first_field, label), (second, second_field) = earlier, later
    then, when = parse_time(first.get(first_field)), parse_time(second.get(second_field))
    report.check(
        _LAYER,
        "causal_order",
        artifact.id,
        then is not None and when is not None and then <= when,
        f"{label} ({first.get(first_field)}) ≤ {second_field}",
        f"{second_field} {second.get(second_field)}",
    )
