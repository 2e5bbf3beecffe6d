"""End to end at a steady offered load: the delay from POST to the customer's tier being visible
in the database, the inbox depth over time, and the memory of the web and worker processes.

    python -m bench.end_to_end [--rate 3300] [--seconds 60] [--database sqlite,postgresql]

The stack runs as the Procfile starts it (its three lines, through the shell) against a scratch
database and Redis. An open-loop generator in its own process sends signed bodies on a fixed
schedule, so that updates (not bodies) arrive at `--rate` a second, and each delay is counted from the body's scheduled instant: a slow server cannot slow
the load down and hide its own delay. A poller reads new archive rows every 10 ms; a body's
archive row commits in the same transaction as its customers' counters and tiers, so the
instant it appears is the instant the tier is visible.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select

from bench.bodies import make_corpus
from bench.common import (
    REDIS_URL,
    ROOT,
    child_pids,
    machine,
    peak_rss_mib,
    percentile,
    postgres_available,
    print_table,
    procfile,
    redis,
    rss_mib,
    scratch_database,
    spawn,
)
from cloudapi.signature import SIGNATURE_HEADER, sign
from store.db import make_engine
from store.models import RawBody
from workers import inbox

SECRET = "bench-secret"
PORT = 8765
CONNECTIONS = 64  # Meta delivers concurrently; this many bodies may be in flight at once
POLL_S = 0.010
DRAIN_LIMIT_S = 900  # a run whose backlog takes longer than this to commit is reported as failed
LOGS = ROOT / "var" / "bench"  # what the web, worker and cron processes wrote, kept after the run


def request_bytes(body: bytes) -> bytes:
    head = (
        f"POST /webhook HTTP/1.1\r\nHost: 127.0.0.1:{PORT}\r\nContent-Type: application/json\r\n"
        f"{SIGNATURE_HEADER}: {sign(SECRET, body)}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next((int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:")), 0)
    await reader.readexactly(length)
    return int(lines[0].split()[1])


async def _send_on_schedule(requests: list[bytes], offsets: list[float], start: float, port: int) -> dict:
    """Send request i at `start + offsets[i]` on whichever of the connections is free."""
    due: asyncio.Queue = asyncio.Queue()
    statuses: dict[int, int] = {}
    lags: list[float] = []

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while (index := await due.get()) is not None:
            lags.append(time.time() - start - offsets[index])
            try:
                writer.write(requests[index])
                status = await _read_response(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                status = 0  # closed without an answer: counted as a failure, and a new connection
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            statuses[status] = statuses.get(status, 0) + 1
        writer.close()

    senders = [asyncio.create_task(connection()) for _ in range(CONNECTIONS)]
    for index, offset in enumerate(offsets):
        wait = start + offset - time.time()
        if wait > 0:
            await asyncio.sleep(wait)
        due.put_nowait(index)
    for _ in senders:
        due.put_nowait(None)
    await asyncio.gather(*senders)
    return {"statuses": statuses, "lag_p99_ms": percentile(lags, 99) * 1000, "finished": time.time()}


def generate(requests: list[bytes], offsets: list[float], start: float, port: int, results) -> None:
    """The load generator's process: its own interpreter, so the poller never slows it."""
    results.put(asyncio.run(_send_on_schedule(requests, offsets, start, port)))


