"""What operators watch, in Prometheus's text format (`GET /metrics`, `wapulse metrics`).

Counters and histograms are counted by the process where things happen (granian's workers for
acknowledgements, RQ's for batches, reminders and sweeps) in prometheus_client's multiprocess
mode: every process of a host writes its values to files in one folder, and a scrape adds them
up. The folder is PROMETHEUS_MULTIPROC_DIR, default `var/metrics` of the working directory; it
must be named before prometheus_client is imported, hence the first lines here, and emptied
when the whole stack starts (`wapulse up` does). What every host shares, the inbox in Redis, is
read at scrape time instead.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(Path("var/metrics").resolve()))
Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest  # noqa: E402
from prometheus_client.core import GaugeMetricFamily  # noqa: E402
from prometheus_client.multiprocess import MultiProcessCollector  # noqa: E402
from redis import Redis  # noqa: E402
from redis.exceptions import RedisError  # noqa: E402

from workers import inbox  # noqa: E402

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

ACKNOWLEDGED = Counter("wapulse_webhook_answers", "Meta's POSTs to /webhook, by the status answered", ["code"])
BATCH_BODIES = Histogram("wapulse_batch_bodies", "Bodies per committed batch",
                         buckets=(1, 5, 10, 25, 50, 100, 200, 300, 500, 1000))
BATCH_COMMIT = Histogram("wapulse_batch_commit_seconds", "The write transaction of a batch, from begin to commit",
                         buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
EVENTS = Counter("wapulse_events_committed", "Events committed, by kind", ["kind"])
DEAD_LETTERS = Counter("wapulse_dead_letters", "Bodies kept as dead letters (not JSON, or failing in the worker)")
REMINDERS = Counter("wapulse_reminder_deliveries", "Reminder delivery attempts, by rule and outcome "
                    "(sent; pending: to be tried again; failed)", ["rule", "outcome"])
SWEEP = Histogram("wapulse_sweep_seconds", "One sweep of the tiers time moved",
                  buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))


class InboxCollector:
    """The inbox as every host sees it: how many bodies wait, and for how long the oldest has."""

    def __init__(self, redis: Redis):
        self._redis = redis

    def collect(self):
        depth = GaugeMetricFamily("wapulse_inbox_depth", "Bodies acknowledged and not yet committed")
        oldest = GaugeMetricFamily("wapulse_inbox_oldest_age_seconds",
                                   "Age of the oldest body acknowledged and not yet committed (0: none waits)")
        up = GaugeMetricFamily("wapulse_redis_up", "Whether Redis answered this scrape")
        try:
            waiting, age = inbox.backlog(self._redis), oldest_waiting_s(self._redis)
        except RedisError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        depth.add_metric([], waiting)
        oldest.add_metric([], age)
        yield from (up, depth, oldest)


def oldest_waiting_s(redis: Redis) -> float:
    """Seconds since the oldest body still in the inbox was acknowledged (0 when none waits)."""
    first = redis.xrange(inbox.INBOX, count=1)
    if not first:
        return 0.0
    entry_id = first[0][0].decode() if isinstance(first[0][0], bytes) else first[0][0]
    return max(0.0, time.time() - int(entry_id.partition("-")[0]) / 1000)


def registry(redis: Redis) -> CollectorRegistry:
    """Every process's counters on this host, and the inbox."""
    collected = CollectorRegistry()
    MultiProcessCollector(collected)
    collected.register(InboxCollector(redis))
    return collected


def exposition(redis: Redis) -> bytes:
    return generate_latest(registry(redis))


def clear_folder() -> None:
    """Forget the values of an earlier run's processes: for the start of the whole stack only
    (a process still running would keep counting into a file no longer read)."""
    folder = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    for stale in folder.glob("*.db"):
        stale.unlink(missing_ok=True)
