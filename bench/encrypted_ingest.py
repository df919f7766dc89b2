"""Ingest of restricted, encrypted events against the same events unencrypted, in the same run.

Both go through the ingest pipeline into a fresh SQLite store (or, with ``--postgres``,
PostgreSQL databases of their own) at ``--batch`` events per transaction. The encrypted store is made as
``opslineage init --encrypt`` makes it, with the whole corpus namespace labelled ``restricted``
first, so every event body and artifact content is sealed (AES-256-GCM under the namespace's
monthly data key). Plain and encrypted passes alternate, ``--rounds`` of each, best of each kept
(the machine is shared and noisy). Goal: ``encrypted_ingest_ratio`` ≥ 0.7.

    python bench/encrypted_ingest.py --events 20000 [--batch 1000] [--rounds 3] [--postgres]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import msgspec

from _common import database
from corpus import demo_shaped_events, emit
from opslineage import Tracer, open_store
from opslineage.ingest import IngestPipeline
from opslineage.model.facets import LabelFacet
from opslineage.store import Store
from opslineage.store.keys import Kek, new_kek
from opslineage.store.sealing import SEALED_PREFIX

NAMESPACE = "aiops.bench"


def _label(store: Store) -> None:
    """Seal restricted records, and label the corpus namespace restricted."""
    store.enable_encryption("restricted")
    store.use_kek(Kek(new_kek(), "bench"))
    with Tracer("opslineage.governance", store=store, sync=True) as tracer:
        tracer.set_label(
            LabelFacet(
                namespace=NAMESPACE, level="restricted", set_at="2026-01-01T00:00:00Z", set_by="cli:bench"
            )
        )


def run(url: str, lines: list[bytes], batch: int, *, encrypted: bool) -> tuple[float, int, int]:
    """Events/s into the store at ``url``, and how many of its artifacts are sealed, of how many."""
    with open_store(url) as store:
        if encrypted:
            _label(store)
        pipeline = IngestPipeline(store)
        start = time.perf_counter()
        for i in range(0, len(lines), batch):
            pipeline.ingest(lines[i : i + batch], actor="sdk:bench")
        elapsed = time.perf_counter() - start
        contents = [
            row.content for row in store.hot_rows(after=0, through_seq=1 << 62, limit=1 << 30).artifacts
        ]
    return len(lines) / elapsed, sum(content.startswith(SEALED_PREFIX) for content in contents), len(contents)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="databases of their own on the local PostgreSQL server, not SQLite",
    )
    args = parser.parse_args()
    lines = [msgspec.json.encode(event) for event in demo_shaped_events(args.events)]
    best = {False: 0.0, True: 0.0}
    sealed = total = 0
    with tempfile.TemporaryDirectory() as scratch:
        for round_ in range(args.rounds):
            for encrypted in (False, True):
                if args.postgres:
                    with database() as url:
                        rate, count, total = run(url, lines, args.batch, encrypted=encrypted)
                else:
                    path = Path(scratch) / f"{round_}-{encrypted}.db"
                    rate, count, total = run(f"sqlite:///{path}", lines, args.batch, encrypted=encrypted)
                best[encrypted] = max(best[encrypted], rate)
                sealed = max(sealed, count) if encrypted else sealed
    backend = "postgres" if args.postgres else "sqlite"
    extra = {"events": args.events, "batch": args.batch, "backend": backend}
    emit("plain_ingest_events_per_s", best[False], "events/s", **extra)
    emit(
        "encrypted_ingest_events_per_s",
        best[True],
        "events/s",
        sealed_artifacts=sealed,
        artifacts=total,
        **extra,
    )
    emit("encrypted_ingest_ratio", best[True] / best[False], "ratio", goal=0.7, **extra)


if __name__ == "__main__":
    main()