def generator_ceiling(requests: list[bytes], seconds: float = 3.0) -> float:
    """Bodies a second the generator sends, all at once, to a server that answers at once."""
    async def serve(reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
                await reader.readexactly(length)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def measure() -> float:
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        sample = requests[: int(len(requests) * 0.2)]
        started = time.time()
        await _send_on_schedule(sample, [0.0] * len(sample), started, port)
        server.close()
        return len(sample) / (time.time() - started)

    return asyncio.run(measure())


@dataclass
class Run:
    database: str
    delays_ms: list[float] = field(default_factory=list)
    depth: list[tuple[float, int]] = field(default_factory=list)  # (seconds since start, bodies waiting)
    drained_after_s: float = 0.0
    statuses: dict = field(default_factory=dict)
    lag_p99_ms: float = 0.0
    rss: dict = field(default_factory=dict)  # process → (MiB after 10 s, MiB at the end, peak MiB)


def wait_for_health(url: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the web server did not answer {url} in {timeout_s:.0f} s")


def run_once(database: str, url: str, bodies: list[bytes], offsets: list[float], seconds: float, logs: Path) -> Run:
    connection = redis()
    env = {"DATABASE_URL": url, "REDIS_URL": REDIS_URL, "WHATSAPP_APP_SECRET": SECRET, "HOST": "127.0.0.1",
           "PORT": str(PORT)}
    stack = {name: spawn(argv, env, stderr=(logs / f"{database}-{name}.log").open("wb"))
             for name, argv in procfile().items()}
    run = Run(database)
    try:
        wait_for_health(f"http://127.0.0.1:{PORT}/health")
        scheduled = {hashlib.sha256(body).hexdigest(): offset for body, offset in zip(bodies, offsets)}
        start = time.time() + 1.0
        results = multiprocessing.Queue()
        generator = multiprocessing.Process(
            target=generate, args=([request_bytes(b) for b in bodies], offsets, start, PORT, results)
        )
        generator.start()
        engine, last_id, seen, next_sample = make_engine(url), 0, 0, start
        early_rss: dict[str, float] = {}
        while seen < len(bodies):
            now = time.time()
            if now > start + seconds + DRAIN_LIMIT_S:
                raise RuntimeError(f"{len(bodies) - seen} bodies not committed {DRAIN_LIMIT_S} s after the load stopped")
            with engine.connect() as db:
                rows = db.execute(select(RawBody.id, RawBody.sha256).where(RawBody.id > last_id).order_by(RawBody.id)).all()
            for row_id, digest in rows:
                run.delays_ms.append((now - start - scheduled[digest]) * 1000)
                last_id, seen = row_id, seen + 1
            if now >= next_sample:
                run.depth.append((now - start, inbox.backlog(connection)))
                next_sample += 1.0
                if not early_rss and now >= start + 10:
                    early_rss = _current_rss(stack)
            time.sleep(POLL_S)
        run.drained_after_s = max(0.0, time.time() - start - offsets[-1])
        generated = results.get(timeout=60)
        generator.join()
        run.statuses, run.lag_p99_ms = generated["statuses"], generated["lag_p99_ms"]
        while inbox.backlog(connection):
            time.sleep(POLL_S)
        run.depth.append((time.time() - start, 0))
        late_rss = _current_rss(stack)
        run.rss = {name: (early_rss.get(name, 0.0), late_rss[name], _peak_rss(process.pid))
                   for name, process in stack.items()}
        engine.dispose()
        return run
    finally:
        for process in stack.values():
            process.terminate()
        for process in stack.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:  # a worker finishes its drain job first: no need here
                for member in reversed(_family(process.pid)):  # the worker pool's children too
                    os.kill(member, signal.SIGKILL)
                process.wait()


def _family(pid: int) -> list[int]:
    """A process and its descendants (granian serves from child processes)."""
    return [pid] + [grandchild for child in child_pids(pid) for grandchild in _family(child)]


def _current_rss(stack: dict) -> dict[str, float]:
    return {name: sum(rss_mib(pid) or 0.0 for pid in _family(process.pid)) for name, process in stack.items()}


def _peak_rss(pid: int) -> float:
    return sum(peak_rss_mib(member) or 0.0 for member in _family(pid))


def schedule(sizes: list[int], rate: float, seconds: float) -> list[float]:
    """Send offsets such that updates arrive at `rate` a second, for `seconds`."""
    offsets = [before / rate for before in itertools.accumulate([0] + sizes[:-1])]
    return [offset for offset in offsets if offset < seconds]


def report(runs: list[Run], rate: float, seconds: float, bodies: int, updates: int, ceiling: float) -> None:
    print(f"offered: {updates:,} updates in {bodies:,} bodies over {seconds:.0f} s ({rate:,.0f} updates/s, "
          f"{bodies / seconds:,.0f} bodies/s) on {CONNECTIONS} connections")
    print(f"load generator ceiling: {ceiling:,.0f} bodies/s against a server that answers at once "
          f"({ceiling / (bodies / seconds):.0f}x the offered body rate)")
    rows = []
    for run in runs:
        non_2xx = sum(n for status, n in run.statuses.items() if not 200 <= status < 300)
        rows.append([run.database, f"{statistics.median(run.delays_ms):,.0f}", f"{percentile(run.delays_ms, 95):,.0f}",
                     f"{percentile(run.delays_ms, 99):,.0f}", f"{max(run.delays_ms):,.0f}",
                     f"{max(depth for _, depth in run.depth):,}", f"{run.drained_after_s:.1f}", non_2xx,
                     f"{run.lag_p99_ms:.1f}"])
    print_table("POST → tier visible (ms from the scheduled send), inbox depth, drain after the load stops",
                ["database", "p50", "p95", "p99", "max", "max depth", "zero after s", "non-2xx", "sender lag p99 ms"],
                rows)
    for run in runs:
        samples = run.depth[:: max(1, len(run.depth) // 12)]
        print(f"\ninbox depth, {run.database} (s: bodies): " + ", ".join(f"{t:.0f}: {d}" for t, d in samples))
    print_table("memory (RSS MiB of each Procfile process with its children)",
                ["database", "process", "after 10 s", "at the end", "peak"],
                [[run.database, name, f"{early:.0f}", f"{late:.0f}", f"{peak:.0f}"]
                 for run in runs for name, (early, late, peak) in run.rss.items()])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=3300, help="updates a second")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--database", default="sqlite,postgresql")
    args = parser.parse_args()
    # Stamped as they are sent (about 3 updates a body, 10% more bodies than the schedule takes),
    # about 100,000 customers as a number sending 1,000 messages a second reaches: the busiest
    # has an update every few seconds.
    bodies_needed = int(args.rate * args.seconds / 3 * 1.1)
    corpus = make_corpus(bodies_needed, customers=100_000, start=int(time.time()), span_s=int(args.seconds * 1.1),
                         spread=20_000, seed=99)
    offsets = schedule(corpus.sizes, args.rate, args.seconds)
    if offsets[-1] < args.seconds * 0.98:
        raise SystemExit("the corpus is too small for this rate and duration")
    bodies = corpus.bodies[: len(offsets)]
    updates = sum(corpus.sizes[: len(offsets)])
    print(f"machine: {machine()}")
    ceiling = generator_ceiling([request_bytes(body) for body in bodies])
    databases = [name for name in args.database.split(",") if name != "postgresql" or postgres_available()]
    runs = []
    LOGS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        for database in databases:
            with scratch_database(database, Path(folder)) as url:
                runs.append(run_once(database, url, bodies, offsets, args.seconds, LOGS))
    report(runs, args.rate, args.seconds, len(bodies), updates, ceiling)
    failures = [run.database for run in runs if any(not 200 <= s < 300 for s in run.statuses)]
    if failures:
        sys.exit(f"non-2xx answers on {', '.join(failures)}")


if __name__ == "__main__":
    main()
