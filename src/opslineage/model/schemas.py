"""The JSON Schemas of our facets, generated from the facet classes so the two never drift.

``python -m opslineage.model.schemas`` rewrites ``jsonschema/*.json``; a test fails when the
committed files differ from what the classes generate. Each file follows the OpenLineage facet
convention: the facet extends the spec's ``DatasetFacet`` or ``RunFacet``.
"""

from __future__ import annotations

import inspect
import json
import sys
from pathlib import Path
from typing import Any

import msgspec

from opslineage.model.facets import AIOPS_FACETS, FACET_VERSION, SCHEMA_BASE
from opslineage.model.registry import facet_type

__all__ = ["SCHEMA_DIR", "facet_schema", "generated", "write"]

SCHEMA_DIR = Path(__file__).parent / "jsonschema"
_OPENLINEAGE = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/"


def _clean_descriptions(node: Any) -> Any:
    """Every ``description`` as ``inspect.cleandoc`` makes it, whatever a msgspec release did to it.

    msgspec before 0.23 copied docstrings verbatim; 0.23 dedents them. Normalising here keeps
    the generated files identical across releases.
    """
    if isinstance(node, dict):
        return {
            key: inspect.cleandoc(value)
            if key == "description" and isinstance(value, str)
            else _clean_descriptions(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_clean_descriptions(item) for item in node]
    return node


def facet_schema(key: str) -> dict[str, Any]:
    """The JSON Schema document of the registered facet stored under ``key``.

    Raises:
        KeyError: no facet type is registered under ``key``.
    """
    declared = facet_type(key)
    if declared is None:
        raise KeyError(key)
    name = declared.struct.__name__
    generated_schema = _clean_descriptions(msgspec.json.schema(declared.struct))
    definitions = generated_schema["$defs"]
    base = "RunFacet" if declared.on == "run" else "DatasetFacet"
    definitions[name] = {"allOf": [{"$ref": _OPENLINEAGE + base}, definitions[name]]}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{SCHEMA_BASE}/{FACET_VERSION}/{name}.json",
        "$defs": definitions,
        "type": "object",
        "properties": {key: {"$ref": f"#/$defs/{name}"}},
    }


def generated() -> dict[str, str]:
    """File name → text of the schema of each of our facets, as the classes define them now."""
    return {
        f"{facet.struct.__name__}.json": json.dumps(facet_schema(facet.key), indent=2, sort_keys=True) + "\n"
        for facet in AIOPS_FACETS
    }


def write(directory: Path = SCHEMA_DIR) -> list[Path]:
    """Write the schema files; returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in generated().items():
        path = directory / name
        path.write_text(text)
        paths.append(path)
    return paths


if __name__ == "__main__":
    for written in write():
        sys.stdout.write(f"wrote {written}\n")
