"""Local services for `make run` and `make test`: a private Redis when none answers."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import urlparse

from redis import Redis
from redis.exceptions import RedisError

from workers.settings import ConfigError

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def redis_answers(url: str) -> bool:
    try:
        return bool(Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping())
    except RedisError:
        return False


def ensure_redis(url: str, home: Path = Path("var/redis")) -> str:
    """Make sure Redis answers at `url`, starting a private, persistent `redis-server` under
    `home` when the URL is local and nothing answers. Returns what it did, for the console."""
    if redis_answers(url):
        return f"Redis answers at {url}"
    parsed = urlparse(url)
    if parsed.hostname not in LOCAL_HOSTS:
        raise ConfigError(f"REDIS_URL={url}: nothing answers there, and it is not a local address to start one on")
    binary = shutil.which("redis-server") or _install_redis_server()
    home.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            binary, "--port", str(parsed.port or 6379), "--bind", "127.0.0.1", "--dir", str(home.resolve()),
            "--daemonize", "yes", "--appendonly", "yes", "--appendfsync", "everysec",
            "--pidfile", str((home / "redis.pid").resolve()), "--logfile", str((home / "redis.log").resolve()),
        ],
        check=True,
    )
    for _ in range(50):
        if redis_answers(url):
            return f"started a private redis-server at {url} (data in {home}/)"
        time.sleep(0.1)
    raise ConfigError(f"started redis-server but it does not answer at {url}: see {home}/redis.log")


def _install_redis_server() -> str:
    """Install Debian's redis-server when we may; otherwise say exactly how to get one."""
    apt = shutil.which("apt-get")
    if apt and os.geteuid() == 0:
        subprocess.run([apt, "update", "-qq"], check=False)
        subprocess.run([apt, "install", "-y", "-qq", "redis-server"], check=False)
        if binary := shutil.which("redis-server"):
            return binary
    raise ConfigError(
        "no Redis answers and redis-server is not installed: install it (`sudo apt-get install redis-server`, "
        "`brew install redis`) or point REDIS_URL at a running Redis"
    )
