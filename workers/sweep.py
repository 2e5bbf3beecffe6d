"""The sweep job: `rq cron` runs it every minute (workers/cron_config.py), `wapulse sweep` by hand."""

from __future__ import annotations

import logging

from store.db import engine_for, retry_on_conflict, write_transaction
from store.sweep import SweepResult, sweep
from workers.reminders import plan_settled_reminders, plan_within, request_delivery
from workers.runtime import redis_connection, settings

log = logging.getLogger(__name__)


def sweep_tiers(now: int | None = None) -> dict:
    """Move every customer whose next threshold has passed as of `now` (default: the system's
    now). Safe to run at any time and at once from several places."""
    config = settings()
    engine = engine_for(config.database_url)
    at = config.now_ts() if now is None else now

    def run() -> tuple[SweepResult, bool]:
        with write_transaction(engine) as connection:
            result = sweep(connection, config.tier_rules, at)
            return result, plan_within(connection, result.customers)

    result, reminders_due = retry_on_conflict(run)
    if reminders_due:
        request_delivery(redis_connection())
    plan_settled_reminders(redis_connection())  # the changes it made, and any a batch left waiting
    if result.changes:
        log.info("sweep: %d customers due, %d tier changes", len(result.customers), result.changes)
    return {"customers": len(result.customers), "changes": result.changes}
