"""`why` through a Reader with the access log as its trail, against the same Reader with no trail,
in the same run: what auditing every read costs (each read waits for its access event's commit).

The two are interleaved, sample by sample, over the same random actions, so the machine's noise
falls on both alike. ``--relaxed`` does not sync commits to disk, ``--queued`` lets reads go on
while a writer thread commits their events (see :mod:`opslineage.ledger.access_log`). With ``--threads N``, N readers share one access log, as a server's request
threads do, and its writer groups their events into shared transactions. Goal: audited p99 under
1.25 times the unaudited p99.

    python bench/access_log.py --events 20000 [--store PATH] [--samples 2000] [--threads 1] [--relaxed] [--queued]
    python bench/access_log.py --events 20000 --url postgresql://USER@HOST/DB
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import threading
from pathlib import Path

from corpus import emit
from opslineage import open_store
from opslineage.governance import Principal
from opslineage.ledger.access_log import AccessLog
from opslineage.query import Reader, list_nodes
from why import build, percentile, timed


def _run(readers: list[tuple[Reader, Reader]], picked: list[str]) -> tuple[list[float], list[float]]:
    """Each thread's (plain, audited) reader pair times ``why`` on its share of ``picked``, both
    on each action; returns every plain and every audited sample."""
    plain: list[float] = []
    audited: list[float] = []
    start = threading.Barrier(len(readers))

    def work(pair: tuple[Reader, Reader], share: list[str]) -> None:
        start.wait()
        mine_plain, mine_audited = [], []
        for n, action in enumerate(share):  # which goes first alternates: the first warms the pages
            if n % 2:
                mine_audited.append(timed(pair[1].why, action))
                mine_plain.append(timed(pair[0].why, action))
            else:
                mine_plain.append(timed(pair[0].why, action))
                mine_audited.append(timed(pair[1].why, action))
        plain.extend(mine_plain)
        audited.extend(mine_audited)

    threads = [
        threading.Thread(target=work, args=(pair, picked[n :: len(readers)]))
        for n, pair in enumerate(readers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return plain, audited


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--store", type=Path, help="reuse (or create) the store at this path")
    parser.add_argument("--url", help="a store URL instead of --store (e.g. postgresql://…)")
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--relaxed", action="store_true", help="commits not synced to disk (durable=False)")
    parser.add_argument(
        "--queued", action="store_true", help="reads do not wait for the commit (wait=False: a writer thread)"
    )
    args = parser.parse_args()
    url = args.url or f"sqlite:///{args.store or Path(tempfile.mkdtemp()) / 'access.db'}"
    with open_store(url) as store:
        if store.counts()["events"] < args.events:
            build(store, args.events)
        events = store.counts()["events"]
        actions = [node.id for node in list_nodes(store, "action", limit=1_000_000)]
    picked = random.Random(0).choices(actions, k=args.samples)
    stores = [open_store(url) for _ in range(args.threads)]
    trail_store = open_store(url)  # the writer thread's own connection, as a server would give it
    log = AccessLog(trail_store, durable=not args.relaxed, wait=not args.queued)
    admin = Principal.local_admin()
    readers = [(Reader(s, admin), Reader(s, admin, log, "bench")) for s in stores]
    for plain, audited in readers:  # warm both: the pages of the chains, the writer thread
        for action in picked[:50]:
            plain.why(action)
            audited.why(action)
    log.flush()
    before = trail_store.access_size()
    plain_samples, audited_samples = _run(readers, picked)
    log.close()
    recorded = trail_store.access_size() - before
    assert recorded == len(picked), (recorded, len(picked))
    backend = url.partition(":")[0]
    extra = {
        "events": events,
        "samples": len(picked),
        "threads": args.threads,
        "store": backend,
        "durable": not args.relaxed,
        "wait": not args.queued,
    }
    for name, samples in (("why_no_trail", plain_samples), ("why_access_log", audited_samples)):
        emit(f"{name}_p50_ms", percentile(samples, 0.50), "ms", **extra)
        emit(f"{name}_p99_ms", percentile(samples, 0.99), "ms", **extra)
    emit(
        "access_log_p99_ratio",
        percentile(audited_samples, 0.99) / percentile(plain_samples, 0.99),
        "x",
        **extra,
    )
    emit(
        "access_log_p50_ratio",
        percentile(audited_samples, 0.50) / percentile(plain_samples, 0.50),
        "x",
        **extra,
    )
    emit(
        "access_log_mean_extra_ms",
        (statistics.fmean(audited_samples) - statistics.fmean(plain_samples)) * 1000,
        "ms",
        **extra,
    )
    emit("access_log_events_per_commit", recorded / max(1, log.commits), "events", **extra)
    for opened in (*stores, trail_store):
        opened.close()


if __name__ == "__main__":
    main()
