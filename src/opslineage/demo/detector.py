"""Rolling telemetry features and a robust z-score anomaly model.

This module owns the demo's anomaly model: ``rolling_features`` turns a window of metric rows into a
feature vector, and ``RobustZModel`` learns each feature's median and median absolute deviation (MAD) from
normal operation and scores new vectors by their robust z-scores. The model's parameters serialise to
deterministic bytes (``artifact_bytes``) whose SHA-256 identifies the model artifact in lineage records.
It is pure Python apart from numpy medians, and depends on nothing else in opslineage.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "DEFAULT_THRESHOLD",
    "DEFAULT_WINDOW",
    "DIGITS",
    "FLEET_FEATURES",
    "RobustZModel",
    "rolling_features",
]

DEFAULT_WINDOW = 12
"""Rows per rolling window: one hour of five-minute telemetry."""
FLEET_FEATURES = ("cpu_slope", "error_rate_slope", "latency_ms_slope", "mem_slope")
"""Trend features: they catch the simulated fleet's incidents as they develop and, unlike levels, are
immune to daily seasonality and to per-service baselines (the model trains on the night only)."""
DEFAULT_THRESHOLD = 7.0
"""Robust z above which a vector is labelled an anomaly."""
DIGITS = 10
"""Significant digits kept in fitted parameters, so the serialised bytes are stable."""

_MAD_TO_SIGMA = 1.4826  # MAD of a normal distribution times this is its standard deviation
_MEAN_AD_TO_SIGMA = 1.2533  # likewise for the mean absolute deviation
_FORMAT = "opslineage.robust_z/1"


def _round(value: float) -> float:
    return float(f"{value:.{DIGITS}g}")


def rolling_features(window: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Summarise the last N metric rows of one service.

    For every metric in the newest row this yields ``<metric>_mean``, ``<metric>_std`` (population),
    ``<metric>_last`` and ``<metric>_slope`` (least-squares change per row). A metric that appears only in
    the later rows of the window (a schema change) is summarised over the rows that carry it.

    Args:
        window: Metric rows, oldest first.

    Returns:
        Feature name to value, keys sorted.

    Raises:
        ValueError: When the window is empty or a value is not finite.
    """
    if not window:
        raise ValueError("rolling_features needs at least one row")
    features: dict[str, float] = {}
    for metric in sorted(window[-1]):
        points = [(float(i), float(row[metric])) for i, row in enumerate(window) if metric in row]
        if not all(math.isfinite(v) for _, v in points):
            raise ValueError(f"non-finite value for {metric!r} in the window")
        n = len(points)
        mean_x = sum(x for x, _ in points) / n
        mean = sum(v for _, v in points) / n
        sxx = sum((x - mean_x) ** 2 for x, _ in points)
        sxy = sum((x - mean_x) * (v - mean) for x, v in points)
        features[f"{metric}_mean"] = mean
        features[f"{metric}_std"] = math.sqrt(sum((v - mean) ** 2 for _, v in points) / n)
        features[f"{metric}_last"] = points[-1][1]
        features[f"{metric}_slope"] = sxy / sxx if sxx > 0 else 0.0
    return dict(sorted(features.items()))


