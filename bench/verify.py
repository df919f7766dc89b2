"""``verify`` by layer on a demo store of about 100k events: how fast the judged layers (data,
model, policy) go, against the integrity layer (the log rebuilt) measured in the same run.

    python bench/verify.py [--services 12] [--hours 120] [--store PATH]   # PATH is reused when it exists

Prints one JSON line per figure: events per second for the integrity layer, the judged layers
and all of them, and the ratio of ``--layers all`` to ``--layers integrity`` (the floor: both
read every event; a ratio of 2 says judging costs what rebuilding the log does).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from corpus import emit
from opslineage import open_store
from opslineage.checks.findings import JUDGED_LAYERS
from opslineage.checks.verify import verify_layers
from opslineage.demo import DemoConfig, run_demo
from opslineage.query import as_reader


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--services", type=int, default=12)
    parser.add_argument("--hours", type=float, default=120.0)
    parser.add_argument("--store", type=Path, help="a SQLite file to build once and reuse")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each, the best kept")
    args = parser.parse_args()
    path = args.store or Path(tempfile.mkdtemp()) / "verify-bench.db"
    with open_store(f"sqlite:///{path}") as store:
        if store.log_size() == 0:
            started = time.perf_counter()
            run_demo(store, DemoConfig(services=args.services, hours=args.hours))
            print(
                f"built {store.log_size()} events in {time.perf_counter() - started:.0f} s", file=sys.stderr
            )
        reader = as_reader(store)
        events = store.log_size()
        integrity = min(_timed(lambda: reader.verify(None)) for _ in range(args.repeat))
        judged = min(_timed(lambda: verify_layers(reader, JUDGED_LAYERS)) for _ in range(args.repeat))
        report = verify_layers(reader, JUDGED_LAYERS)
    every = integrity + judged
    scope = {"events": events, "findings": len(report.findings)}
    emit("verify_integrity_events_per_s", events / integrity, "events/s", **scope)
    emit("verify_judged_events_per_s", events / judged, "events/s", **scope, checks=dict(report.checked))
    emit("verify_all_events_per_s", events / every, "events/s", **scope)
    emit("verify_all_over_integrity", every / integrity, "ratio", **scope)


def _timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
