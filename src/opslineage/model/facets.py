"""Typed, versioned AIOps facets: the meaning carried on OpenLineage datasets and runs.

Each facet is a msgspec ``Struct``; the JSON Schemas in ``schemas/`` are generated from these
classes (``python -m opslineage.model.schemas``) and a test keeps the two identical. A dataset
facet that carries an artifact's content (snapshot, features, prediction, decision, action,
effect, model, policy) is content-addressed: its digest is the SHA-256 of the RFC 8785 bytes of
the facet without ``_producer`` / ``_schemaURL``.

This is the AIOps facet module: the only one that names an ``aiops_*`` key. :data:`AIOPS_FACETS`
declares to the registry (:mod:`opslineage.model.registry`) what each facet adds to the graph.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import msgspec

from opslineage._version import __version__
from opslineage.model.registry import FacetType, Ref, register_facet, reserve_prefix

__all__ = [
    "AIOPS_FACETS",
    "FACET_VERSION",
    "PRODUCER",
    "ActionFacet",
    "AgentsRunFacet",
    "BaselineFacet",
    "Breach",
    "DecisionFacet",
    "EffectFacet",
    "EntityFacet",
    "FeaturesFacet",
    "Field",
    "HoldFacet",
    "LabelFacet",
    "ModelFacet",
    "Outcome",
    "OwnersFacet",
    "PolicyFacet",
    "PredictionFacet",
    "RetentionFacet",
    "RulesFacet",
    "ShredFacet",
    "SnapshotFacet",
    "SourceFacet",
    "Transform",
    "schema_url",
]

FACET_VERSION = "1-0-0"
PRODUCER = f"https://github.com/opslineage/opslineage/tree/v{__version__}"
SCHEMA_BASE = "https://opslineage.dev/spec/facets"

Outcome = Literal["resolved", "unchanged", "worsened", "insufficient_data", "unverifiable"]


def schema_url(facet: type[_Facet]) -> str:
    """The versioned ``_schemaURL`` of a facet class."""
    return f"{SCHEMA_BASE}/{FACET_VERSION}/{facet.__name__}.json#/$defs/{facet.__name__}"


class _Facet(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    """Base of every facet: the OpenLineage ``_producer`` and ``_schemaURL`` keys."""

    key: ClassVar[str]
    producer: str = msgspec.field(name="_producer", default=PRODUCER)
    schema_url: str = msgspec.field(name="_schemaURL", default="")

    def __post_init__(self) -> None:
        if not self.schema_url:
            self.schema_url = schema_url(type(self))

    def to_dict(self) -> dict[str, Any]:
        """The facet as it goes on the wire: unset optional fields are left out rather than sent as
        null, as OpenLineage's own client drops nulls (so events pass through it unchanged)."""
        return _without_nulls(msgspec.to_builtins(self))


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value


class Field(msgspec.Struct, frozen=True):
    """One field of a telemetry schema: its name and type."""

    name: str
    type: str


class SourceFacet(_Facet, kw_only=True):
    """A telemetry source: who sends the signals (``aiops_source``)."""

    key: ClassVar[str] = "aiops_source"
    source_id: str
    kind: str = "metrics"
    owner: str | None = None
    description: str | None = None


class SnapshotFacet(_Facet, kw_only=True):
    """One captured window of telemetry from a source (``aiops_snapshot``).

    ``schema_change_from`` names the previous snapshot of the same source when the schema
    fingerprint changed between the two.
    """

    key: ClassVar[str] = "aiops_snapshot"
    source: str
    captured_at: str
    window_start: str
    window_end: str
    fields: list[Field]
    schema_fingerprint: str
    row_count: int
    rows: list[list[Any]]
    file_digest: str | None = None
    schema_change_from: str | None = None
    previous_schema_fingerprint: str | None = None
    time_shift_seconds: float | None = None


class Transform(msgspec.Struct, kw_only=True):
    """The code that computed a feature set: name, code version, parameters, rationale.

    ``entry_point`` (``module:qualname``) and ``code_digest`` (SHA-256 of its source) let
    ``verify`` import a deterministic transform, check that its code is the recorded one and run
    it again. A transform that is not deterministic records its ``seed`` or why it has none.
    """

    name: str
    code_version: str
    parameters: dict[str, Any] = {}
    deterministic: bool = True
    rationale: str | None = None
    entry_point: str | None = None
    code_digest: str | None = None
    seed: int | None = None
    stochastic_reason: str | None = None


class FeaturesFacet(_Facet, kw_only=True):
    """A computed feature set and how it was made (``aiops_features``)."""

    key: ClassVar[str] = "aiops_features"
    subject: str
    computed_at: str
    window_start: str
    window_end: str
    transform: Transform
    sources: list[str]
    inputs: list[str]
    values: dict[str, float]


