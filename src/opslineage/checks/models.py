"""The model layer of ``verify``: does each prediction name a registered model version by its
true digest, made before the prediction, and does that model score the recorded features the
same way again?"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
from collections.abc import Callable

from opslineage.checks.findings import LayerReport
from opslineage.checks.recorded import Artifact, Recorded, parse_time
from opslineage.model.code import load_entry_point

__all__ = ["check_models"]

_LAYER = "model"


def check_models(recorded: Recorded, report: LayerReport, wanted: Callable[[Artifact], bool]) -> None:
    """Run the model checks on every prediction ``wanted`` keeps."""
    for prediction in filter(wanted, recorded.of_type("prediction")):
        content = prediction.content
        model_id = str(content.get("model"))
        model = recorded.models.get(model_id)
        if not report.check(
            _LAYER, "model_known", prediction.id, model is not None, f"{model_id} recorded", "absent"
        ):
            continue
        assert model is not None
        report.check(
            _LAYER,
            "model_digest",
            prediction.id,
            content.get("model_digest") == model.get("artifact_digest"),
            f"{model_id}'s artifact {model.get('artifact_digest')}",
            str(content.get("model_digest")),
        )
        when = parse_time(content.get("predicted_at"))
        registrations = recorded.registered.get(model_id, [])
        first = registrations[0].at if registrations else None
        report.check(
            _LAYER,
            "model_registered_before",
            prediction.id,
            first is not None and when is not None and first <= when,
            f"{model_id} registered by {content.get('predicted_at')}",
            f"registered {first.isoformat()}" if first else "never registered (only used)",
        )
        _rescore(recorded, report, prediction, model_id)


def _rescore(recorded: Recorded, report: LayerReport, prediction: Artifact, model_id: str) -> None:
    model = recorded.models[model_id]
    scorer, packed = model.get("scorer"), model.get("artifact_base64")
    features = recorded.artifacts.get(str(prediction.content.get("features")))
    if not scorer or not packed or features is None:
        return  # not a model whose scoring can be repeated
    try:
        artifact = base64.b64decode(packed, validate=True)
    except (binascii.Error, ValueError):
        artifact = b""
    digest = "sha256:" + hashlib.sha256(artifact).hexdigest()
    if not report.check(
        _LAYER,
        "model_artifact",
        prediction.id,
        digest == model.get("artifact_digest"),
        f"{model_id}'s kept artifact hashes to {model.get('artifact_digest')}",
        digest,
    ):
        return
    try:
        score, label = load_entry_point(str(scorer))(artifact, features.content.get("values") or {})
    except Exception as error:  # whatever the scorer raises is the finding
        score, label = math.nan, f"{type(error).__name__}: {error}"
    recorded_score, recorded_label = prediction.content.get("score"), prediction.content.get("label")
    same = (
        isinstance(recorded_score, int | float)
        and math.isclose(score, recorded_score, rel_tol=1e-9, abs_tol=1e-12)
        and label == recorded_label
    )
    report.check(
        _LAYER,
        "rescored",
        prediction.id,
        same,
        f"score {recorded_score} ({recorded_label})",
        f"score {score} ({label}) when {scorer} scores the recorded features again",
    )
