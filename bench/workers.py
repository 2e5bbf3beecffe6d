"""Worker throughput: events a second from handed-off bodies to committed counters, tiers and
tier changes, on SQLite and PostgreSQL, with 1 and 2 worker processes (`wapulse worker --burst`),
against the naive design measured in the same run: one default (forking) RQ job per body doing
the same parse and write.

    python -m bench.workers [--bodies 6000] [--customers 20000] [--spread 50] [--naive-bodies 600] [--processes 1,2]

The default corpus is a skewed day of a 20,000-customer business: a few customers write a lot.
`--customers 100000 --spread 20000` gives the flat corpus of bench/end_to_end.py instead, where
each customer is touched about once a batch.

The rate is taken between the first and the last committed batch (read from the `wapulse:stats`
counter every 10 ms), so process start-up does not count for either design.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from redis import Redis
from rq import Queue

from bench.bodies import make_corpus
from bench.common import (
    REDIS_URL,
    machine,
    peak_rss_mib,
    postgres_available,
    print_table,
    redis,
    scratch_database,
    spawn,
    wapulse,
)
from workers import inbox

NAIVE_QUEUE = "bench-naive"
NOW = "2026-11-01T00:00:00Z"  # after the corpus: tiers move as a replay of the past makes them


def hand_off(connection: Redis, bodies: list[bytes]) -> None:
    """The webhook's handoff, pipelined: the same stream entries, minus the HTTP."""
    pipeline = connection.pipeline(transaction=False)
    for body in bodies:
        pipeline.xadd(inbox.INBOX, {"b": body, "v": inbox.VALID})
    pipeline.execute()


def events_committed(connection: Redis) -> int:
    return int(connection.hget(inbox.STATS, "events") or 0)


def watch(processes, connection: Redis, expected: int, timeout_s: float = 900) -> tuple[float, float]:
    """Wait until `expected` events are committed and the processes are done; returns events a
    second between the first and last commits, and the largest peak RSS of a worker (MiB)."""
    first_at = first_count = None
    last_at, last_count, peak = time.monotonic(), 0, 0.0
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        count = events_committed(connection)
        now = time.monotonic()
        if count and first_at is None:
            first_at, first_count = now, count
        if count != last_count:
            last_at, last_count = now, count
        peak = max([peak] + [peak_rss_mib(p.pid) or 0.0 for p in processes])
        if count >= expected and all(p.poll() is not None for p in processes):
            break
        if any(p.poll() not in (None, 0) for p in processes):
            raise RuntimeError(next(p for p in processes if p.poll()).stderr.read().decode()[-2000:])
        time.sleep(0.01)
    else:
        raise RuntimeError(f"only {events_committed(connection)} of {expected} events committed in time")
    if last_count != expected:
        raise RuntimeError(f"{last_count} events committed, {expected} expected")
    return (last_count - first_count) / max(last_at - first_at, 1e-3), peak


def ours(database_url: str, bodies: list[bytes], expected: int, processes: int) -> tuple[float, float]:
    connection = redis()
    hand_off(connection, bodies)
    inbox.ensure_group(connection)
    for _ in range(processes):
        inbox.enqueue_drain(connection)
    env = {"DATABASE_URL": database_url, "REDIS_URL": REDIS_URL, "WAPULSE_NOW": NOW}
    workers = [spawn(wapulse("worker", "--burst"), env) for _ in range(processes)]
    return watch(workers, connection, expected)


def naive(database_url: str, bodies: list[bytes], processes: int) -> float:
    """One forking RQ job per body; each job reads its body from a Redis key (its id is the
    only job argument) and commits it alone."""
    connection = redis()
    queue = Queue(NAIVE_QUEUE, connection=connection)
    pipeline = connection.pipeline(transaction=False)
    for n, body in enumerate(bodies):
        pipeline.set(f"bench:naive:{n}", body)
    pipeline.execute()
    for n in range(len(bodies)):
        queue.enqueue("bench.naive.process_body", n, result_ttl=0)
    env = {"DATABASE_URL": database_url, "REDIS_URL": REDIS_URL, "WAPULSE_NOW": NOW}
    rq = [sys.executable, "-m", "rq.cli", "worker", "--burst", "--url", REDIS_URL, NAIVE_QUEUE]
    workers = [spawn(rq, env) for _ in range(processes)]
    for worker in workers:
        if worker.wait(timeout=1800):
            raise RuntimeError(worker.stderr.read().decode()[-2000:])
    started, finished = (float(connection.get(f"bench:naive:{name}") or 0) for name in ("first", "last"))
    return events_committed(connection) / max(finished - started, 1e-3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bodies", type=int, default=6_000)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--spread", type=int, default=50, help="bench.bodies.make_corpus: larger is flatter")
    parser.add_argument("--naive-bodies", type=int, default=600)
    parser.add_argument("--processes", type=lambda text: [int(n) for n in text.split(",")], default=[1, 2],
                        help="worker process counts to measure, e.g. 1,2,4")
    args = parser.parse_args()
    corpus = make_corpus(args.bodies, customers=args.customers, spread=args.spread)
    naive_corpus = make_corpus(args.naive_bodies, seed=7)
    print(f"machine: {machine()}")
    print(f"corpus: {args.bodies} bodies, {corpus.updates} updates about {args.customers:,} customers (seeded); "
          f"naive baseline: {args.naive_bodies} bodies")
    backends = ["sqlite"] + (["postgresql"] if postgres_available() else [])
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for backend in backends:
            one_worker = None
            for processes in args.processes:
                with scratch_database(backend, Path(folder)) as url:
                    naive_rate = naive(url, naive_corpus.bodies, processes)
                with scratch_database(backend, Path(folder)) as url:
                    rate, peak = ours(url, corpus.bodies, corpus.updates, processes)
                one_worker = one_worker or rate
                rows.append([backend, processes, f"{rate:,.0f}", f"{rate / one_worker:.2f}", f"{naive_rate:,.0f}",
                             f"{rate / naive_rate:,.1f}x", f"{peak:.0f}"])
    print_table("worker throughput (events/s, first to last commit)",
                ["database", "workers", "wapulse", f"x {args.processes[0]} worker(s)", "naive RQ", "ratio",
                 "peak RSS MiB"], rows)


if __name__ == "__main__":
    main()
