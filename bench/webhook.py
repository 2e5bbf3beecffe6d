"""Webhook acknowledgement: requests a second and latency (p50, p99, max) of POSTs of signed,
distinct, realistic bodies at 32 and 256 connections, against our webhook served as `wapulse web`
serves it (granian's ASGI interface, webhook.intake), and in the same run against a bare Flask
endpoint (the ceiling) and pywa (signature checked, each update appended to Redis:
bench/webhook_apps.py), both WSGI, on granian (2 workers, 4 blocking threads) and on bjoern; and
wrk against nginx, the load generator's own ceiling.

    python -m bench.webhook [--seconds 10] [--connections 32,256] [--wrk-threads 1]

bjoern is the fastest WSGI server we found on PyPI for this: on bare Flask, two processes each,
wrk -t1 at 32 connections on this 2-core machine, it answered 8,500-10,500 requests a second,
granian (2 workers, 4 blocking threads) 6,000-8,000, fastwsgi 4,900-7,400, socketify
3,100-6,900, gunicorn sync 1,700-3,400 and gthread 1,600-2,900; pyruvate answered errors.

wrk (bench/wrk_bodies.lua) stops sending after --seconds and waits for its last answers, so that
every request sent is answered and counted. After each run of ours (and of pywa) its Redis stream
must hold exactly the bodies sent, each once; the bodies of our first run are then drained through
`wapulse worker --burst` into a scratch SQLite database, and each must be archived. A non-2xx answer, a
socket error or a body missing anywhere fails the bench (exit status 1). Each run also reports
the CPU that other programs took meanwhile: they lower every figure of the run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from redis import Redis
from sqlalchemy import select

from bench.bodies import SEED, Corpus, make_corpus
from bench.common import (
    REDIS_URL,
    ROOT,
    child_pids,
    machine,
    peak_rss_mib,
    print_table,
    redis,
    scratch_database,
    free_port,
    serving,
    spawn,
    wapulse,
)
from bench.webhook_apps import PYWA_STREAM, WEBHOOK_PATH
from cloudapi.signature import sign
from store.db import make_engine
from store.models import RawBody
from workers import inbox

HOST = "127.0.0.1"
SECRET = "bench-app-secret"
WORKERS, THREADS = "2", "4"  # the defaults of WEB_CONCURRENCY and WEB_THREADS in `wapulse web`
WRK_SCRIPT = ROOT / "bench" / "wrk_bodies.lua"
WRK_SLACK_S = 2  # wrk runs this much longer than the script sends, for the last answers to come in
WRK_TIMEOUT = "10s"  # wrk leaves slower answers out of its latencies and counts them as errors
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
BODIES_PER_SECOND = 15_000  # more than any app here answers: no thread runs out of distinct bodies
PYWA_TARGET, CEILING_TARGET = 1.5, 0.6  # ours at least 1.5x pywa's rate and 60% of bare Flask's
P99_TARGET_MS, P99_TARGET_CONNECTIONS = 20, 32
SERVER_ENV = {"WHATSAPP_APP_SECRET": SECRET, "REDIS_URL": REDIS_URL, "HOST": HOST,
              "WEB_CONCURRENCY": WORKERS, "WEB_THREADS": THREADS}


@dataclass(frozen=True)
class App:
    name: str
    factory: str  # module:function building the app from the environment
    stream: str | None  # the Redis stream every acknowledged body must be found in


OURS = App("wapulse", "webhook.intake:create_intake", inbox.INBOX)
APPS = [OURS, App("pywa", "bench.webhook_apps:pywa_flask", PYWA_STREAM),
        App("bare Flask", "bench.webhook_apps:bare_flask", None)]


def granian(app: App, port: int) -> list[str]:
    """Ours through `wapulse web` itself (HOST and PORT from the environment: granian's ASGI
    interface); the others, WSGI apps, with the flags `wapulse web` used for WSGI before issue 16."""
    if app == OURS:
        return wapulse("web")
    return [str(Path(sys.executable).with_name("granian")), "--interface", "wsgi", "--factory", "--host", HOST,
            "--port", str(port), "--workers", WORKERS, "--blocking-threads", THREADS, "--no-ws", app.factory]


def bjoern(app: App, port: int) -> list[str]:
    return [sys.executable, "-m", "bench.bjoern_serve", app.factory, HOST, str(port), WORKERS]


SERVERS: dict[str, Callable[[App, int], list[str]]] = {"granian": granian, "bjoern": bjoern}
OUR_SERVERS = ("granian",)  # ours is an ASGI application (webhook.intake): bjoern serves only WSGI


@dataclass(frozen=True)
class Load:
    """What bench/wrk_bodies.lua counted; latencies in microseconds."""

    sent_by_thread: list[int]
    answered: int
    not_2xx: int
    exhausted: int  # threads that ran out of distinct bodies before the time was up
    rate: float
    p50_us: int
    p99_us: int
    max_us: int
    socket_errors: int

    @property
    def sent(self) -> int:
        return sum(self.sent_by_thread)


def require_tools() -> tuple[str, str]:
    wrk, nginx = shutil.which("wrk"), shutil.which("nginx") or shutil.which("/usr/sbin/nginx")
    if not wrk or not nginx:
        raise SystemExit("the webhook bench needs wrk and nginx: apt-get install wrk nginx-light (make bench does)")
    return wrk, nginx


def user_id(wa_id: str) -> str:
    """A stable business-scoped user id (BSUID) for a phone number, in Meta's "CC.digits" form."""
    return f"ZZ.{int(hashlib.sha256(wa_id.encode()).hexdigest()[:16], 16):020d}"


