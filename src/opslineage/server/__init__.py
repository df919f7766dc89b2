"""The HTTP API (FastAPI): OpenLineage ingest, Marquez-shaped lineage, why-chains, the log."""

from opslineage.server.app import ServerSettings, create_app

__all__ = ["ServerSettings", "create_app"]
