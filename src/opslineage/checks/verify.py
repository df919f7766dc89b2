"""``verify --layers``: the judged layers (data, model, policy and the governance rules) run over
what the log recorded, read once."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from opslineage.checks.data import check_data
from opslineage.checks.findings import JUDGED_LAYERS, LAYERS, LayerReport
from opslineage.checks.models import check_models
from opslineage.checks.policy import check_policies
from opslineage.checks.recorded import Artifact, Recorded, read_recorded
from opslineage.checks.rules import RuleSet, check_rules
from opslineage.query import Reader

__all__ = ["correctness", "parse_layers", "verify_layers"]


def parse_layers(text: str) -> tuple[str, ...]:
    """The layers a ``--layers`` value names (``all``, or a comma-separated list), in run order.

    Raises:
        ValueError: it names a layer that does not exist, or none.
    """
    names = [part.strip() for part in text.split(",") if part.strip()]
    if names == ["all"]:
        return LAYERS
    unknown = [name for name in names if name not in LAYERS]
    if unknown or not names:
        raise ValueError(f"unknown layer {unknown[0]!r}" if unknown else "no layer named")
    return tuple(layer for layer in LAYERS if layer in names)


def verify_layers(
    reader: Reader,
    layers: Sequence[str],
    *,
    namespace: str | None = None,
    since: datetime | None = None,
    rules: RuleSet | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> LayerReport:
    """Judge the lineage at each of ``layers`` (other than ``integrity``, which is the log's own
    check). ``namespace`` and ``since`` keep only what was recorded in that namespace and at or
    after that event time; ``rules``, when given, are checked instead of the registered ones."""
    recorded = read_recorded(reader, on_progress)
    wanted = _selector(recorded, namespace, since)
    report = LayerReport()
    if "data" in layers:
        check_data(recorded, report, wanted)
    if "model" in layers:
        check_models(recorded, report, wanted)
    if "policy" in layers:
        check_policies(recorded, report, wanted)
        check_rules(recorded, report, wanted, rules)
    return report


def correctness(
    reader: Reader, namespace: str | None = None, since: datetime | None = None
) -> dict[str, tuple[int, int]]:
    """Per judged layer, how many of its checks pass and how many ran: quality's correctness."""
    return verify_layers(reader, JUDGED_LAYERS, namespace=namespace, since=since).correctness()


def _selector(
    recorded: Recorded, namespace: str | None, since: datetime | None
) -> Callable[[Artifact], bool]:
    def wanted(artifact: Artifact) -> bool:
        run = recorded.runs.get(artifact.run)
        if namespace is not None and (run is None or run.namespace != namespace):
            return False
        return since is None or (artifact.happened is not None and artifact.happened >= since)

    return wanted