def with_user_ids(body: bytes) -> bytes:
    """The body as Meta sends it since BSUIDs (fixtures/cloudapi/messages__text.json and
    messages__status-read.json): contacts with their `user_id`, messages with `from_user_id`,
    statuses with `recipient_user_id` and the contacts of their recipients. make_corpus leaves
    these out; pywa 4.5 cannot read an update without them and logs a traceback for each instead
    of handling it, so its figures would be those of its error path."""
    payload = json.loads(body)
    value = payload["entry"][0]["changes"][0]["value"]
    for message in value.get("messages", []):
        message["from_user_id"] = user_id(message["from"])
    if statuses := value.get("statuses"):
        value["contacts"] = [{"wa_id": wa_id} for wa_id in dict.fromkeys(status["recipient_id"] for status in statuses)]
        for status in statuses:
            status["recipient_user_id"] = user_id(status["recipient_id"])
    for contact in value["contacts"]:
        contact["user_id"] = user_id(contact["wa_id"])
    return json.dumps(payload, separators=(",", ":")).encode()


def write_bodies(bodies: list[bytes], path: Path) -> None:
    """One "<signature> <body>" a line, as bench/wrk_bodies.lua reads them (bodies are one line
    of JSON)."""
    with path.open("wb") as out:
        for body in bodies:
            out.write(sign(SECRET, body).encode() + b" " + body + b"\n")


@dataclass(frozen=True)
class Bench:
    """What every run shares."""

    wrk: str
    corpus: Corpus
    bodies_file: Path
    folder: Path
    seconds: float
    warmup: float
    connections: list[int]
    wrk_threads: int
    redis_pid: int

    def load(self, port: int, connections: int, seconds: float, wrap: bool = False) -> Load:
        args = [self.wrk, f"-t{self.wrk_threads}", f"-c{connections}", f"-d{math.ceil(seconds + WRK_SLACK_S)}s",
                f"--timeout={WRK_TIMEOUT}", "-s", str(WRK_SCRIPT), f"http://{HOST}:{port}{WEBHOOK_PATH}", "--",
                str(self.bodies_file), str(self.wrk_threads), f"{seconds:g}"] + (["wrap"] if wrap else [])
        wrk = subprocess.run(args, capture_output=True, text=True)
        line = next((line for line in wrk.stdout.splitlines() if line.startswith("wrk_bodies ")), None)
        if wrk.returncode or line is None:
            raise RuntimeError(f"{' '.join(args)} failed: {wrk.stderr[-2000:]}")
        return Load(**json.loads(line.removeprefix("wrk_bodies ")))

    def measure(self, server: subprocess.Popen, port: int, connections: int, wrap: bool = False) -> tuple[Load, float]:
        """A measured run; also the share of all cores that processes other than the server, wrk
        and Redis took during it."""
        measured = process_tree(server.pid) + [self.redis_pid]
        busy, ours, started = machine_busy_s(), cpu_s(measured), time.monotonic()
        load = self.load(port, connections, self.seconds, wrap)
        others = (machine_busy_s() - busy) - (cpu_s(measured) - ours)
        return load, max(others, 0.0) / ((time.monotonic() - started) * os.cpu_count())


