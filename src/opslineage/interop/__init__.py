"""Lineage leaving the store in open formats: signed audit bundles and in-toto attestations."""

from opslineage.interop.bundle import BundleError, BundleReport, make_bundle, make_intoto, verify_bundle

__all__ = ["BundleError", "BundleReport", "make_bundle", "make_intoto", "verify_bundle"]
