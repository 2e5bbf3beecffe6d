"""What RQ runs: each job takes its process's context (`workers.context.installed`) and calls the
use case, which has its one home in the module named after it. Jobs take no arguments, so no body,
number or name ever sits in Redis as job data."""

from __future__ import annotations

from workers import figures, ingest, reminders, retention, statistics, sweep
from workers.context import installed


def drain_inbox() -> dict:
    """Enqueued when bodies are handed off (`workers.inbox.DRAIN_JOB`)."""
    return ingest.drain_inbox(installed())


def recover_inbox() -> bool:
    """Cron, every minute: a drain for bodies that wait with no job to take them."""
    return ingest.recover_inbox(installed())


def sweep_tiers() -> dict:
    """Cron, every minute: the tiers that time alone moved."""
    return sweep.sweep_tiers(installed())


def deliver_due() -> dict:
    """Enqueued when reminders are owed (`workers.reminders.DELIVERY_JOB`), and cron every minute."""
    return reminders.deliver_due(installed())


def refresh_figures() -> dict:
    """Cron, every minute: the figure base and stale sort keys."""
    return figures.refresh_figures(installed())


def apply_retention() -> dict:
    """Cron, every day: what `[retention]` no longer keeps."""
    return retention.apply_retention(installed())


def keep_statistics() -> list[str]:
    """Cron, every 15 s: ANALYZE where autovacuum does not."""
    return statistics.keep_statistics(installed())