class ModelFacet(_Facet, kw_only=True):
    """A model version and the digest of its artifact bytes (``aiops_model``).

    ``artifact_base64`` keeps the artifact itself when it is small enough to record, and
    ``scorer`` names a deterministic scoring function (``module:qualname``) of it: with both,
    ``verify`` scores each recorded feature set again.
    """

    key: ClassVar[str] = "aiops_model"
    name: str
    version: str
    artifact_digest: str
    framework: str
    parameters: dict[str, Any] = {}
    trained_at: str | None = None
    scorer: str | None = None
    artifact_base64: str | None = None


class PredictionFacet(_Facet, kw_only=True):
    """A model output with the exact input feature set it was computed from (``aiops_prediction``)."""

    key: ClassVar[str] = "aiops_prediction"
    subject: str
    model: str
    model_digest: str
    features: str
    score: float
    label: str
    contributions: dict[str, float] = {}
    predicted_at: str


class PolicyFacet(_Facet, kw_only=True):
    """A remediation policy version: rule, thresholds, risk class, action (``aiops_policy``)."""

    key: ClassVar[str] = "aiops_policy"
    name: str
    version: str
    rule: str
    thresholds: dict[str, float]
    action: str
    params: dict[str, Any] = {}
    risk_class: Literal["low", "medium", "high"] = "low"
    requires_approval: bool = False
    owner: str | None = None
    description: str | None = None


class Breach(msgspec.Struct, kw_only=True):
    """One input that crossed one threshold of a policy rule."""

    input: str
    value: float
    op: Literal[">", ">=", "<", "<=", "=="]
    threshold: float


class DecisionFacet(_Facet, kw_only=True):
    """A policy evaluation: fired or not, which input breached what, the action chosen and why.

    ``held_back`` says why a decision whose rule held did not fire (a cooldown, say).
    """

    key: ClassVar[str] = "aiops_decision"
    subject: str
    policy: str
    policy_digest: str
    model: str
    prediction: str
    features: str
    fired: bool
    breaches: list[Breach] = []
    action: str | None = None
    params: dict[str, Any] = {}
    rationale: str
    decided_at: str
    held_back: str | None = None


class ActionFacet(_Facet, kw_only=True):
    """A remediation as executed, with a frozen copy of what it was decided on (``aiops_action``)."""

    key: ClassVar[str] = "aiops_action"
    type: str
    target: str
    params: dict[str, Any] = {}
    executor: str
    approver: str | None = None
    approved_at: str | None = None
    status: Literal["succeeded", "failed", "failed_to_start"]
    reason: str | None = None
    started_at: str
    ended_at: str
    decision: str
    policy: str
    policy_digest: str
    prediction: str
    model: str
    features: str


class EffectFacet(_Facet, kw_only=True):
    """The observed effect of an action after its stabilization window (``aiops_effect``).

    ``insufficient_data`` (too few samples) is never a success; ``unverifiable`` means no metric
    covers the target, or the world could not react to the action. ``window_start``/``window_end``
    span the samples after the action, ``before_start``/``before_end`` those before it.
    ``attribution`` says what the verdict rests on: ``caused`` when the target could react to the
    action (live, or simulated), ``observed`` when the change was only seen in the series after it
    (replayed telemetry), never caused by it.
    """

    key: ClassVar[str] = "aiops_effect"
    action: str
    action_run: str
    target: str
    window_start: str
    window_end: str
    samples_before: int
    samples_after: int
    outcome: Outcome
    observed_at: str
    metric: str | None = None
    before: float | None = None
    after: float | None = None
    before_start: str | None = None
    before_end: str | None = None
    attribution: Literal["caused", "observed"] | None = None


class RulesFacet(_Facet, kw_only=True):
    """A set of governance rules a steward registered (``aiops_rules``): the rules in force from
    ``registered_at`` on, until a later set of the same name, and the digest of the file read."""

    key: ClassVar[str] = "aiops_rules"
    name: str
    registered_at: str
    rules: list[dict[str, Any]]
    roles: dict[str, list[str]] = {}
    file_digest: str | None = None
    steward: str | None = None


class BaselineFacet(_Facet, kw_only=True):
    """The lineage structure as it stood when a baseline was saved or accepted (``aiops_baseline``)."""

    key: ClassVar[str] = "aiops_baseline"
    name: str
    saved_at: str
    namespace: str | None = None
    structure: dict[str, Any] = {}


class LabelFacet(_Facet, kw_only=True):
    """A sensitivity label a steward set (``aiops_label``): records of ``namespace`` (of node type
    ``kind`` and telemetry ``source`` when given) are at ``level`` from ``set_at`` on."""

    key: ClassVar[str] = "aiops_label"
    namespace: str
    level: Literal["public", "internal", "restricted"]
    kind: str | None = None
    source: str | None = None
    set_at: str
    set_by: str


class OwnersFacet(_Facet, kw_only=True):
    """Who owns and who stewards a part of the lineage (``aiops_owners``): a ``namespace``, or in
    it one ``source``, ``job``, ``model`` or ``policy`` by name, from ``set_at`` on."""

    key: ClassVar[str] = "aiops_owners"
    namespace: str
    scope: Literal["namespace", "source", "job", "model", "policy"] = "namespace"
    name: str | None = None
    owners: list[str] = []
    stewards: list[str] = []
    set_at: str
    set_by: str


