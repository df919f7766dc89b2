"""Node ids: one grammar for every node of the graph, compatible with Marquez's where it has the kind.

::

    run:<uuid>                         an activity (one execution of a step); a runId that is
                                       not a UUID is named by its UUID-5
    job:<namespace>:<name>             a step definition (OpenLineage job)
    dataset:<namespace>:<name>[#<v>]   a dataset, optionally one version of it
    entity:sha256:<64 hex>             a content-addressed artifact
    model:<name>@<version>             a model version
    policy:<name>@<version>            a policy version
    source:<namespace>:<name>          a telemetry source
    agent:<name>                       a service or person

A facet type may bring a kind of its own (:func:`register_kind`), named like a model version
(``<kind>:<name>@<version>``) or like a source (``<kind>:<namespace>:<name>``).

Namespaces may hold colons (``postgres://db:5432``): as in Marquez, the namespace ends at the
first ``:`` that is followed by neither ``//`` nor a digit.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Literal

from opslineage.model.errors import InvalidEvent

__all__ = ["KINDS", "NodeId", "entity_id", "parse_node_id", "register_kind", "run_node_id"]

Shape = Literal["run", "name", "digest", "version", "namespaced"]
KINDS: dict[str, Shape] = {
    "run": "run",
    "job": "namespaced",
    "dataset": "namespaced",
    "entity": "digest",
    "model": "version",
    "policy": "version",
    "source": "namespaced",
    "agent": "name",
}
"""Every node kind (the id prefix) and the shape of the ids it names."""
_NS_DELIM = re.compile(r":(?!//|\d)")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_RUN_NAMESPACE = uuid.UUID("9a1f5d2e-2c4b-5e8f-9d3a-6b7c8d9e0f1a")


@dataclass(frozen=True, slots=True)
class NodeId:
    """A parsed node id. ``namespace``/``name``/``version`` are set as the kind has them."""

    kind: str
    namespace: str | None = None
    name: str | None = None
    version: str | None = None

    def __str__(self) -> str:
        shape = KINDS.get(self.kind)
        if shape in ("run", "name", "digest"):
            return f"{self.kind}:{self.name}"
        if shape == "version":
            return f"{self.kind}:{self.name}@{self.version}"
        text = f"{self.kind}:{self.namespace}:{self.name}"
        return f"{text}#{self.version}" if self.version else text


def run_node_id(run_id: str) -> str:
    """The node id of an OpenLineage run: ``run:<uuid>``. A runId that is not a UUID (the spec's
    ``format: uuid`` is not enforced by its validators) is named by its UUID-5."""
    try:
        return f"run:{uuid.UUID(run_id)}"
    except ValueError:
        return f"run:{uuid.uuid5(_RUN_NAMESPACE, run_id)}"


def register_kind(kind: str, shape: Literal["version", "namespaced"]) -> None:
    """Add a node kind: ``version`` ids read ``<kind>:<name>@<version>``, ``namespaced`` ones
    ``<kind>:<namespace>:<name>``.

    Raises:
        ValueError: the kind is not a lowercase word, or is known with another shape.
    """
    if not re.fullmatch(r"[a-z][a-z0-9_]*", kind):
        raise ValueError(f"node kind {kind!r} must be a lowercase word")
    if KINDS.setdefault(kind, shape) != shape:
        raise ValueError(f"node kind {kind!r} is already known with ids of shape {KINDS[kind]}")


def entity_id(digest: str) -> str:
    """The node id of the artifact whose content digest is ``digest`` (``sha256:<hex>``)."""
    return "entity:" + digest


def parse_node_id(text: str) -> NodeId:
    """Parse a node id, raising :class:`InvalidEvent` that says what is wrong with it."""
    kind, sep, rest = text.partition(":")
    if not sep or kind not in KINDS:
        raise InvalidEvent(f"node id {text!r} must start with one of {', '.join(k + ':' for k in KINDS)}")
    if not rest:
        raise InvalidEvent(f"node id {text!r} has nothing after '{kind}:'")
    shape = KINDS[kind]
    if shape == "run":
        return NodeId("run", name=run_node_id(rest)[len("run:") :])
    if shape == "name":
        return NodeId(kind, name=rest)
    if shape == "digest":
        algo, _, hexdigest = rest.partition(":")
        if algo != "sha256" or not _HEX64.fullmatch(hexdigest):
            raise InvalidEvent(f"node id {text!r}: an entity id is entity:sha256:<64 lowercase hex digits>")
        return NodeId("entity", name=rest)
    if shape == "version":
        name, at, version = rest.rpartition("@")
        if not at or not name or not version:
            raise InvalidEvent(f"node id {text!r}: expected {kind}:<name>@<version>")
        return NodeId(kind, name=name, version=version)
    match = _NS_DELIM.search(rest)
    if match is None or match.start() == 0 or match.end() == len(rest):
        raise InvalidEvent(f"node id {text!r}: expected {kind}:<namespace>:<name>")
    namespace, name = rest[: match.start()], rest[match.end() :]
    if kind == "dataset" and "#" in name:
        name, _, dataset_version = name.rpartition("#")
        return NodeId(kind, namespace=namespace, name=name, version=dataset_version)
    return NodeId(kind, namespace=namespace, name=name)
