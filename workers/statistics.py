"""The statistics PostgreSQL plans the worker's lookups with, kept when autovacuum does not.

Every batch looks up aliases, events and bodies by key among a few hundred values. With no
statistics, PostgreSQL takes a fast-growing table for a tiny one and scans it (measured: an
alias lookup 2.3 ms at 8,000 rows and growing with the table, 0.5 ms after ANALYZE), so a server
with autovacuum off slows down as the store grows. `rq cron` runs this every 15 s; it analyzes
only the tables that changed by a tenth since their last analysis, as autovacuum would, and does
nothing when autovacuum is on or the store is SQLite (whose lookups do not depend on statistics).
"""

from __future__ import annotations

import logging

from store.db import analyze_changed_tables
from workers.context import Context

log = logging.getLogger(__name__)


def keep_statistics(context: Context) -> list[str]:
    """Returns the tables analyzed."""
    analyzed = analyze_changed_tables(context.engine)
    if analyzed:
        log.info("analyzed %s (autovacuum is off)", ", ".join(analyzed))
    return analyzed
