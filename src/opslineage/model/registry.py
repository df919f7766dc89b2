"""The facet registry: what each typed facet means to the graph.

A :class:`FacetType` declares a facet's key, the typed class it is checked against, the node it
makes (kind, type, and how its id is formed), the fields that name other nodes (:class:`Ref`:
which field, which node, which edge), whether its node is versioned (one version, one content,
forever) and whether its content is split out as an artifact. The parser, the store's rules and
``why`` read the registry; nothing in the graph engine names a facet. :func:`register_facet` is
the one way in, for our AIOps facets (:mod:`opslineage.model.facets`) and for anyone else's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal, NamedTuple

import msgspec

from opslineage.model.ids import KINDS, register_kind

__all__ = [
    "EDGE_KINDS",
    "REGISTERED",
    "DatasetPlan",
    "FacetType",
    "Ref",
    "dataset_plan",
    "facet_type",
    "facet_types",
    "is_reserved",
    "rank",
    "register_facet",
    "reserve_prefix",
    "type_of_node",
    "why_depth",
    "why_refs",
]

EDGE_KINDS = ("used", "wasGeneratedBy", "wasAssociatedWith", "hasParent", "wasDerivedFrom")
"""The edge kinds of the graph (those PROV and our exports know)."""

Names = Literal["digest", "id", "name"]
Ident = Literal["content", "version", "dataset", "declared"]


@dataclass(frozen=True, slots=True)
class Ref:
    """A facet field that names another node.

    Attributes:
        field: the attribute of the typed facet: a string, a list of strings, or (with ``item``)
            a list of objects.
        target: the kind of node it names (``entity``, ``policy``, ``agent`` …).
        names: how a value names it: ``digest`` (a content digest, ``entity:<digest>``), ``id``
            (the full node id), or ``name`` (``<target>:<value>``; the node is added to the graph).
        edge: the edge kind from the facet's node (a run facet's run) to the named one; None for a
            reference that ``why`` follows but the graph does not index.
        role: the edge's role.
        item: with a list of objects, the attribute of each that holds the value.
        role_item: the attribute of each object that holds the edge's role (instead of ``role``).
        why: whether ``why`` follows it, from the cause it names back to that cause's causes.
        type: the type of node it names, when it is one (tells ``why`` how far a chain reaches).
    """

    field: str
    target: str = "entity"
    names: Names = "digest"
    edge: str | None = "wasDerivedFrom"
    role: str | None = None
    item: str | None = None
    role_item: str | None = None
    why: bool = True
    type: str | None = None

    def node_id(self, value: str) -> str:
        """The id of the node ``value`` names."""
        if self.names == "digest":
            return "entity:" + value
        if self.names == "name":
            return f"{self.target}:{value}"
        return value


@dataclass(frozen=True, slots=True)
class FacetType:
    """One kind of typed facet and what it adds to the graph.

    Attributes:
        key: the key the facet is stored under in ``facets`` (e.g. ``acme_dashboard``).
        struct: the msgspec ``Struct`` class the facet is checked against (unknown fields pass).
        kind: the kind of node it makes (an id prefix; a new one is registered), or None for a
            run facet that only adds edges.
        type: the node's type (defaults to ``kind``); for content, the artifact's type.
        on: where it goes: on a ``dataset`` (inputs, outputs, a DatasetEvent) or on a ``run``.
        ident: how its node id is formed: ``content`` (``entity:<content digest>``), ``version``
            (``<kind>:<name>@<version>`` from its ``name`` and ``version`` fields), ``dataset``
            (``<kind>:<namespace>:<name>`` of the dataset carrying it), or ``declared`` (its
            ``type`` and ``digest`` fields name an artifact recorded elsewhere).
        refs: the fields that name other nodes, in the order ``why`` follows them.
        versioned: re-registering the same node id with different content is refused.
        content: the facet's content is an artifact, split out of the event and stored once.
    """

    key: str
    struct: type[msgspec.Struct]
    kind: str | None
    type: str | None = None
    on: Literal["dataset", "run"] = "dataset"
    ident: Ident = "content"
    refs: tuple[Ref, ...] = ()
    versioned: bool = False
    content: bool = False

    @property
    def node_type(self) -> str:
        """The type of the node it makes."""
        return self.type or self.kind or self.key


_TYPES: dict[str, FacetType] = {}
REGISTERED: Mapping[str, FacetType] = MappingProxyType(_TYPES)
"""Every registered facet type by key: a live, read-only view (``REGISTERED.get`` is the parser's lookup)."""
_RANK: dict[str, int] = {}
_BY_NODE_TYPE: dict[str, FacetType] = {}
_WHY_REFS: dict[str, tuple[Ref, ...]] = {}
_PREFIXES: tuple[str, ...] = ()


def register_facet(facet: FacetType) -> FacetType:
    """Make a facet type known to the parser, the store's rules, ``why`` and the exports.

    Registering the same declaration again is harmless; a different one under a key already
    taken is refused.

    Raises:
        ValueError: the declaration is inconsistent, or the key is taken by another.
    """
    _check(facet)
    known = _TYPES.get(facet.key)
    if known is not None:
        if known != facet:
            raise ValueError(f"facet {facet.key!r} is already registered as {known.struct.__name__}")
        return known
    if facet.kind is not None and facet.kind not in KINDS:
        register_kind(facet.kind, "version" if facet.ident == "version" else "namespaced")
    _TYPES[facet.key] = facet
    _RANK[facet.key] = len(_RANK)
    _PLANS.clear()
    if facet.kind is not None and facet.ident != "declared" and facet.node_type not in _BY_NODE_TYPE:
        _BY_NODE_TYPE[facet.node_type] = facet
        _WHY_REFS[facet.node_type] = tuple(ref for ref in facet.refs if ref.why)
    return facet


def _check(facet: FacetType) -> None:
    if facet.on == "run" and (facet.kind is not None or facet.content):
        raise ValueError(f"facet {facet.key!r}: a run facet makes no node of its own and carries no content")
    if facet.on == "dataset" and facet.kind is None:
        raise ValueError(f"facet {facet.key!r}: a dataset facet makes a node, so it needs a kind")
    if facet.ident == "content" and facet.on == "dataset" and (not facet.content or facet.kind != "entity"):
        raise ValueError(f"facet {facet.key!r}: an id from content needs content=True and kind 'entity'")
    if facet.versioned and facet.ident != "version":
        raise ValueError(f"facet {facet.key!r}: only an id of name and version can be versioned")
    fields = set(facet.struct.__struct_fields__)
    needed = {"version": ("name", "version"), "declared": ("type", "digest")}.get(facet.ident, ())
    for ref in facet.refs:
        if ref.edge is not None and ref.edge not in EDGE_KINDS:
            raise ValueError(
                f"facet {facet.key!r}: edge kind {ref.edge!r} is not one of {', '.join(EDGE_KINDS)}"
            )
    for name in (*needed, *(ref.field for ref in facet.refs)):
        if name not in fields:
            raise ValueError(f"facet {facet.key!r}: {facet.struct.__name__} has no field {name!r}")


class DatasetPlan(NamedTuple):
    """Which of a dataset's facets make its node: a named version or source (tried first), else
    the marker of an artifact recorded elsewhere and the content facets (at most one is valid);
    the other registered dataset facets (checked, though they make nothing), and the registered
    run facets wrongly put there."""

    named: FacetType | None
    marker: FacetType | None
    content: tuple[FacetType, ...]
    unused: tuple[FacetType, ...] = ()
    misplaced: tuple[FacetType, ...] = ()


_PLANS: dict[tuple[str, ...], DatasetPlan] = {}
_MAX_PLANS = 4096  # distinct facet-key combinations remembered; foreign producers can make many


def dataset_plan(keys: tuple[str, ...]) -> DatasetPlan:
    """The plan for a dataset with these facet keys (in their order), remembered per combination."""
    plan = _PLANS.get(keys)
    if plan is None:
        registered = [t for key in keys if (t := _TYPES.get(key)) is not None]
        found = [t for t in registered if t.on == "dataset"]
        named = sorted((t for t in found if t.ident in ("version", "dataset")), key=rank)
        marker = next((t for t in found if t.ident == "declared"), None)
        content = tuple(t for t in found if t.ident == "content")
        used = named[:1] if named else [marker, *content[:1]]
        plan = DatasetPlan(
            named[0] if named else None,
            marker,
            content,
            tuple(t for t in found if t not in used),
            tuple(t for t in registered if t.on != "dataset"),
        )
        if len(_PLANS) >= _MAX_PLANS:
            _PLANS.clear()
        _PLANS[keys] = plan
    return plan


def reserve_prefix(prefix: str) -> None:
    """Reserve a key prefix (e.g. ``aiops_``): a facet under it must be a registered one."""
    global _PREFIXES  # noqa: PLW0603 (one tuple, so that the parser's check is one C call)
    if prefix not in _PREFIXES:
        _PREFIXES = (*_PREFIXES, prefix)


def is_reserved(key: str) -> bool:
    """Whether ``key`` lies under a reserved prefix."""
    return key.startswith(_PREFIXES)


def facet_type(key: str) -> FacetType | None:
    """The facet type registered under ``key``, if any."""
    return _TYPES.get(key)


def facet_types() -> dict[str, FacetType]:
    """Every registered facet type by key, in registration order."""
    return dict(_TYPES)


def why_refs(node_type: str) -> tuple[Ref, ...]:
    """The references ``why`` follows from a node of type ``node_type``, in declared order."""
    return _WHY_REFS.get(node_type, ())


def why_depth(node_type: str, limit: int = 16) -> int:
    """How many artifact-to-artifact hops the longest ``why`` path from ``node_type`` takes: its
    references by digest, theirs, and so on (``limit`` when a reference names no type)."""

    def depth(current: str, seen: frozenset[str]) -> int:
        declared = type_of_node(current)
        hops = [ref.type for ref in (declared.refs if declared else ()) if ref.why and ref.names == "digest"]
        if any(hop is None or hop in seen for hop in hops):
            return limit
        return max((1 + depth(hop, seen | {hop}) for hop in hops if hop is not None), default=0)

    return min(limit, depth(node_type, frozenset({node_type})))


def rank(facet: FacetType) -> int:
    """Where ``facet`` stands in registration order (the order a dataset's facets are tried in)."""
    return _RANK[facet.key]


def type_of_node(node_type: str) -> FacetType | None:
    """The facet type whose nodes have type ``node_type`` (the first registered), if any."""
    return _BY_NODE_TYPE.get(node_type)