class RetentionFacet(_Facet, kw_only=True):
    """A retention rule a steward set (``aiops_retention``): artifact contents of ``namespace`` (of
    node type ``kind`` when given) are shredded ``keep_days`` days after their event's time."""

    key: ClassVar[str] = "aiops_retention"
    namespace: str
    kind: str | None = None
    keep_days: int
    set_at: str
    set_by: str


class HoldFacet(_Facet, kw_only=True):
    """A legal hold (``aiops_hold``), placed (``active``) or released: the records of ``node``, or
    of all ``namespace`` when no node is named, are not shredded while it is in force."""

    key: ClassVar[str] = "aiops_hold"
    namespace: str
    node: str | None = None
    reason: str
    active: bool = True
    set_at: str
    set_by: str


class ShredFacet(_Facet, kw_only=True):
    """A shred that retention did (``aiops_shred``): the data keys of ``namespace``'s month
    ``period`` destroyed, ``artifacts`` contents removed, ``held`` kept under a fresh key, by ``rule``."""

    key: ClassVar[str] = "aiops_shred"
    namespace: str
    period: str
    data_keys: list[str]
    artifacts: int
    held: int = 0
    rule: dict[str, Any]
    shredded_at: str
    shredded_by: str


class EntityFacet(_Facet, kw_only=True):
    """Marks a dataset as a content-addressed artifact (``aiops_entity``): its type and digest."""

    key: ClassVar[str] = "aiops_entity"
    type: str
    digest: str


class AgentRole(msgspec.Struct, kw_only=True):
    """An agent and the role it played in a run (executor, approver, owner …)."""

    name: str
    role: str


class AgentsRunFacet(_Facet, kw_only=True):
    """The services or people that ran or approved a run (``aiops_agents``)."""

    key: ClassVar[str] = "aiops_agents"
    agents: list[AgentRole]


AIOPS_FACETS: tuple[FacetType, ...] = (
    FacetType(ModelFacet.key, ModelFacet, "model", ident="version", versioned=True, content=True),
    FacetType(PolicyFacet.key, PolicyFacet, "policy", ident="version", versioned=True, content=True),
    FacetType(SourceFacet.key, SourceFacet, "source", ident="dataset"),
    FacetType(
        SnapshotFacet.key,
        SnapshotFacet,
        "entity",
        "snapshot",
        content=True,
        refs=(
            Ref("schema_change_from", role="schema_change", why=False, type="snapshot"),
            Ref("source", "source", "id", edge=None, type="source"),
        ),
    ),
    FacetType(
        FeaturesFacet.key,
        FeaturesFacet,
        "entity",
        "feature",
        content=True,
        refs=(Ref("inputs", role="input", type="snapshot"),),
    ),
    FacetType(
        PredictionFacet.key,
        PredictionFacet,
        "entity",
        "prediction",
        content=True,
        refs=(
            Ref("model", "model", "id", edge=None, type="model"),
            Ref("features", role="features", type="feature"),
        ),
    ),
    FacetType(
        DecisionFacet.key,
        DecisionFacet,
        "entity",
        "decision",
        content=True,
        refs=(
            Ref("policy", "policy", "id", edge=None, type="policy"),
            Ref("prediction", role="prediction", type="prediction"),
        ),
    ),
    FacetType(
        ActionFacet.key,
        ActionFacet,
        "entity",
        "action",
        content=True,
        refs=(Ref("decision", role="decision", type="decision"),),
    ),
    FacetType(
        EffectFacet.key,
        EffectFacet,
        "entity",
        "effect",
        content=True,
        refs=(Ref("action", role="action", type="action", why=False),),
    ),
    FacetType(RulesFacet.key, RulesFacet, "entity", "rules", content=True),
    FacetType(BaselineFacet.key, BaselineFacet, "entity", "baseline", content=True),
    FacetType(LabelFacet.key, LabelFacet, "entity", "label", content=True),
    FacetType(OwnersFacet.key, OwnersFacet, "entity", "owners", content=True),
    FacetType(RetentionFacet.key, RetentionFacet, "entity", "retention", content=True),
    FacetType(HoldFacet.key, HoldFacet, "entity", "hold", content=True),
    FacetType(ShredFacet.key, ShredFacet, "entity", "shred", content=True),
    FacetType(EntityFacet.key, EntityFacet, "entity", ident="declared"),
    FacetType(
        AgentsRunFacet.key,
        AgentsRunFacet,
        None,
        on="run",
        refs=(
            Ref(
                "agents",
                "agent",
                "name",
                edge="wasAssociatedWith",
                item="name",
                role_item="role",
                why=False,
            ),
        ),
    ),
)
"""Our AIOps facets, as the registry knows them; the order is the order a dataset's node-making
facets are tried in (a model or policy version first, then a source, then an artifact)."""

reserve_prefix("aiops_")
for _facet in AIOPS_FACETS:
    register_facet(_facet)
