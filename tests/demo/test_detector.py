"""Tests for rolling features and the robust z-score model, including detection on the simulated fleet."""

from __future__ import annotations

import hashlib
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opslineage.demo.detector import (
    DEFAULT_THRESHOLD,
    DEFAULT_WINDOW,
    DIGITS,
    FLEET_FEATURES,
    RobustZModel,
    rolling_features,
)
from opslineage.demo.fleet import Fleet

_finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


def test_rolling_features_of_a_known_window() -> None:
    features = rolling_features([{"cpu": c, "mem": 7.0} for c in (1.0, 3.0, 5.0)])
    assert list(features) == sorted(features)
    assert features["cpu_mean"] == 3.0 and features["cpu_last"] == 5.0 and features["cpu_slope"] == 2.0
    assert features["cpu_std"] == pytest.approx(math.sqrt(8 / 3))
    assert features["mem_std"] == 0.0 and features["mem_slope"] == 0.0
    assert set(features) == {f"{m}_{s}" for m in ("cpu", "mem") for s in ("mean", "std", "last", "slope")}


def test_rolling_features_of_one_row_and_bad_windows() -> None:
    assert rolling_features([{"x": 4.0}]) == {"x_mean": 4.0, "x_std": 0.0, "x_last": 4.0, "x_slope": 0.0}
    with pytest.raises(ValueError):
        rolling_features([])
    with pytest.raises(ValueError, match="non-finite"):
        rolling_features([{"x": 1.0}, {"x": math.nan}])


def test_rolling_features_follow_a_field_added_mid_window() -> None:
    window = [{"cpu": 1.0}, {"cpu": 1.0}, {"cpu": 1.0, "gc": 10.0}, {"cpu": 1.0, "gc": 14.0}]
    features = rolling_features(window)
    assert features["gc_mean"] == 12.0 and features["gc_slope"] == 4.0 and features["gc_last"] == 14.0


@settings(max_examples=60, deadline=None)
@given(st.lists(_finite, min_size=2, max_size=20), _finite, st.floats(min_value=-100, max_value=100))
def test_rolling_features_shift_and_trend(values: list[float], shift: float, trend: float) -> None:
    base = rolling_features([{"v": x} for x in values])
    moved = rolling_features([{"v": x + shift + trend * i} for i, x in enumerate(values)])
    scale = 1e-6 * (1 + max(abs(x) for x in values) + abs(shift) + 100 * len(values))
    assert moved["v_slope"] == pytest.approx(base["v_slope"] + trend, abs=scale)
    assert moved["v_last"] == pytest.approx(base["v_last"] + shift + trend * (len(values) - 1), abs=scale)
    assert base["v_std"] >= 0 and min(values) - scale <= base["v_mean"] <= max(values) + scale


def test_fit_learns_median_and_mad() -> None:
    rows = [{"a": v, "b": 10.0} for v in (1.0, 2.0, 3.0, 4.0, 100.0)]
    model = RobustZModel(name="m", version="1").fit(rows, threshold=4.0)
    assert model.features == ["a", "b"]
    assert model.median == {"a": 3.0, "b": 10.0}
    assert model.scale["a"] == pytest.approx(1.4826)
    assert 0 < model.scale["b"] < 1e-3  # MAD == 0 and no spread at all: a tiny floor, never zero
    assert model.contributions({"a": 3 + 1.4826 * 5, "b": 10.0}) == pytest.approx({"a": 5.0, "b": 0.0})
    assert model.predict({"a": 3 + 1.4826 * 5, "b": 10.0}) == (pytest.approx(5.0), "anomaly")
    assert model.predict({"a": 3 + 1.4826 * 3, "b": 10.0})[1] == "normal"
    assert model.breaches({"a": 100.0, "b": 11.0}) == ["b", "a"]


def test_zero_mad_falls_back_to_mean_absolute_deviation() -> None:
    rows = [{"x": v} for v in (5.0, 5.0, 5.0, 5.0, 9.0)]
    model = RobustZModel().fit(rows)
    assert model.scale["x"] == pytest.approx(1.2533 * 4 / 5)
    assert math.isfinite(model.score({"x": 1e9}))


def test_upper_side_ignores_drops_but_both_sides_do_not() -> None:
    rows = [{"x": float(v)} for v in range(-10, 11)]
    upper = RobustZModel().fit(rows, threshold=3.0)
    both = RobustZModel().fit(rows, threshold=3.0, side="both")
    assert upper.predict({"x": -100.0}) == (0.0, "normal")
    assert both.predict({"x": -100.0})[1] == "anomaly"
    assert both.contributions({"x": -100.0})["x"] == pytest.approx(upper.contributions({"x": 100.0})["x"])


def test_top_k_averages_the_largest_contributions() -> None:
    rows = [{"a": float(v), "b": float(v), "c": float(v)} for v in range(-5, 6)]
    model = RobustZModel().fit(rows, top_k=2)
    za = model.contributions({"a": 9.0, "b": 3.0, "c": 0.0})
    assert model.score({"a": 9.0, "b": 3.0, "c": 0.0}) == pytest.approx((za["a"] + za["b"]) / 2)