def machine_busy_s() -> float:
    """CPU time the whole machine has spent on anything but idling, since boot."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = (
        int(ticks) for ticks in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9])
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


def cpu_s(pids: list[int]) -> float:
    """CPU time of the live processes `pids`, and of this process's children that have ended
    (wrk), so far."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    times = os.times()
    return ticks / CLOCK_TICKS + times.children_user + times.children_system


def sent_indices(bodies: int, load: Load) -> list[int]:
    """Which bodies of the corpus a run sent: the start of each thread's slice, as
    bench/wrk_bodies.lua cuts them."""
    per_thread = bodies // len(load.sent_by_thread)
    return [n * per_thread + k for n, sent in enumerate(load.sent_by_thread) for k in range(sent)]


def process_tree(pid: int) -> list[int]:
    pids = [pid]
    for parent in pids:
        pids += child_pids(parent)
    return pids


def peak_rss_of_tree(pid: int) -> float:
    """The sum of every server process's own peak resident set (MiB)."""
    return sum(peak_rss_mib(each) or 0.0 for each in process_tree(pid))


def stream_bodies(connection: Redis, stream: str) -> list[bytes]:
    bodies, start = [], "-"
    while page := connection.xrange(stream, min=start, count=10_000):
        bodies += [fields[b"b"] for _, fields in page]
        start = "(" + page[-1][0].decode()
    return bodies


def missing_from_stream(connection: Redis, stream: str, sent: list[bytes], load: Load) -> list[str]:
    """Every body answered 2xx is in the stream once, and nothing else is."""
    kept = stream_bodies(connection, stream)
    problems = []
    if len(kept) != load.answered - load.not_2xx:
        problems.append(f"{load.answered - load.not_2xx:,} bodies answered 2xx, {len(kept):,} entries in {stream}")
    if not load.not_2xx and Counter(kept) != Counter(sent):  # with refusals, which bodies to expect is unknown
        problems.append(f"the entries of {stream} are not the bodies sent, each once")
    return problems


def drain_and_check(connection: Redis, sent: list[bytes], updates: int, folder: Path) -> tuple[str, list[str]]:
    """Process one run's inbox with the real worker (`wapulse worker --burst`, SQLite), then find
    each body sent archived once and each of its updates counted as an event."""
    started = time.monotonic()
    with scratch_database("sqlite", folder) as url:
        worker = spawn(wapulse("worker", "--burst"), {"DATABASE_URL": url, "REDIS_URL": REDIS_URL})
        _, errors = worker.communicate(timeout=900)
        seconds = time.monotonic() - started
        if worker.returncode:
            return "", [f"wapulse worker --burst failed: {errors.decode()[-2000:]}"]
        engine = make_engine(url)
        with engine.connect() as database:
            archived = Counter(database.scalars(select(RawBody.sha256)))
        engine.dispose()
    events = int(connection.hget(inbox.STATS, "events") or 0)
    problems = []
    if archived != Counter(hashlib.sha256(body).hexdigest() for body in sent):
        problems.append(f"{len(sent):,} bodies handed off, {archived.total():,} archived, not the same ones")
    if events != updates:
        problems.append(f"{updates:,} updates handed off, {events:,} events committed")
    if left := connection.xlen(inbox.INBOX):
        problems.append(f"{left:,} entries still in {inbox.INBOX} after the drain")
    summary = (f"drained by `wapulse worker --burst` (SQLite) in {seconds:.0f} s: {archived.total():,} of "
               f"{len(sent):,} bodies archived, {events:,} of {updates:,} updates committed as events")
    return summary, problems


