"""Judging the lineage, not only storing it: verification at the data, model and policy layers,
governance rules, quality metrics, and reconciliation against saved baselines with alerts.

Everything here reads through the read path (:class:`~opslineage.query.Reader`) and records
through the SDK and the ingest pipeline, so its findings are about what any reader would see
and what it records (rules, baselines) is ledgered like any other event.
"""