def test_model_misuse_raises() -> None:
    with pytest.raises(RuntimeError):
        RobustZModel().score({"x": 1.0})
    with pytest.raises(ValueError):
        RobustZModel().fit([])
    with pytest.raises(ValueError):
        RobustZModel().fit([{"x": 1.0}], side="lower")
    with pytest.raises(ValueError, match="missing"):
        RobustZModel().fit([{"x": 1.0}, {"y": 2.0}], features=["x"])
    model = RobustZModel().fit([{"x": 1.0, "y": 2.0}])
    with pytest.raises(ValueError, match="lacks"):
        model.score({"x": 1.0})
    with pytest.raises(ValueError, match="finite"):
        model.score({"x": math.inf, "y": 0.0})
    with pytest.raises(ValueError):
        RobustZModel.from_dict({"format": "other"})
    with pytest.raises(ValueError, match="incomplete"):
        RobustZModel.from_dict({**model.to_dict(), "scale": {}})
    with pytest.raises(ValueError, match="side"):
        RobustZModel.from_dict({**model.to_dict(), "side": "lower"})


def test_artifact_is_stable_and_round_trips() -> None:
    rows = [{"a": 1 / 3 + i * math.pi, "b": math.e * i**2} for i in range(40)]
    model = RobustZModel(name="fleet-anomaly", version="2.1.0").fit(rows, threshold=5.5)
    again = RobustZModel(name="fleet-anomaly", version="2.1.0").fit(list(reversed(rows)), threshold=5.5)
    blob = model.artifact_bytes()
    assert blob == again.artifact_bytes()
    assert blob == json.dumps(json.loads(blob), sort_keys=True, separators=(",", ":")).encode()
    assert model.digest() == hashlib.sha256(blob).hexdigest()
    params = [*model.median.values(), *model.scale.values(), model.threshold]
    assert all(v == float(f"{v:.{DIGITS}g}") for v in params)  # rounded, so the bytes are stable
    assert any(v != float(f"{v:.{DIGITS - 2}g}") for v in params)  # but not more than that
    loaded = RobustZModel.from_dict(json.loads(blob))
    assert loaded == model and loaded.artifact_bytes() == blob
    probe = {"a": 200.0, "b": 5000.0}
    assert loaded.predict(probe) == model.predict(probe)
    assert json.loads(blob)["name"] == "fleet-anomaly" and json.loads(blob)["version"] == "2.1.0"
    renamed = RobustZModel(name="fleet-anomaly", version="2.1.1").fit(rows, threshold=5.5)
    assert renamed.digest() != model.digest()


def _detect(seed: int) -> tuple[Fleet, RobustZModel, dict[str, list[dict[str, float]]], list]:
    """Run a fleet, fit on the first quarter of steps (all services pooled), return per-step features."""
    fleet = Fleet(seed=seed)
    history: dict[str, list[dict[str, float]]] = {s: [] for s in fleet.services}
    features: dict[str, list[dict[str, float]]] = {s: [] for s in fleet.services}
    times = []
    for _ in range(fleet.steps_total):
        for service, row in fleet.tick().items():
            history[service].append(row)
            features[service].append(rolling_features(history[service][-DEFAULT_WINDOW:]))
        times.append(fleet.now)
    training = fleet.steps_total // 4
    rows = [v for s in fleet.services for v in features[s][:training]]
    model = RobustZModel(name="fleet-anomaly", version="1").fit(rows, list(FLEET_FEATURES))
    return fleet, model, features, times


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_model_catches_injected_incidents_with_few_false_positives(seed: int) -> None:
    fleet, model, features, times = _detect(seed)
    assert model.threshold == DEFAULT_THRESHOLD
    training = fleet.steps_total // 4
    caught: dict[str, list[str]] = {}
    false_pos = negatives = 0
    for service in fleet.services:
        for k in range(training, fleet.steps_total):
            covering = [i for i in fleet.incidents if i.service == service and i.covers(times[k])]
            _, label = model.predict(features[service][k])
            if covering:
                if label == "anomaly" and covering[0].id not in caught:
                    caught[covering[0].id] = model.breaches(features[service][k])
            else:
                negatives += 1
                false_pos += label == "anomaly"
    recall = len(caught) / len(fleet.incidents)
    assert recall >= 0.8
    assert false_pos / negatives <= 0.05
    # the breached inputs point at the cause, so a policy can choose the fix
    signature = {"cpu_saturation": "cpu_slope", "memory_leak": "mem_slope", "bad_deploy": "error_rate_slope"}
    telling = [i for i in fleet.incidents if signature[i.kind] in caught.get(i.id, [])]
    assert len(telling) >= 0.8 * len(fleet.incidents)


def test_training_period_is_mostly_normal() -> None:
    fleet, model, features, _ = _detect(0)
    training = fleet.steps_total // 4
    labels = [model.predict(features[s][k])[1] for s in fleet.services for k in range(training)]
    assert labels.count("anomaly") / len(labels) < 0.02
