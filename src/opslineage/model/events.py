"""OpenLineage RunEvents in and out of the graph.

:func:`parse_event` validates one event (raw bytes or a dict) once, at the edge, and returns a
:class:`ParsedEvent`: its digest (SHA-256 of the RFC 8785 bytes), the nodes and edges it adds,
and the artifacts it carries. Artifact contents are split out of the stored body (each facet
keeps ``_producer``, ``_schemaURL`` and a ``_content`` digest), so identical content is stored
once; :mod:`opslineage.model.stored` puts them back, byte for byte. What each facet makes of the
graph (its node, id, derived edges, versioning, content) comes from the facet registry
(:mod:`opslineage.model.registry`): nothing here names a facet. The JSON itself is held to
what decoders let through silently (duplicate keys, numbers beyond a double, deep nesting) by
:mod:`opslineage.model._strict`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

import msgspec

from opslineage.model import facets as _facets_module  # noqa: F401 (registers our facet types)
from opslineage.model._strict import MAX_DEPTH, Structure, check_depth, check_keys, locate
from opslineage.model.canonical import (
    NumberOutOfRange,
    canonical_json,
    decode_json,
    digest_of,
    reject_non_finite,
)
from opslineage.model.errors import InvalidEvent
from opslineage.model.ids import entity_id, run_node_id
from opslineage.model.registry import REGISTERED, FacetType, dataset_plan, is_reserved
from opslineage.model.stored import CONTENT_KEY

__all__ = [
    "EVENT_TYPES",
    "MAX_DEPTH",
    "MAX_EVENT_BYTES",
    "Edge",
    "Node",
    "ParsedEvent",
    "content_digest",
    "parse_event",
]

MAX_EVENT_BYTES = 1 << 20
EVENT_TYPES = frozenset({"START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"})
_META_KEYS = ("_producer", "_schemaURL", "_deleted")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_DATE_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?(?:[Zz]|[+-][0-9]{2}:[0-9]{2})"
)
"""RFC 3339 ``date-time``, what the OpenLineage schema's ``format: date-time`` names."""
_registered = REGISTERED.get
_encode = msgspec.json.Encoder().encode


class Node(NamedTuple):
    """A graph node as first seen: id, kind (the id prefix), AIOps type, and naming columns."""

    id: str
    kind: str
    type: str
    namespace: str | None = None
    name: str | None = None
    version: str | None = None
    digest: str | None = None


class Edge(NamedTuple):
    """A directed edge from the dependent node to what it depends on (PROV direction)."""

    src: str
    dst: str
    kind: str
    role: str | None = None


@dataclass(slots=True)
class ParsedEvent:
    """One validated event, ready to store: the nodes and edges its facets make (as the facet
    registry declares them), and the artifacts it carries."""

    digest: bytes
    canonical: bytes
    body: bytes
    run_id: str | None
    event_type: str
    event_time: str
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    artifacts: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    versioned: set[str] = field(default_factory=set)
    """Ids of the nodes made by versioned facet types: one content per id, forever."""


