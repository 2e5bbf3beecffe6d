"""The sweep: tier changes that the passage of time alone makes, for the customers whose
`next_tier_at` has come. Its cost follows the number of customers crossing a threshold: an index
range scan finds them, and the columns hold every fact a tier needs (no state to decode).
Callers hold `store.db.write_transaction`; the due customers' rows are locked, and those another
transaction is writing are skipped (a batch writing them moves their tiers itself), so two sweeps
at once share the work and a sweep never waits on a batch. Each row it moves gets a new revision:
a batch that read the customer before writes nothing over it and plans them again."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, insert, select, update

from scoring.tiers import Tier, TierFacts, TierRules, TierTrack
from store.history import rows_of, tier_changes, tier_columns
from store.models import Customer

customers = Customer.__table__


@dataclass(frozen=True, slots=True)
class SweepResult:
    customers: list[int]  # those moved on (each had a threshold due)
    changes: int


def sweep(connection: Connection, rules: TierRules, now: int) -> SweepResult:
    due = connection.execute(
        select(
            customers.c.id, customers.c.tier, customers.c.tier_since, customers.c.interactions,
            customers.c.last_inbound_at, customers.c.unreachable,
        ).where(customers.c.next_tier_at <= now).order_by(customers.c.id).with_for_update(key_share=True, skip_locked=True)
    ).all()
    updates, history = [], []
    for row in due:
        facts = TierFacts(row.interactions, row.last_inbound_at, row.unreachable)
        track = TierTrack(Tier(row.tier) if row.tier else None, row.tier_since)
        history += rows_of(row.id, track.advance(facts, now, rules, inclusive=True))
        updates.append({"customer_id": row.id, **tier_columns(track, facts, rules)})
    if updates:
        connection.execute(
            update(customers)
            .where(customers.c.id == bindparam("customer_id"))
            .values(tier=bindparam("tier"), tier_since=bindparam("tier_since"),
                    next_tier_at=bindparam("next_tier_at"), revision=customers.c.revision + 1),
            updates,
        )
    if history:
        connection.execute(insert(tier_changes), history)
    return SweepResult([row.id for row in due], len(history))
