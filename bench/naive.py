"""The naive design the worker benchmark compares with: one RQ job per webhook body, run by
RQ's default forking worker, doing the same parse and write as a wapulse batch of one."""

from __future__ import annotations

import hashlib
import time

from store.batch import Delivery
from workers import inbox
from workers.ingest import commit_deliveries, parse_items
from workers.context import installed


def process_body(number: int) -> None:
    context = installed()
    redis = context.redis
    redis.set("bench:naive:first", time.time(), nx=True)
    body = redis.get(f"bench:naive:{number}")
    received_at_ms = int(time.time() * 1000)
    delivery = Delivery(
        delivery_id=f"naive-{number}", received_at_ms=received_at_ms, sha256=hashlib.sha256(body).hexdigest(),
        body=body, valid_json=True, items=parse_items(body, received_at_ms // 1000, f"naive body {number}", context.settings.signal_matcher),
    )
    result = commit_deliveries(context, [delivery], None)
    redis.hincrby(inbox.STATS, "events", result.events)
    redis.set("bench:naive:last", time.time())
