"""The sweep: `rq cron` runs it every minute (workers/cron_config.py), `wapulse sweep` by hand."""

from __future__ import annotations

import logging

from store.db import retry_on_conflict, write_transaction
from store.sweep import SweepResult, sweep
from workers import metrics
from workers.context import Context
from workers.reminders import plan_settled_reminders, plan_within, request_delivery

log = logging.getLogger(__name__)


def sweep_tiers(context: Context) -> dict:
    """Move every customer whose next threshold has passed as of the context's now. Safe to run
    at any time and at once from several places."""
    config, now = context.settings, context.now_ts()

    def run() -> tuple[SweepResult, bool]:
        with metrics.SWEEP.time(), write_transaction(context.engine) as connection:
            result = sweep(connection, config.tier_rules, now)
            return result, plan_within(connection, config, now, result.customers)

    result, reminders_due = retry_on_conflict(run)
    if reminders_due:
        request_delivery(context.redis)
    plan_settled_reminders(context, from_inbox=True)  # the changes it made, and any a batch left waiting
    if result.changes:
        log.info("sweep: %d customers due, %d tier changes", len(result.customers), result.changes)
    return {"customers": len(result.customers), "changes": result.changes}
