"""Faults of the services around wapulse, on a real stack: Redis killed with SIGKILL and restarted
from its append-only file while bodies flow, and a database that refuses connections. Each
asserts that every acknowledged body is counted once, that nothing answered 500, and that the
workers keep draining."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from redis import Redis
from sqlalchemy import func, select

from store.models import EventRow
from tests.conftest import (
    APP_SECRET, ROOT, _free_port, post_signed, process_until_drained, reread_environment, wait_until_served,
)
from tests.workers.test_crash_and_concurrency import numbered_messages
from workers import inbox

BODIES = 300


def start_redis(folder: Path, port: int) -> subprocess.Popen:
    """A redis-server of its own that keeps its data in an AOF (fsync every second), as `make run` starts one."""
    server = subprocess.Popen([shutil.which("redis-server"), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--dir", str(folder), "--appendonly", "yes", "--appendfsync", "everysec"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            Redis(port=port).ping()
            return server
        except Exception:
            time.sleep(0.05)
    raise RuntimeError("redis-server did not start")


def post_until_acknowledged(url: str, body: bytes, answers: list[int]) -> None:
    """POST as Meta does: again after any answer but 2xx (and after no answer), until it is 2xx."""
    while True:
        try:
            status = post_signed(url, body).status_code
        except requests.ConnectionError:
            status = 0
        answers.append(status)
        if 200 <= status < 300:
            return
        time.sleep(0.2)


def event_count(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(EventRow)).scalar_one()


@pytest.mark.slow
@pytest.mark.fault("Redis SIGKILLed and restarted from its AOF under steady load")
def test_redis_killed_and_restarted_from_its_aof_loses_no_acknowledged_body(env, engine, tmp_path):
    port, folder = _free_port(), tmp_path / "redis"
    folder.mkdir()
    redis_server = start_redis(folder, port)
    url = f"redis://127.0.0.1:{port}/0"
    stack_env = {**os.environ, "REDIS_URL": url, "WHATSAPP_APP_SECRET": APP_SECRET, "PORT": str(_free_port()),
                 "WEB_CONCURRENCY": "1", "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
                 # RQ's workers quit when Redis goes and the pool starts new ones: what the old ones had
                 # read is claimed once idle this long (60 s by default: the load here is shorter)
                 "WAPULSE_STALE_AFTER_MS": "2000"}
    logs = tmp_path / "web.log", tmp_path / "worker.log"  # files: a pipe nobody reads would fill and stop them
    web, worker = (subprocess.Popen([sys.executable, "-m", "wapulse.cli", *command], env=stack_env, cwd=ROOT,
                                    stdout=subprocess.DEVNULL, stderr=log.open("w"), start_new_session=True)
                   for command, log in zip((["web"], ["worker", "--processes", "2"]), logs))
    webhook = f"http://127.0.0.1:{stack_env['PORT']}"
    answers: list[int] = []
    try:
        wait_until_served(webhook, web)
        bodies = numbered_messages(BODIES)
        for number, body in enumerate(bodies):
            if number == BODIES // 3:
                redis_server.send_signal(signal.SIGKILL)
                redis_server.wait()
                restarted: list[subprocess.Popen] = []
                restart = threading.Timer(2.0, lambda: restarted.append(start_redis(folder, port)))
                restart.start()  # two seconds without Redis, while this goes on posting
            post_until_acknowledged(f"{webhook}/webhook", body, answers)
            time.sleep(0.04)  # a steady 20 or so bodies a second, before, during and after
        restart.join()
        redis_server = restarted[0]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (inbox.backlog(Redis.from_url(url)) or event_count(engine) < BODIES):
            time.sleep(0.25)
        assert worker.poll() is None, logs[1].read_text()[-2000:]  # the workers outlived Redis's restart
        assert event_count(engine) == BODIES  # every acknowledged body, once
        assert inbox.backlog(Redis.from_url(url)) == 0
        assert 503 in answers and 500 not in answers and set(answers) <= {200, 503, 0}
    finally:
        for group in (web, worker):  # with their children: a pool's worker left behind would drain the next test's
            os.killpg(group.pid, signal.SIGKILL)
            group.wait(timeout=30)
        redis_server.kill()
        redis_server.wait(timeout=30)


@pytest.mark.fault("the database refusing connections")
def test_a_database_that_refuses_connections_keeps_the_bodies_waiting_then_drains_them(env, engine, redis, drain,
                                                                                       monkeypatch):
    bodies = numbered_messages(5)
    for body in bodies:
        inbox.hand_off(redis, body)
    monkeypatch.setenv("DATABASE_URL", f"postgresql+psycopg://nobody@127.0.0.1:{_free_port()}/refused")
    reread_environment()
    with pytest.raises(RuntimeError, match="a drain job failed.*OperationalError"):
        drain()
    assert inbox.backlog(redis) == 5  # not acknowledged, not dead-lettered: waiting
    monkeypatch.setenv("DATABASE_URL", str(engine.url.render_as_string(hide_password=False)))
    reread_environment()
    process_until_drained(redis, timeout_s=10)  # the process that read them takes them again at once, not in 60 s
    assert inbox.backlog(redis) == 0 and event_count(engine) == 5
