"""One bootstrap: what a use case needs from outside (settings, store, Redis, the clock), built
once by the process's entry point and passed in.

The CLI and the web app build their own and pass it down. RQ calls a job by its dotted name with
plain arguments only, so `workers.jobs` finds the context its process built (`installed`), which
is built from the environment at the first job.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING

from redis import Redis

from workers.settings import Settings

if TYPE_CHECKING:  # the web process loads the store only when a request needs it
    from sqlalchemy import Engine


@dataclass(frozen=True)
class Context:
    settings: Settings

    @classmethod
    def from_env(cls) -> Context:
        return cls(Settings.from_env().check())

    @cached_property
    def engine(self) -> Engine:
        from store.db import engine_for  # one pool per URL and process, whichever context asks

        return engine_for(self.settings.database_url)

    @cached_property
    def redis(self) -> Redis:
        return Redis.from_url(self.settings.redis_url)

    def now_ts(self) -> int:
        """Now as Unix seconds: the settings' fixed instant (WAPULSE_NOW, `--now`), else the clock."""
        return self.settings.now_ts()

    def as_of(self, now: datetime | None) -> Context:
        """The same context with time fixed at `now` (None: unchanged)."""
        return self if now is None else Context(replace(self.settings, now=now))


_installed: Context | None = None


def install(context: Context) -> Context:
    """Make `context` the one this process's jobs run with."""
    global _installed
    _installed = context
    return context


def installed() -> Context:
    """The context this process's jobs run with: the one installed, else one from the environment."""
    return _installed or install(Context.from_env())
