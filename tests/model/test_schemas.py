"""Schemas: every emitted event validates against the OpenLineage spec and our facet schemas."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from referencing import Registry, Resource

from helpers import Chain
from opslineage.model.schemas import SCHEMA_DIR, generated
from opslineage.sdk import MemoryTransport
from opslineage.sdk.tracer import Tracer

SPEC = Path(__file__).parents[1] / "data" / "openlineage" / "spec"


@pytest.fixture(scope="module")
def registry() -> Registry:
    resources = []
    for path in [*SPEC.rglob("*.json"), *SCHEMA_DIR.glob("*.json")]:
        document = json.loads(path.read_text())
        resources.append((document["$id"], Resource.from_contents(document)))
    return Registry().with_resources(resources)


def _validate(registry: Registry, instance: Any, url: str) -> None:
    document_url, _, pointer = url.partition("#")
    schema = {"$ref": url} if pointer else {"$ref": document_url}
    jsonschema.Draft202012Validator(schema, registry=registry).validate(instance)


def _facets(event: dict[str, Any]) -> list[dict[str, Any]]:
    found = [*event["run"].get("facets", {}).values(), *event["job"].get("facets", {}).values()]
    for dataset in [*event.get("inputs", []), *event.get("outputs", [])]:
        found.extend(dataset.get("facets", {}).values())
    return found


def test_committed_facet_schemas_are_what_the_classes_generate() -> None:
    for name, text in generated().items():
        assert (SCHEMA_DIR / name).read_text() == text, (
            f"{name} is stale: run python -m opslineage.model.schemas"
        )


def test_emitted_events_validate_against_the_spec_and_every_facet_schema(
    registry: Registry, captured: tuple[Tracer, MemoryTransport, Chain]
) -> None:
    _, transport, _ = captured
    assert len(transport.events) >= 18
    checked = set()
    for event in transport.events:
        _validate(registry, event, event["schemaURL"])
        for facet in _facets(event):
            _validate(registry, facet, facet["_schemaURL"])
            checked.add(facet["_schemaURL"].rpartition("/")[2].partition(".json")[0])
    assert {
        "SnapshotFacet",
        "DecisionFacet",
        "ActionFacet",
        "EffectFacet",
        "ParentRunFacet",
        "JobTypeJobFacet",
    } <= checked


def test_an_invalid_facet_fails_its_schema(
    registry: Registry, captured: tuple[Tracer, MemoryTransport, Chain]
) -> None:
    _, transport, _ = captured
    facet = next(f for e in transport.events for f in _facets(e) if "outcome" in f)
    with pytest.raises(jsonschema.ValidationError):
        _validate(registry, {**facet, "outcome": "great"}, facet["_schemaURL"])
