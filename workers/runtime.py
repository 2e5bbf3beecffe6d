"""What a worker process builds once: its settings and its Redis connection."""

from __future__ import annotations

from functools import cache

from redis import Redis

from workers.settings import Settings


@cache
def settings() -> Settings:
    return Settings.from_env()


@cache
def redis_connection() -> Redis:
    return Redis.from_url(settings().redis_url)