def parse_event(event: bytes | str | dict[str, Any]) -> ParsedEvent:
    """Validate an OpenLineage RunEvent, DatasetEvent or JobEvent and derive what it adds to the graph.

    The JSON must be strict: no key twice in one object, no number beyond a double's range, no
    nesting deeper than :data:`MAX_DEPTH` levels. A dict is taken as the JSON it encodes to.

    Raises:
        InvalidEvent: naming the field and the reason; nothing else, whatever the input.
    """
    if isinstance(event, dict):
        text, found = _encoded(event)
    elif isinstance(event, bytes | str):
        try:
            text = event.encode() if isinstance(event, str) else event
        except UnicodeEncodeError as error:
            raise InvalidEvent(f"the event is not UTF-8 text: {error.reason}") from None
        if len(text) > MAX_EVENT_BYTES:
            raise InvalidEvent(f"event is {len(text)} bytes, over the limit of {MAX_EVENT_BYTES}")
        found = None
    else:
        raise InvalidEvent(f"an event must be a JSON object, got {type(event).__name__}")
    try:
        value, normalized = decode_json(text)
    except msgspec.DecodeError as error:
        raise InvalidEvent(f"malformed JSON: {error}") from None
    except NumberOutOfRange as error:
        raise InvalidEvent(locate(text) or str(error)) from None
    except RecursionError:
        raise InvalidEvent(locate(text) or f"the event is nested deeper than {MAX_DEPTH} levels") from None
    if not isinstance(value, dict):
        raise InvalidEvent("an event must be a JSON object")
    if found is None:
        found = Structure(text)
        check_depth(value, found, text)
    canonical = canonical_json(value, normalized=normalized, from_json=True)
    check_keys(text, found, canonical)
    if len(canonical) > MAX_EVENT_BYTES:
        raise InvalidEvent(f"event is {len(canonical)} bytes, over the limit of {MAX_EVENT_BYTES}")
    return _Extractor(value, canonical, normalized).parse()


def _encoded(event: dict[str, Any]) -> tuple[bytes, Structure]:
    """The JSON text of an event given as a dict, checked for what JSON cannot hold."""
    try:
        text = _encode(event)
    except RecursionError:
        raise InvalidEvent(f"the event is nested deeper than {MAX_DEPTH} levels") from None
    except (TypeError, ValueError) as error:  # a value or key JSON has no form for
        raise InvalidEvent(f"the event is not JSON: {error}") from None
    if len(text) > MAX_EVENT_BYTES:
        raise InvalidEvent(f"event is {len(text)} bytes, over the limit of {MAX_EVENT_BYTES}")
    found = Structure(text)
    check_depth(event, found)
    if b"null" in text:  # msgspec writes NaN and Infinity as null
        try:
            reject_non_finite(event)
        except ValueError as error:
            raise InvalidEvent(str(error)) from None
    return text, found


