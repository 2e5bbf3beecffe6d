"""The sweep: tier changes that the passage of time alone makes, for the customers whose
`next_tier_at` has come. Its cost follows the number of customers crossing a threshold: an index
range scan finds them, and the columns hold every fact a tier needs (no state to decode).
Callers hold `store.db.write_transaction`, so two sweeps at once run one after the other and the
second finds nothing left to do."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, insert, select, update

from scoring.tiers import Tier, TierFacts, TierRules, TierTrack
from store.history import rows_of, tier_changes, tier_columns
from store.models import Customer

customers = Customer.__table__


@dataclass(frozen=True, slots=True)
class SweepResult:
    customers: int
    changes: int


def sweep(connection: Connection, rules: TierRules, now: int) -> SweepResult:
    due = connection.execute(
        select(
            customers.c.id, customers.c.tier, customers.c.tier_since, customers.c.interactions,
            customers.c.last_inbound_at, customers.c.unreachable,
        ).where(customers.c.next_tier_at <= now)
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
                    next_tier_at=bindparam("next_tier_at")),
            updates,
        )
    if history:
        connection.execute(insert(tier_changes), history)
    return SweepResult(len(due), len(history))
