"""Handles the SDK hands back: recorded artifacts, sources, model and policy versions."""

from __future__ import annotations

import base64
import hashlib
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import msgspec

from opslineage._version import __version__
from opslineage.model.code import identify
from opslineage.model.events import content_digest
from opslineage.model.facets import FACET_VERSION, EntityFacet, ModelFacet, PolicyFacet, SourceFacet

__all__ = ["Artifact", "ModelRef", "PolicyRef", "SourceRef", "code_version", "facet_wire", "model_facet"]

_META = ("_producer", "_schemaURL")
_VERSION_FACET = "https://openlineage.io/spec/facets/1-0-1/DatasetVersionDatasetFacet.json#/$defs/DatasetVersionDatasetFacet"


def _version_facet(version: str, producer: str) -> dict[str, Any]:
    return {"_producer": producer, "_schemaURL": _VERSION_FACET, "datasetVersion": version}


@dataclass(frozen=True)
class Artifact:
    """A recorded, content-addressed artifact (snapshot, feature set, prediction, decision …).

    Attributes:
        type: the AIOps type (snapshot, feature, prediction, decision, action, effect).
        digest: ``sha256:<hex>`` of the content's RFC 8785 bytes.
        namespace: OpenLineage dataset namespace it is published under.
        name: OpenLineage dataset name (``<type>/<subject>``).
        facet_key: the facet that carries its content.
        facet: that facet as sent on the wire.
        run_id: the run that generated it.
    """

    type: str
    digest: str
    namespace: str
    name: str
    facet_key: str
    facet: dict[str, Any] = field(repr=False)
    run_id: str

    @property
    def id(self) -> str:
        """The node id, ``entity:sha256:<hex>``."""
        return "entity:" + self.digest

    @property
    def content(self) -> dict[str, Any]:
        """The artifact's content: the facet without its OpenLineage metadata keys."""
        return {k: v for k, v in self.facet.items() if k not in _META}

    def reference(self) -> dict[str, Any]:
        """The dataset as an input: a typed reference by digest, without the content."""
        producer = self.facet["_producer"]
        return {
            "namespace": self.namespace,
            "name": self.name,
            "facets": {
                EntityFacet.key: _entity_facet(self.type, self.digest, producer),
                "version": _version_facet(self.digest, producer),
            },
        }

    def dataset(self) -> dict[str, Any]:
        """The dataset as an output: the reference plus the content facet."""
        dataset = self.reference()
        dataset["facets"][self.facet_key] = self.facet
        return dataset


def facet_wire(facet: Any) -> dict[str, Any]:
    """``facet.to_dict()``, without walking telemetry rows in Python when they hold no objects to
    strip nulls from and no null, NaN or infinity (checked by encoding them once, in C): the same
    dict, in a fraction of the time."""
    rows = getattr(facet, "rows", None)
    if not rows:
        return facet.to_dict()
    encoded = msgspec.json.encode(rows)
    if b"{" in encoded or b"null" in encoded:
        return facet.to_dict()
    facet.rows = []
    try:
        wire = facet.to_dict()
    finally:
        facet.rows = rows
    wire["rows"] = msgspec.json.decode(encoded)
    return wire


def _entity_facet(entity_type: str, digest: str, producer: str) -> dict[str, Any]:
    return {
        "_producer": producer,
        "_schemaURL": f"https://opslineage.dev/spec/facets/{FACET_VERSION}/EntityFacet.json#/$defs/EntityFacet",
        "type": entity_type,
        "digest": digest,
    }


@dataclass(frozen=True)
class SourceRef:
    """A telemetry source: where signals come from (``source:<namespace>:<name>``)."""

    namespace: str
    name: str
    facet: SourceFacet

    @property
    def id(self) -> str:
        """The node id."""
        return f"source:{self.namespace}:{self.name}"

    @cached_property
    def wire(self) -> dict[str, Any]:
        """The facet as sent, built once (a reference does not change once made)."""
        return self.facet.to_dict()

    def dataset(self) -> dict[str, Any]:
        """The source as an input dataset of an ingest run."""
        return {
            "namespace": self.namespace,
            "name": self.name,
            "facets": {SourceFacet.key: self.wire},
        }


@dataclass(frozen=True)
class _Versioned:
    namespace: str
    facet: Any

    kind = ""

    @property
    def name(self) -> str:
        """The model or policy name."""
        return str(self.facet.name)

    @property
    def version(self) -> str:
        """The version string."""
        return str(self.facet.version)

    @property
    def id(self) -> str:
        """The node id, ``<kind>:<name>@<version>``."""
        return f"{self.kind}:{self.name}@{self.version}"

    @cached_property
    def wire(self) -> dict[str, Any]:
        """The facet as sent, built once (a version's content never changes)."""
        return self.facet.to_dict()

    @cached_property
    def digest(self) -> str:
        """Digest of the content: any change to it needs a new version."""
        return content_digest(self.wire)

    def dataset(self) -> dict[str, Any]:
        """The version as an OpenLineage dataset carrying its facet."""
        wire = self.wire
        return {
            "namespace": self.namespace,
            "name": self.name,
            "facets": {
                self.facet.key: wire,
                "version": _version_facet(self.version, wire["_producer"]),
            },
        }


@dataclass(frozen=True)
class ModelRef(_Versioned):
    """A model version: name, version and the digest of its artifact bytes."""

    facet: ModelFacet
    kind = "model"


@dataclass(frozen=True)
class PolicyRef(_Versioned):
    """A remediation policy version: its rule, thresholds, risk class and action."""

    facet: PolicyFacet
    kind = "policy"


def code_version(fn: Callable[..., Any]) -> str:
    """The version of a transform's code: the SHA-256 of the function's source, prefixed by the
    git commit of the checkout holding it when there is one, else by this package's version."""
    code = identify(fn)
    if code.digest is None:
        return f"{__version__}+unknown"
    commit = _git_commit(str(Path(code.path).parent)) if code.path else None
    digest = code.digest.removeprefix("sha256:")[:16]
    return f"git:{commit}+src:{digest}" if commit else f"{__version__}+src:{digest}"


@cache
def _git_commit(directory: str) -> str | None:
    try:
        result = subprocess.run(
            ["git", "-C", directory, "log", "-1", "--format=%H"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = result.stdout.strip()
    return commit or None


def model_facet(
    name: str,
    version: str,
    artifact: bytes,
    framework: str,
    parameters: dict[str, Any] | None,
    trained_at: str | None,
    scorer: str | None = None,
    keep_artifact: bool = False,
) -> ModelFacet:
    """The facet of a model version whose artifact bytes are ``artifact`` (kept in it, base64,
    with ``keep_artifact``)."""
    return ModelFacet(
        name=name,
        version=version,
        artifact_digest="sha256:" + hashlib.sha256(artifact).hexdigest(),
        framework=framework,
        parameters=parameters or {},
        trained_at=trained_at,
        scorer=scorer,
        artifact_base64=base64.b64encode(artifact).decode() if keep_artifact else None,
    )