def row(app: str, server: str, connections: int, load: Load, others_cpu: float, rss_mib: float | None) -> list:
    return [app, server, connections, f"{load.rate:,.0f}", f"{load.p50_us / 1000:.1f}", f"{load.p99_us / 1000:.1f}",
            f"{load.max_us / 1000:.1f}", load.not_2xx, load.socket_errors, f"{others_cpu:.0%}",
            f"{rss_mib:.0f}" if rss_mib else "-"]


def load_problems(load: Load) -> list[str]:
    problems = []
    if load.not_2xx:
        problems.append(f"{load.not_2xx:,} answers not 2xx")
    if load.socket_errors:
        problems.append(f"{load.socket_errors:,} socket errors or answers over {WRK_TIMEOUT}")
    if load.sent != load.answered:
        problems.append(f"{load.sent - load.answered:,} requests unanswered when wrk stopped")
    if load.exhausted:
        problems.append("ran out of distinct bodies before the time was up (raise --bodies)")
    return problems


@dataclass
class Results:
    rows: list[list]
    rates: dict[tuple[str, str, int], float]  # (app, server, connections) → requests/s
    our_p99_ms: dict[tuple[str, int], float]  # (server, connections) → ms
    problems: list[str]
    drain_note: str | None = None  # what draining our first clean run through the worker found
    most_others_cpu: float = 0.0


def nginx_ceiling(bench: Bench, nginx: str, results: Results) -> None:
    """wrk and the same script against nginx answering 200 with as many processes as the Python
    servers: how fast the load generator itself can go on this machine."""
    port, folder = free_port(), bench.folder
    config = folder / "nginx.conf"
    config.write_text(f"""
        daemon off; worker_processes {WORKERS}; pid {folder}/nginx.pid; error_log stderr error;
        events {{ worker_connections 4096; }}
        http {{
            access_log off; client_body_temp_path {folder}/nginx-body;
            server {{ listen {HOST}:{port}; location / {{ return 200 "ok\\n"; }} }}
        }}""")
    with serving([nginx, "-e", "stderr", "-c", str(config), "-p", str(folder)], port, folder / "nginx.log",
                 SERVER_ENV) as server:
        bench.load(port, max(bench.connections), bench.warmup, wrap=True)
        for connections in bench.connections:
            load, others_cpu = bench.measure(server, port, connections, wrap=True)
            results.rows.append(row("nginx return 200", "nginx", connections, load, others_cpu, None))
            results.rates["nginx", "nginx", connections] = load.rate


def ratio_rows(results: Results, connections: list[int]) -> list[list]:
    def verdict(met: bool) -> str:
        return "yes" if met else "NO"

    rows = []
    for server in OUR_SERVERS:
        for count in connections:
            ours, pywa, bare = (results.rates[app.name, server, count] for app in APPS)
            p99 = results.our_p99_ms[server, count]
            p99_cell = f"{p99:.1f} ms ({verdict(p99 <= P99_TARGET_MS)})" if count == P99_TARGET_CONNECTIONS else "-"
            rows.append([server, count, f"{ours / pywa:.2f}x ({verdict(ours / pywa >= PYWA_TARGET)})",
                         f"{ours / bare:.0%} ({verdict(ours / bare >= CEILING_TARGET)})", p99_cell])
    return rows


