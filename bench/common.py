"""What every benchmark shares: scratch databases and Redis, the machine, tables of figures."""

from __future__ import annotations

import os
import platform
import signal
import subprocess
import sys
import time
import uuid
import socket
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from redis import Redis
from sqlalchemy import text

from store import db

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {memory_gib:.0f} GiB, Python {platform.python_version()}"


def redis() -> Redis:
    connection = Redis.from_url(REDIS_URL)
    connection.flushdb()
    return connection


def postgres_available() -> bool:
    try:
        with db.make_engine(POSTGRES_URL).connect():
            return True
    except Exception:  # noqa: BLE001 - any failure means: no PostgreSQL to measure
        return False


def backends_to_measure(choice: str) -> list[str]:
    """The stores a `--backend` choice names, less PostgreSQL when it does not answer."""
    backends = ["postgres", "sqlite"] if choice == "both" else [choice]
    if "postgres" in backends and not postgres_available():
        print("PostgreSQL not reachable: measuring SQLite only")
        backends.remove("postgres")
    return backends


@contextmanager
def scratch_database(backend: str, folder: Path) -> Iterator[str]:
    """A migrated, empty database: a SQLite file, or a throwaway PostgreSQL schema."""
    if backend == "sqlite":
        url = f"sqlite:///{folder / f'bench-{uuid.uuid4().hex[:8]}.db'}"
        db.upgrade(url)
        yield url
        return
    schema = f"wapulse_bench_{uuid.uuid4().hex[:8]}"
    engine = db.make_engine(POSTGRES_URL)
    with engine.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    url = f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    db.upgrade(url)
    try:
        yield url
    finally:
        with engine.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()


def spawn(args: list[str], env: dict[str, str], stderr=subprocess.PIPE, group: bool = False) -> subprocess.Popen:
    """Start a process of the project; a long-lived one should be given a file for `stderr`, since
    a pipe nobody reads stops the process once it fills. `group`: in a process group of its own,
    for `stop_group` to end it with every child it started (a worker pool's workers)."""
    return subprocess.Popen(args, env={**os.environ, **env, "PYTHONPATH": str(ROOT)}, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=group)


def stop_group(server: subprocess.Popen, timeout_s: float = 15) -> None:
    """SIGTERM to the server's group, SIGKILL if it is not gone in time; returns once no process
    of it is left, so that a server shutting down never shares the CPU with the next one's run."""
    os.killpg(server.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            time.sleep(0.05)
            server.poll()  # reaps the leader: a zombie would still count as a member of the group
            if time.monotonic() > deadline:
                os.killpg(server.pid, signal.SIGKILL)
            os.killpg(server.pid, 0)
    except ProcessLookupError:
        return




def procfile() -> dict[str, list[str]]:
    """Each Procfile process (name → argv), run through the shell as honcho runs it, with this
    virtualenv's `wapulse` first on the PATH."""
    lines = (line.partition(":") for line in (ROOT / "Procfile").read_text().splitlines() if line.strip())
    return {name.strip(): ["sh", "-c", f"PATH={Path(sys.executable).parent}:$PATH exec {command.strip()}"]
            for name, _, command in lines}


def wapulse(*args: str) -> list[str]:
    return [sys.executable, "-m", "wapulse.cli", *args]


def print_table(title: str, header: list[str], rows: list[list]) -> None:
    cells = [[str(value) for value in row] for row in rows]
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(header)]
    print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(value.rjust(w) for value, w in zip(row, widths)))


def _status_mib(pid: int, field: str) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def peak_rss_mib(pid: int) -> float | None:
    """VmHWM of a live process: its peak resident set so far."""
    return _status_mib(pid, "VmHWM")


def rss_mib(pid: int) -> float | None:
    """VmRSS of a live process: its resident set now."""
    return _status_mib(pid, "VmRSS")


def child_pids(pid: int) -> list[int]:
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def percentile(values: list[float], p: float) -> float:
    """The nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def serving(argv: list[str], port: int, log: Path, env: dict[str, str]) -> Iterator[subprocess.Popen]:
    """A server in its own process group, up (it answers HTTP) until the block ends, then the
    whole group stopped."""
    with log.open("wb") as output:
        server = subprocess.Popen(argv, env={**os.environ, **env, "PORT": str(port), "PYTHONPATH": str(ROOT)},
                                  cwd=ROOT, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until_up(server, port, log)
        yield server
    finally:
        stop_group(server)


def wait_until_up(server: subprocess.Popen, port: int, log: Path, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"{server.args} exited: {log.read_text()[-2000:]}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{server.args} did not answer on port {port} in {timeout_s:.0f} s")
