"""`wapulse rebuild`: every event, customer, counter, signal, tier and tier change re-derived from
the raw archive, in one transaction, with the parser, keyword lists and tier rules of today.

Bodies are replayed in the order they were received, through the same write path as live
processing, so with unchanged rules the result is what live processing produced. A tier change
that was on record keeps the cause it was recorded with; one that only the rebuild finds (after
the thresholds or keyword lists changed, say) gets the cause `rebuild`. Workers wait for it
meanwhile (it writes alone); the webhook keeps acknowledging into the inbox.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, delete, func, select, text, update

from scoring.tiers import Cause
from store.batch import commit, prepare_items, raw_bodies
from store.db import in_chunks, write_transaction
from store.history import tier_changes
from store.models import (
    Customer, CustomerAlias, EventRow, OutboundMessageRow, Reminder, ReminderAction, ReminderDelivery,
)
from workers.context import Context
from workers.ingest import TRANSIENT_ERRORS, describe_error, parse_items
from workers.reminders import plan_settled_within, plan_within
from workers.settings import ConfigError, Settings

log = logging.getLogger(__name__)

CHUNK = 500  # archived bodies per read and per savepoint
DERIVED_TABLES = (tier_changes, OutboundMessageRow.__table__, EventRow.__table__, CustomerAlias.__table__,
                  Customer.__table__)
customers, aliases, reminders = Customer.__table__, CustomerAlias.__table__, Reminder.__table__
actions, deliveries = ReminderAction.__table__, ReminderDelivery.__table__


@dataclass
class RebuildResult:
    bodies: int = 0
    events: int = 0
    customers: int = 0
    tier_changes: int = 0
    failed_bodies: int = 0


def rebuild(context: Context, progress=None) -> RebuildResult:
    """Re-derive all state from the archive as of the context's now. `progress(n)` is told how
    many bodies each chunk held."""
    config, now = context.settings, context.now_ts()
    result = RebuildResult()
    with write_transaction(context.engine, exclusive=True) as connection:
        if connection.execute(select(customers.c.id).where(customers.c.floor.is_not(None)).limit(1)).first():
            raise ConfigError("wapulse rebuild cannot re-derive customers whose old events [retention] events_days "
                              "deleted: their counters and tiers start from a floor (the fold of those events) that "
                              "the archive cannot give back; nothing was changed")
        recorded = _recorded_causes(connection)
        _defer_reminders_key(connection)
        kept = _KeptByKey.read(connection)
        for table in DERIVED_TABLES:
            connection.execute(delete(table))
        last_id = 0
        while chunk := connection.execute(
            select(raw_bodies.c.id, raw_bodies.c.received_at, raw_bodies.c.body)
            .where(raw_bodies.c.id > last_id, raw_bodies.c.valid_json.is_(True))
            .order_by(raw_bodies.c.id)
            .limit(CHUNK)
        ).all():
            last_id = chunk[-1].id
            _replay_chunk(connection, chunk, config, now, result)
            if progress:
                progress(len(chunk))
        result.customers = connection.execute(select(func.count()).select_from(customers)).scalar_one()
        _restore_causes(connection, recorded)
        kept.restore(connection)
        every_customer = connection.execute(select(customers.c.id)).scalars().all()
        plan_within(connection, config, now, every_customer)  # as live processing would
        plan_settled_within(connection, config, now, None)  # cron sends what is due
    return result


def _replay_chunk(connection: Connection, chunk, config: Settings, now: int, result: RebuildResult) -> None:
    """One chunk under a savepoint; if it fails, body by body, keeping the failing ones as dead
    letters (as live processing does) and clearing the mark of those that now go through."""
    try:
        _replay_under_savepoint(connection, chunk, config, now, result)
        return
    except TRANSIENT_ERRORS:
        raise
    except Exception:
        pass
    for row in chunk:
        try:
            _replay_under_savepoint(connection, [row], config, now, result)
        except TRANSIENT_ERRORS:
            raise
        except Exception as error:
            log.error("archived body %d could not be processed (%s): kept as a dead letter", row.id, describe_error(error))
            _mark(connection, [row.id], describe_error(error))
            result.failed_bodies += 1


def _replay_under_savepoint(connection: Connection, rows, config: Settings, now: int, result: RebuildResult) -> None:
    rules = config.tier_rules
    with connection.begin_nested():
        archived = [
            (row.id, item)
            for row in rows
            for item in parse_items(row.body, row.received_at // 1000, f"archived body {row.id}", config.signal_matcher)
        ]
        batch = commit(connection, prepare_items(connection, archived, rules, now), rules, now)
        result.bodies += len(rows)
        result.events += batch.events
        result.tier_changes += batch.tier_changes
        _mark(connection, [row.id for row in rows], None)


def _mark(connection: Connection, ids: list[int], error: str | None) -> None:
    connection.execute(update(raw_bodies).where(raw_bodies.c.id.in_(ids)).values(error=error))


@dataclass
class _KeptByKey:
    """What people gave customers, which no webhook body holds: their owners and their follow-ups
    (reminders with their deliveries and actions). Kept by customer key across a rebuild, whose
    customers get new ids; follow-ups of a customer the archive no longer holds go with them."""

    owners: dict[str, str]
    reminder_keys: dict[str, str]  # reminder id -> customer key

    @classmethod
    def read(cls, connection: Connection) -> _KeptByKey:
        owners = dict(connection.execute(select(customers.c.key, customers.c.owner).where(customers.c.owner.is_not(None))).all())
        reminder_keys = dict(connection.execute(
            select(reminders.c.id, customers.c.key).join(customers, customers.c.id == reminders.c.customer_id)).all())
        # until they are pointed at the new rows, no reminder may seem to be a new customer's
        connection.execute(update(reminders).values(customer_id=-reminders.c.customer_id))
        return cls(owners, reminder_keys)

    def restore(self, connection: Connection) -> None:
        wanted = sorted(set(self.owners) | set(self.reminder_keys.values()))
        found: dict[str, int] = {}
        for chunk in in_chunks(wanted):
            found.update(connection.execute(select(aliases.c.value, aliases.c.customer_id).where(aliases.c.value.in_(chunk))).all())
            found.update(connection.execute(select(customers.c.key, customers.c.id).where(customers.c.key.in_(chunk))).all())
        owners = [{"customer_id": found[key], "kept_owner": owner} for key, owner in self.owners.items() if key in found]
        if owners:
            connection.execute(update(customers).where(customers.c.id == bindparam("customer_id"))
                               .values(owner=bindparam("kept_owner")), owners)
        pointed = [{"reminder": rid, "new_customer": found[key]} for rid, key in self.reminder_keys.items() if key in found]
        if pointed:
            connection.execute(update(reminders).where(reminders.c.id == bindparam("reminder"))
                               .values(customer_id=bindparam("new_customer")), pointed)
        gone = sorted(rid for rid, key in self.reminder_keys.items() if key not in found)
        for chunk in in_chunks(gone):
            for table in (actions, deliveries, reminders):
                connection.execute(delete(table).where(table.c.reminder_id.in_(chunk) if table is not reminders
                                                       else table.c.id.in_(chunk)))


def _defer_reminders_key(connection: Connection) -> None:
    """Let reminders point at customers that are gone until the transaction ends (see 0012)."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SET CONSTRAINTS ALL DEFERRED"))
    else:
        connection.exec_driver_sql("PRAGMA defer_foreign_keys = ON")


def _recorded_causes(connection: Connection) -> dict[tuple[str, str, int], str]:
    """(customer key, to tier, at) → cause of every tier change on record."""
    query = select(customers.c.key, tier_changes.c.to_tier, tier_changes.c.at, tier_changes.c.cause).join(
        customers, customers.c.id == tier_changes.c.customer_id
    )
    return {(row.key, row.to_tier, row.at): row.cause for row in connection.execute(query)}


def _restore_causes(connection: Connection, recorded: dict[tuple[str, str, int], str]) -> None:
    query = select(tier_changes.c.id, customers.c.key, tier_changes.c.to_tier, tier_changes.c.at, tier_changes.c.cause).join(
        customers, customers.c.id == tier_changes.c.customer_id
    )
    updates = []
    for row in connection.execute(query).all():
        cause = recorded.get((row.key, row.to_tier, row.at), Cause.REBUILD.value)
        if cause != row.cause:
            updates.append({"change_id": row.id, "new_cause": cause})
    if updates:
        connection.execute(
            update(tier_changes).where(tier_changes.c.id == bindparam("change_id")).values(cause=bindparam("new_cause")),
            updates,
        )