def bench_app(bench: Bench, server_name: str, app: App, results: Results) -> None:
    """Start the server once, warm it up, then one run a connection count, each checked."""
    port = free_port()
    with serving(SERVERS[server_name](app, port), port, bench.folder / "server.log", SERVER_ENV) as server:
        bench.load(port, max(bench.connections), bench.warmup)
        for connections in bench.connections:
            connection = redis()  # an empty database: the run's entries are then all there is
            load, others_cpu = bench.measure(server, port, connections)
            label = f"{app.name} on {server_name} at {connections} connections"
            print(f"  {label}: {load.rate:,.0f} requests/s", file=sys.stderr)
            results.rows.append(row(app.name, server_name, connections, load, others_cpu, peak_rss_of_tree(server.pid)))
            results.rates[app.name, server_name, connections] = load.rate
            results.most_others_cpu = max(results.most_others_cpu, others_cpu)
            if app == OURS:
                results.our_p99_ms[server_name, connections] = load.p99_us / 1000
            problems = load_problems(load)
            if app.stream:
                indices = sent_indices(len(bench.corpus.bodies), load)
                sent = [bench.corpus.bodies[n] for n in indices]
                problems += missing_from_stream(connection, app.stream, sent, load)
                if app == OURS and results.drain_note is None and not problems:
                    updates = sum(bench.corpus.sizes[n] for n in indices)
                    summary, drain_problems = drain_and_check(connection, sent, updates, bench.folder)
                    results.drain_note = f"{label}: {load.answered:,} answered 2xx, all in {app.stream}; {summary}"
                    problems += drain_problems
            results.problems += [f"{label}: {problem}" for problem in problems]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds a run")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of load after a server starts, not measured")
    parser.add_argument("--connections", type=lambda text: [int(n) for n in text.split(",")], default=[32, 256])
    parser.add_argument("--wrk-threads", type=int, default=1)
    parser.add_argument("--bodies", type=int, help=f"distinct bodies (default: {BODIES_PER_SECOND:,} per second)")
    args = parser.parse_args()
    wrk, nginx = require_tools()
    started = time.monotonic()
    generated = make_corpus(args.bodies or int(BODIES_PER_SECOND * args.seconds))
    corpus = Corpus([with_user_ids(body) for body in generated.bodies], generated.sizes)
    mean_bytes = sum(map(len, corpus.bodies)) / len(corpus.bodies)
    print(f"machine: {machine()}")
    print(f"corpus: {len(corpus.bodies):,} distinct signed bodies (seed {SEED}), {corpus.updates:,} updates, "
          f"1-50 a body, messages and statuses, with BSUIDs, {mean_bytes:,.0f} bytes on average")
    print(f"load: wrk -t{args.wrk_threads} on the same {os.cpu_count()} cores as the servers, {args.seconds:g} s a run "
          f"after a {args.warmup:g} s warm-up of each server; no body is sent twice in a run")
    print(f"servers: {WORKERS} processes each (WEB_CONCURRENCY); ours through `wapulse web` itself (granian, ASGI); "
          f"pywa and bare Flask on granian (WSGI, {THREADS} blocking threads a process) and bjoern (one thread)")
    results = Results([], {}, {}, [])
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        write_bodies(corpus.bodies, folder / "bodies.txt")
        bench = Bench(wrk, corpus, folder / "bodies.txt", folder, args.seconds, args.warmup, args.connections,
                      args.wrk_threads, redis().info("server")["process_id"])
        nginx_ceiling(bench, nginx, results)
        for server_name in SERVERS:
            for app in APPS:
                if app != OURS or server_name in OUR_SERVERS:
                    bench_app(bench, server_name, app, results)
    redis()  # leaves the bench database empty
    print_table("webhook acknowledgement (requests/s; latency in ms; peak RSS: all server processes, summed)",
                ["app", "server", "connections", "req/s", "p50", "p99", "max", "non-2xx", "socket errors",
                 "other CPU", "peak RSS MiB"], results.rows)
    print_table(f"ours against the others on the same server (targets: >= {PYWA_TARGET}x pywa, "
                f">= {CEILING_TARGET:.0%} of bare Flask, p99 <= {P99_TARGET_MS} ms at {P99_TARGET_CONNECTIONS} connections)",
                ["server", "connections", "ours / pywa", "ours / bare Flask", "our p99 at 32"],
                ratio_rows(results, args.connections))
    print()
    fastest_app = max(rate for (app, _, _), rate in results.rates.items() if app != "nginx")
    slowest_nginx = min(rate for (app, _, _), rate in results.rates.items() if app == "nginx")
    print(f"load generator: wrk -t{args.wrk_threads} with this script sent {slowest_nginx:,.0f} requests/s or more to "
          f"nginx, {slowest_nginx / fastest_app:.1f}x the fastest Python app's rate")
    print(results.drain_note or "no run of ours came through clean: none was drained through the worker")
    print(f"other programs took up to {results.most_others_cpu:.0%} of the CPU during a run"
          + (": every figure is lower than on a quiet machine" if results.most_others_cpu > 0.05 else ""))
    print(f"total time: {time.monotonic() - started:.0f} s")
    if results.problems:
        print("\nFAILED:\n  " + "\n  ".join(results.problems))
        sys.exit(1)


if __name__ == "__main__":
    main()
