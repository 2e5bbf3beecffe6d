"""The figures job (cron, every minute): keeps the base customers are ranked against and the
sort keys the desk orders them by, so that no page works either out.

Every BASE_EVERY_S it reads every customer and works the base out again (the RFM values, the
value model fitted by maximum likelihood: seconds at 100,000 customers, in a worker, not a page).
Every run, it works out the sort keys (churn risk, intent, expected orders) of up to
STALE_BATCH customers: those a batch wrote since (a batch marks them) first, then those whose keys
are older than KEYS_EVERY_S, since intent fades and churn risk grows with time alone.
"""

from __future__ import annotations

import logging

from scoring import figures
from scoring.customer import CustomerState
from store import figure_base
from store.figure_base import Base
from store.db import in_chunks, retry_on_conflict, write_transaction
from workers.context import Context

log = logging.getLogger(__name__)

BASE_EVERY_S = 1800
KEYS_EVERY_S = 6 * 3600
STALE_BATCH = 20_000


def refresh_figures(context: Context) -> dict:
    """The base when it is due, then the stale customers' sort keys."""
    config, engine, now = context.settings, context.engine, context.now_ts()
    with engine.connect() as connection:
        computed_at = figure_base.base_computed_at(connection)
    if computed_at is None or now - computed_at >= BASE_EVERY_S or computed_at > now:
        with engine.connect() as connection:
            base = Base.load(connection, now, config.figure_rules)
        with write_transaction(engine) as connection:
            figure_base.save_base(connection, base)
    with engine.connect() as connection:
        model = figure_base.load_model(connection)
        rows = figure_base.stale(connection, now, KEYS_EVERY_S, STALE_BATCH)
    keys = {row.id: figures.sort_keys(CustomerState.from_json(row.state), now, row.unreachable, model) for row in rows}
    for chunk in in_chunks(sorted(keys)):  # short transactions: ingestion waits on none for long
        retry_on_conflict(_write, engine, {customer_id: keys[customer_id] for customer_id in chunk})
    return {"customers": len(keys)}


def _write(engine, keys: dict[int, dict]) -> None:
    with write_transaction(engine) as connection:
        figure_base.set_sort_keys(connection, keys)
