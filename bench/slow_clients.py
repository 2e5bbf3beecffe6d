"""The webhook while slow clients hold connections open: latency of signed POSTs and of GET
/health against `wapulse web` as the Procfile starts it (two processes), with 0 (the baseline,
measured in the same run), 100 and 500 connections that send their headers, promise a body of
1,000 bytes and send 10; and with 100 that send their headers one byte a second.

    python -m bench.slow_clients [--posts 300]

Each figure is over `--posts` POSTs sent one after another (a new connection each, as Meta
opens them), each a distinct body, all of which must be answered 200 and found in the inbox.
"""

from __future__ import annotations

import argparse
import socket
import tempfile
import threading
import time
from pathlib import Path

import requests

from bench.bodies import make_corpus
from bench.common import REDIS_URL, free_port, machine, percentile, print_table, procfile, redis, serving
from cloudapi.signature import SIGNATURE_HEADER, sign
from workers import inbox

SECRET = "bench-app-secret"


def stalled_bodies(port: int, count: int) -> list[socket.socket]:
    """Connections that promise 1,000 bytes of body and send 10."""
    connections = []
    for _ in range(count):
        connection = socket.create_connection(("127.0.0.1", port))
        connection.sendall(b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                           b"Content-Length: 1000\r\n\r\n" + b'{"entry":[')
        connections.append(connection)
    return connections


def dripping_headers(port: int, count: int, stop: threading.Event) -> list[socket.socket]:
    """Connections that send their request line and headers one byte a second."""
    connections = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
    head = b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"

    def drip() -> None:
        for byte in head:
            for connection in connections:
                try:
                    connection.send(bytes([byte]))
                except OSError:
                    pass
            if stop.wait(1):
                return

    threading.Thread(target=drip, daemon=True).start()
    return connections


def latencies(url: str, bodies: list[bytes]) -> tuple[list[float], list[float]]:
    """Milliseconds of each signed POST, and of a GET /health after each tenth."""
    posts, health = [], []
    for n, body in enumerate(bodies):
        started = time.perf_counter()
        answer = requests.post(url, data=body, timeout=30, headers={
            "Content-Type": "application/json", SIGNATURE_HEADER: sign(SECRET, body), "Connection": "close"})
        posts.append((time.perf_counter() - started) * 1000)
        if answer.status_code != 200:
            raise RuntimeError(f"a signed POST was answered {answer.status_code}")
        if n % 10 == 0:
            started = time.perf_counter()
            requests.get(url.replace("/webhook", "/health"), timeout=30).raise_for_status()
            health.append((time.perf_counter() - started) * 1000)
    return posts, health


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=300)
    args = parser.parse_args()
    corpus = make_corpus(args.posts * 4)
    print(f"machine: {machine()}")
    port = free_port()
    connection = redis()
    env = {"WHATSAPP_APP_SECRET": SECRET, "REDIS_URL": REDIS_URL, "PORT": str(port), "HOST": "127.0.0.1"}
    rows, baseline = [], None
    with tempfile.TemporaryDirectory() as folder, serving(procfile()["web"], port, Path(folder) / "web.log", env):
        url = f"http://127.0.0.1:{port}/webhook"
        cases = [("none (baseline)", lambda stop: []),
                 ("100 stalled bodies", lambda stop: stalled_bodies(port, 100)),
                 ("500 stalled bodies", lambda stop: stalled_bodies(port, 500)),
                 ("100 headers dripping a byte a second", lambda stop: dripping_headers(port, 100, stop))]
        for number, (name, open_slow) in enumerate(cases):
            stop = threading.Event()
            slow = open_slow(stop)
            try:
                bodies = corpus.bodies[number * args.posts:(number + 1) * args.posts]
                posts, health = latencies(url, bodies)
            finally:
                stop.set()
                for slow_connection in slow:
                    slow_connection.close()
            p50, p99 = percentile(posts, 50), percentile(posts, 99)
            baseline = baseline or p50
            rows.append([name, f"{p50:.1f}", f"{p99:.1f}", f"{max(posts):.1f}", f"{p50 / baseline:.2f}",
                         f"{percentile(health, 50):.1f}", f"{max(health):.1f}"])
    if connection.xlen(inbox.INBOX) != args.posts * len(rows):
        raise SystemExit(f"{connection.xlen(inbox.INBOX)} bodies in the inbox, {args.posts * len(rows)} acknowledged")
    redis()
    print_table(f"signed POSTs one after another ({args.posts} a case) while slow clients hold connections (ms)",
                ["slow clients", "POST p50", "p99", "max", "p50 vs baseline", "health p50", "health max"], rows)


if __name__ == "__main__":
    main()
