"""What an acknowledgement costs when Redis writes it to disk before answering: signed POSTs a
second through `wapulse web` against a private Redis with AOF and `appendfsync everysec` (what
`make run` starts; the baseline) and with `appendfsync always`, in alternating runs of the same
length, on the same corpus and load as bench/webhook.py.

    python -m bench.durability [--seconds 10] [--connections 32] [--rounds 2]

With `everysec`, Redis appends each body to its AOF before the POST is answered but fsyncs the
file once a second: an acknowledged body survives Redis being killed, and is lost only if the
machine itself loses power or crashes within that second. With `always`, Redis fsyncs before it
answers the XADD, so an acknowledged body survives that too; the run says what it costs here.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from redis import Redis

from bench.bodies import Corpus, make_corpus
from bench.common import free_port, machine, print_table, serving, wapulse
from bench.webhook import SERVER_ENV, Bench, with_user_ids, write_bodies

POLICIES = ("everysec", "always")


def private_redis(folder: Path, policy: str) -> tuple[subprocess.Popen, str]:
    """A redis-server of its own with AOF on and the given fsync policy; its URL."""
    port = free_port()
    data = folder / f"redis-{policy}"
    data.mkdir()
    server = subprocess.Popen([shutil.which("redis-server"), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--dir", str(data), "--appendonly", "yes", "--appendfsync", policy],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    for _ in range(100):
        try:
            Redis.from_url(url).ping()
            return server, url
        except Exception:
            time.sleep(0.05)
    raise RuntimeError(f"redis-server with appendfsync {policy} did not start")


def require_wrk() -> str:
    if not (wrk := shutil.which("wrk")):
        raise SystemExit("the durability bench needs wrk: apt-get install wrk (make bench does)")
    return wrk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2, help="runs of each policy, alternating")
    args = parser.parse_args()
    wrk = require_wrk()
    generated = make_corpus(int(15_000 * args.seconds))  # sent round and round (wrap): Redis takes repeats as they come
    corpus = Corpus([with_user_ids(body) for body in generated.bodies], generated.sizes)
    print(f"machine: {machine()}")
    print(f"load: wrk -t1, {args.connections} connections, {args.seconds:g} s a run, {args.rounds} runs of each policy")
    rates: dict[str, list[float]] = {policy: [] for policy in POLICIES}
    rows = []
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        write_bodies(corpus.bodies, folder / "bodies.txt")
        servers = {policy: private_redis(folder, policy) for policy in POLICIES}
        try:
            for round_number in range(args.rounds):
                for policy in POLICIES:
                    redis_server, url = servers[policy]
                    bench = Bench(wrk, corpus, folder / "bodies.txt", folder, args.seconds, 2.0, [args.connections],
                                  1, redis_server.pid)
                    port = free_port()
                    with serving(wapulse("web"), port, folder / "web.log", {**SERVER_ENV, "REDIS_URL": url}) as web:
                        bench.load(port, args.connections, bench.warmup, wrap=True)
                        load, others = bench.measure(web, port, args.connections, wrap=True)
                    if load.not_2xx or load.socket_errors:
                        raise SystemExit(f"appendfsync {policy}: {load.not_2xx} non-2xx, {load.socket_errors} socket errors")
                    rates[policy].append(load.rate)
                    rows.append([round_number + 1, policy, f"{load.rate:,.0f}", f"{load.p50_us / 1000:.2f}",
                                 f"{load.p99_us / 1000:.2f}", f"{others:.0%}"])
        finally:
            for redis_server, _ in servers.values():
                redis_server.terminate()
                redis_server.wait(timeout=10)
    print_table("acknowledged POSTs a second by Redis's fsync policy (latency in ms)",
                ["round", "appendfsync", "req/s", "p50", "p99", "other CPU"], rows)
    baseline = sum(rates["everysec"]) / len(rates["everysec"])
    always = sum(rates["always"]) / len(rates["always"])
    print(f"\nalways / everysec: {always / baseline:.2f} (means of {args.rounds} runs each)")


if __name__ == "__main__":
    main()
