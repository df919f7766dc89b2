"""Lineage leaving the store in open formats: the whole store as OpenLineage JSON lines or W3C
PROV-JSON, signed audit bundles and in-toto attestations."""

from opslineage.interop.bundle import BundleError, BundleReport, make_bundle, make_intoto, verify_bundle
from opslineage.interop.openlineage import export_openlineage
from opslineage.interop.prov import export_prov_json, to_prov

__all__ = [
    "BundleError",
    "BundleReport",
    "export_openlineage",
    "export_prov_json",
    "make_bundle",
    "make_intoto",
    "to_prov",
    "verify_bundle",
]