class _Extractor:
    """Walks one event once, collecting nodes, edges, artifacts and the stripped body."""

    def __init__(self, event: dict[str, Any], canonical: bytes, normalized: bool) -> None:
        self.event = event
        self.canonical = canonical
        self.normalized = normalized
        self.nodes: list[Node] = []
        self.edges: list[Edge] = []
        self.artifacts: dict[str, tuple[str, bytes]] = {}
        self.versioned: set[str] = set()

    def parse(self) -> ParsedEvent:
        event = self.event
        event_time = _required_str(event, "eventTime", "eventTime")
        if not _DATE_TIME.fullmatch(event_time):
            raise InvalidEvent(
                f"eventTime {event_time[:40]!r} is not an RFC 3339 date-time with a time zone"
                " (e.g. 2026-01-05T12:00:00.000Z or 2026-01-05T13:00:00+01:00)"
            )
        try:
            datetime.fromisoformat(event_time if event_time.isupper() else event_time.upper())
        except ValueError as error:
            raise InvalidEvent(f"eventTime {event_time!r} is not a valid date-time: {error}") from None
        _required_str(event, "producer", "producer")
        if "eventType" in event or "run" in event:
            return self._run_event(event_time)
        if "dataset" in event:
            return self._dataset_event(event_time)
        if "job" in event:
            return self._job_event(event_time)
        raise InvalidEvent("not a RunEvent, DatasetEvent or JobEvent: it has no run, dataset or job")

    def _parsed(
        self, stripped: dict[str, Any], run_id: str | None, event_type: str, event_time: str
    ) -> ParsedEvent:
        return ParsedEvent(
            digest=hashlib.sha256(self.canonical).digest(),
            canonical=self.canonical,
            body=canonical_json(stripped, normalized=self.normalized, from_json=True)
            if self.artifacts
            else self.canonical,
            run_id=run_id,
            event_type=event_type,
            event_time=event_time,
            nodes=self.nodes,
            edges=self.edges,
            artifacts=self.artifacts,
            versioned=self.versioned,
        )

    def _job(self) -> tuple[str, str, str, dict[str, Any]]:
        job = self.event.get("job")
        if not isinstance(job, dict):
            raise InvalidEvent("job is missing (it needs job.namespace and job.name)")
        namespace = _required_str(job, "namespace", "job.namespace")
        name = _required_str(job, "name", "job.name")
        node = f"job:{namespace}:{name}"
        self.nodes.append(Node(node, "job", "job", namespace, name))
        return node, namespace, name, _facets(job, "facets", "job.facets", registered=False)

    def _lineage(self, actor: str) -> dict[str, Any]:
        """The event with its inputs and outputs stripped of artifact contents, adding their edges."""
        stripped = dict(self.event)
        for key, relation in (("inputs", "used"), ("outputs", "wasGeneratedBy")):
            stripped[key] = [
                self._dataset(actor, dataset, f"{key}[{index}]", relation)
                for index, dataset in enumerate(_list(self.event, key))
            ]
        return stripped

    def _run_event(self, event_time: str) -> ParsedEvent:
        event_type = self.event.get("eventType", "OTHER")
        if not isinstance(event_type, str):
            raise InvalidEvent(
                f"eventType must be a string, one of {', '.join(sorted(EVENT_TYPES))}; got {_a(_json_type(event_type))}"
            )
        if event_type not in EVENT_TYPES:
            raise InvalidEvent(
                f"eventType {event_type[:40]!r} is not one of {', '.join(sorted(EVENT_TYPES))}"
            )
        run = self.event.get("run")
        if not isinstance(run, dict):
            raise InvalidEvent("run is missing (a RunEvent needs run.runId)")
        run_node = run_node_id(_required_str(run, "runId", "run.runId"))
        _, job_ns, job_name, job_facets = self._job()
        run_facets = _facets(run, "facets", "run.facets")
        step = (job_facets.get("jobType") or {}).get("jobType", "run")
        self.nodes.append(Node(run_node, "run", str(step).lower(), job_ns, job_name))
        self._run_edges(run_node, run_facets)
        return self._parsed(self._lineage(run_node), run_node[len("run:") :], event_type, event_time)

    def _job_event(self, event_time: str) -> ParsedEvent:
        job_node, *_ = self._job()
        return self._parsed(self._lineage(job_node), None, "JobEvent", event_time)

    def _dataset_event(self, event_time: str) -> ParsedEvent:
        dataset = self.event["dataset"]
        if not isinstance(dataset, dict):
            raise InvalidEvent("dataset must be an object with namespace and name")
        namespace = _required_str(dataset, "namespace", "dataset.namespace")
        name = _required_str(dataset, "name", "dataset.name")
        facets = _dataset_facets(dataset, "dataset.facets")
        stripped_facets = dict(facets)
        self.nodes.append(self._dataset_node(namespace, name, facets, stripped_facets, "dataset"))
        stripped = dict(self.event)
        if stripped_facets != facets:
            stripped["dataset"] = {**dataset, "facets": stripped_facets}
        return self._parsed(stripped, None, "DatasetEvent", event_time)

    def _run_edges(self, run_node: str, run_facets: dict[str, Any]) -> None:
        parent = run_facets.get("parent")
        if parent is not None:
            parent_run = parent.get("run")
            if not isinstance(parent_run, dict):
                raise InvalidEvent(
                    f"run.facets.parent.run must be an object with a runId, got {_a(_json_type(parent_run))}"
                )
            parent_id = _required_str(parent_run, "runId", "run.facets.parent.run.runId")
            self.edges.append(Edge(run_node, run_node_id(parent_id), "hasParent"))
        for key, facet in run_facets.items():
            declared = _registered(key)
            if declared is None:
                continue
            if declared.on != "run":
                raise InvalidEvent(f"run.facets.{key} is a dataset facet: it belongs in a dataset's facets")
            self._refs(run_node, declared, _typed(facet, declared, f"run.facets.{key}"))

    def _refs(self, node_id: str, declared: FacetType, typed: Any) -> None:
        """Add the edges (and named nodes) a typed facet's references derive."""
        for ref in declared.refs:
            if ref.edge is None:
                continue
            values = getattr(typed, ref.field)
            if values is None:
                continue
            for each in [values] if isinstance(values, str) else values or ():
                value, role = each, ref.role
                if ref.item is not None:
                    value = getattr(each, ref.item)
                    role = getattr(each, ref.role_item) if ref.role_item else role
                target = ref.node_id(value)
                if ref.names == "name":
                    self.nodes.append(Node(target, ref.target, ref.target, name=value))
                self.edges.append(Edge(node_id, target, ref.edge, role))

    def _dataset(self, actor: str, dataset: Any, where: str, relation: str) -> Any:
        if not isinstance(dataset, dict):
            raise InvalidEvent(f"{where} must be an object with namespace and name")
        namespace = _required_str(dataset, "namespace", f"{where}.namespace")
        name = _required_str(dataset, "name", f"{where}.name")
        facets = _dataset_facets(dataset, f"{where}.facets")
        for key in ("inputFacets", "outputFacets"):
            _facets(dataset, key, f"{where}.{key}", registered=False)
        stripped_facets = dict(facets)
        node = self._dataset_node(namespace, name, facets, stripped_facets, where)
        self.nodes.append(node)
        if relation == "used":
            self.edges.append(Edge(actor, node.id, "used"))
        else:
            self.edges.append(Edge(node.id, actor, "wasGeneratedBy"))
        if stripped_facets == facets:
            return dataset
        return {**dataset, "facets": stripped_facets}

    def _dataset_node(
        self, namespace: str, name: str, facets: dict[str, Any], stripped: dict[str, Any], where: str
    ) -> Node:
        named, marker, content, unused, misplaced = dataset_plan(tuple(facets))
        if misplaced:
            raise InvalidEvent(f"{where}.facets.{misplaced[0].key} is a run facet: it belongs in run.facets")
        for declared_elsewhere in unused:
            key = declared_elsewhere.key
            _typed(facets[key], declared_elsewhere, f"{where}.facets.{key}")
        if named is not None:
            return self._named_node(named, namespace, name, facets, stripped, where)
        if marker is None and not content:
            return Node(f"dataset:{namespace}:{name}", "dataset", "dataset", namespace, name)
        if len(content) > 1:
            raise InvalidEvent(
                f"{where}.facets holds more than one artifact facet: {', '.join(t.key for t in content)}"
            )
        declared = _typed(facets[marker.key], marker, f"{where}.facets.{marker.key}") if marker else None
        if content:
            artifact = content[0]
            entity_type = artifact.node_type
            typed = _typed(facets[artifact.key], artifact, f"{where}.facets.{artifact.key}")
            digest = self._store_content(artifact.key, entity_type, facets[artifact.key], stripped)
            if declared is not None and (declared.digest != digest or declared.type != entity_type):
                raise InvalidEvent(
                    f"{where}.facets.{marker.key} says {declared.type} {declared.digest} but the "  # type: ignore[union-attr]
                    f"{artifact.key} content hashes to {entity_type} {digest}"
                )
            node_id = entity_id(digest)
            self._refs(node_id, artifact, typed)
        else:
            assert declared is not None and marker is not None
            entity_type, digest = declared.type, declared.digest
            node_id = entity_id(digest)
            if not _DIGEST.fullmatch(digest):
                raise InvalidEvent(
                    f"{where}.facets.{marker.key}.digest {digest!r} must be sha256:<64 lowercase hex>"
                )
        return Node(node_id, "entity", entity_type, namespace, name, None, digest)

    def _named_node(
        self,
        declared: FacetType,
        namespace: str,
        name: str,
        facets: dict[str, Any],
        stripped: dict[str, Any],
        where: str,
    ) -> Node:
        """The node of a facet whose id is its name and version, or its dataset's name."""
        key, kind = declared.key, declared.kind or declared.key
        typed = _typed(facets[key], declared, f"{where}.facets.{key}")
        digest = (
            self._store_content(key, declared.node_type, facets[key], stripped) if declared.content else None
        )
        if declared.ident == "version":
            node = Node(
                f"{kind}:{typed.name}@{typed.version}",
                kind,
                declared.node_type,
                namespace,
                typed.name,
                typed.version,
                digest,
            )
        else:
            node = Node(f"{kind}:{namespace}:{name}", kind, declared.node_type, namespace, name, None, digest)
        if declared.versioned:
            self.versioned.add(node.id)
        self._refs(node.id, declared, typed)
        return node

    def _store_content(
        self, key: str, entity_type: str, facet: dict[str, Any], stripped: dict[str, Any]
    ) -> str:
        content = {k: v for k, v in facet.items() if k not in _META_KEYS}
        data = canonical_json(
            content, normalized=self.normalized, from_json=True
        )  # the event was checked whole
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        self.artifacts[digest] = (entity_type, data)
        stripped[key] = {**{k: facet[k] for k in _META_KEYS if k in facet}, CONTENT_KEY: digest}
        return digest