@dataclass
class RobustZModel:
    """Robust z-score (median/MAD) anomaly detector over named features.

    A feature's robust z is ``(value - median) / scale`` with ``scale = 1.4826 * MAD``. With
    ``side="upper"`` (the default, for telemetry where higher is worse) only positive deviations count;
    with ``side="both"`` the absolute value counts. The score is the mean of the ``top_k`` largest
    contributions (the maximum when ``top_k == 1``).

    Attributes:
        name: Model name supplied by the caller, recorded in the artifact.
        version: Model version supplied by the caller, recorded in the artifact.
        features: Feature names, in the order they were fitted.
        median: Fitted median per feature.
        scale: Fitted robust scale per feature (never zero).
        threshold: Score above which ``predict`` labels a vector ``"anomaly"``.
        side: ``"upper"`` or ``"both"``.
        top_k: How many of the largest contributions the score averages.
    """

    name: str = "robust-z"
    version: str = "0.1.0"
    features: list[str] = field(default_factory=list)
    median: dict[str, float] = field(default_factory=dict)
    scale: dict[str, float] = field(default_factory=dict)
    threshold: float = DEFAULT_THRESHOLD
    side: str = "upper"
    top_k: int = 1

    def fit(
        self,
        rows: Sequence[Mapping[str, float]],
        features: Sequence[str] | None = None,
        threshold: float = DEFAULT_THRESHOLD,
        *,
        side: str = "upper",
        top_k: int = 1,
    ) -> RobustZModel:
        """Learn each feature's median and robust scale from rows of normal operation.

        A feature whose MAD is zero falls back to the mean absolute deviation, and then to a tiny floor,
        so the scale is never zero.

        Args:
            rows: Feature vectors (e.g. from ``rolling_features``).
            features: Features to use; by default every feature present in all rows, sorted.
            threshold: Score above which a vector is an anomaly.
            side: ``"upper"`` to count only values above the median, ``"both"`` for either direction.
            top_k: Number of largest contributions averaged into the score.

        Returns:
            This model, fitted.

        Raises:
            ValueError: On no rows, a missing or non-finite feature value, or a bad option.
        """
        if not rows:
            raise ValueError("fit needs at least one row")
        if side not in ("upper", "both"):
            raise ValueError(f"side must be 'upper' or 'both', got {side!r}")
        names = list(features) if features is not None else sorted(set.intersection(*(set(r) for r in rows)))
        if not names or not 1 <= top_k <= len(names) or threshold <= 0:
            raise ValueError("need at least one feature, 1 <= top_k <= features and threshold > 0")
        median, scale = {}, {}
        for name in names:
            missing = [i for i, row in enumerate(rows) if name not in row]
            if missing:
                raise ValueError(f"feature {name!r} missing from training row {missing[0]}")
            values = np.array([float(row[name]) for row in rows])
            if not np.all(np.isfinite(values)):
                raise ValueError(f"feature {name!r} has non-finite training values")
            med = float(np.median(values))
            spread = _MAD_TO_SIGMA * float(np.median(np.abs(values - med)))
            if spread == 0.0:
                spread = _MEAN_AD_TO_SIGMA * float(np.mean(np.abs(values - med)))
            median[name] = _round(med)
            scale[name] = _round(max(spread, 1e-6 * max(1.0, abs(med))))
        self.features, self.median, self.scale = names, median, scale
        self.threshold, self.side, self.top_k = _round(float(threshold)), side, top_k
        return self

    def contributions(self, vector: Mapping[str, float]) -> dict[str, float]:
        """Return each feature's robust z (its positive part when ``side="upper"``, else its |z|).

        Raises:
            RuntimeError: When the model is not fitted.
            ValueError: When the vector lacks a feature or carries a non-finite value.
        """
        if not self.features:
            raise RuntimeError("the model is not fitted")
        missing = [f for f in self.features if f not in vector]
        if missing:
            raise ValueError(f"vector lacks features {missing}")
        out = {}
        for name in self.features:
            value = float(vector[name])
            if not math.isfinite(value):
                raise ValueError(f"feature {name!r} is not finite: {value}")
            z = (value - self.median[name]) / self.scale[name]
            out[name] = max(z, 0.0) if self.side == "upper" else abs(z)
        return out

    def score(self, vector: Mapping[str, float]) -> float:
        """Return the anomaly score: the mean of the ``top_k`` largest contributions."""
        top = sorted(self.contributions(vector).values(), reverse=True)[: self.top_k]
        return sum(top) / len(top)

    def predict(self, vector: Mapping[str, float]) -> tuple[float, str]:
        """Return ``(score, label)`` with label ``"anomaly"`` when the score exceeds the threshold."""
        value = self.score(vector)
        return value, "anomaly" if value > self.threshold else "normal"

    def breaches(self, vector: Mapping[str, float]) -> list[str]:
        """Return the features whose contribution exceeds the threshold, largest first."""
        contributions = self.contributions(vector)
        ordered = sorted(contributions, key=lambda f: (-contributions[f], f))
        return [f for f in ordered if contributions[f] > self.threshold]

    def to_dict(self) -> dict[str, Any]:
        """Return every parameter as a JSON-ready dict (floats already rounded to ``DIGITS``)."""
        return {
            "format": _FORMAT,
            "name": self.name,
            "version": self.version,
            "features": list(self.features),
            "median": {f: self.median[f] for f in self.features},
            "scale": {f: self.scale[f] for f in self.features},
            "threshold": self.threshold,
            "side": self.side,
            "top_k": self.top_k,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RobustZModel:
        """Rebuild a model from ``to_dict`` output.

        Raises:
            ValueError: When the dict is not a robust z-score model or lacks parameters.
        """
        if data.get("format") != _FORMAT:
            raise ValueError(f"not a robust z-score model: format {data.get('format')!r}")
        try:
            features = [str(f) for f in data["features"]]
            model = cls(
                name=str(data["name"]),
                version=str(data["version"]),
                features=features,
                median={f: float(data["median"][f]) for f in features},
                scale={f: float(data["scale"][f]) for f in features},
                threshold=float(data["threshold"]),
                side=str(data["side"]),
                top_k=int(data["top_k"]),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"incomplete robust z-score model: {exc!r}") from exc
        if model.side not in ("upper", "both") or not 1 <= model.top_k <= len(features):
            raise ValueError(f"invalid side {model.side!r} or top_k {model.top_k}")
        return model

    def artifact_bytes(self) -> bytes:
        """Return the canonical serialisation: sorted-key, compact JSON of ``to_dict()`` in UTF-8."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":")).encode("utf-8")

    def digest(self) -> str:
        """Return the SHA-256 hex digest of ``artifact_bytes()``."""
        return hashlib.sha256(self.artifact_bytes()).hexdigest()


def score(artifact: bytes, values: Mapping[str, float]) -> tuple[float, str]:
    """Score ``values`` with the model whose artifact bytes are ``artifact``: the scorer the demo
    records with each model version, so that ``verify`` can score a prediction again."""
    return RobustZModel.from_dict(json.loads(artifact)).predict(values)