def _required_str(obj: dict[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if value is None:
        raise InvalidEvent(f"{where} is missing")
    if not isinstance(value, str) or not value:
        raise InvalidEvent(f"{where} must be a non-empty string, got {_a(_json_type(value))}")
    return value


def _list(obj: dict[str, Any], key: str) -> list[Any]:
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidEvent(f"{key} must be an array, got {_a(_json_type(value))}")
    return value


def _facets(obj: dict[str, Any], key: str, where: str, *, registered: bool = True) -> dict[str, Any]:
    """The facets under ``key``: an object of objects; a reserved key must be a registered facet,
    and none may be where ``registered`` is false (job facets, input and output facets)."""
    facets = obj.get(key)
    if facets is None:
        return {}
    if not isinstance(facets, dict):
        raise InvalidEvent(f"{where} must be an object, got {_a(_json_type(facets))}")
    for name, facet in facets.items():
        if not isinstance(facet, dict):
            raise InvalidEvent(f"{where}.{name} must be an object, got {_a(_json_type(facet))}")
        if is_reserved(name) and name not in REGISTERED:
            raise InvalidEvent(f"{where}.{name} is not a known opslineage facet")
        if not registered and name in REGISTERED:
            place = "run.facets" if REGISTERED[name].on == "run" else "a dataset's facets"
            raise InvalidEvent(
                f"{where}.{name} is an opslineage {REGISTERED[name].on} facet: it belongs in {place}"
            )
    return facets


_JSON_TYPES = {dict: "object", list: "array", str: "string", int: "number", float: "number", bool: "boolean"}


def _json_type(value: Any) -> str:
    """The JSON name of a decoded value's type."""
    return "null" if value is None else _JSON_TYPES.get(type(value), type(value).__name__)


def _a(noun: str) -> str:
    return f"an {noun}" if noun[0] in "aeiou" else f"a {noun}"


def _dataset_facets(dataset: dict[str, Any], where: str) -> dict[str, Any]:
    """A dataset's facets; ``_content`` is ours (it marks split-out artifacts), so no facet may bring one."""
    facets = _facets(dataset, "facets", where)
    for name, facet in facets.items():
        if CONTENT_KEY in facet:
            raise InvalidEvent(
                f"{where}.{name}.{CONTENT_KEY} is reserved (opslineage marks stored artifacts with it)"
            )
    return facets


def _typed(facet: Any, declared: FacetType, where: str) -> Any:
    try:
        return msgspec.convert(facet, declared.struct, from_attributes=False)
    except msgspec.ValidationError as error:
        raise InvalidEvent(f"{where}: {error}") from None


def content_digest(content: dict[str, Any]) -> str:
    """The digest a content facet's artifact gets: the facet without its metadata keys."""
    return digest_of({k: v for k, v in content.items() if k not in _META_KEYS})
