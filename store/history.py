"""Tier columns and tier history rows, as events, merges, the sweep and rebuilds move customers.

A customer's history is derived from their events and the clock. Folding forward appends to it;
refolding (an event older than the last one applied, a merge) re-derives it whole, and a re-derived
change already on record keeps the cause it was recorded with, so causes stay what was seen then.
"""

from __future__ import annotations

from typing import Iterable

from sqlalchemy import Connection, delete, select

from scoring.tiers import Cause, Tier, TierChange, TierFacts, TierRules, TierTrack
from store.db import in_chunks
from store.models import TierChangeRow

tier_changes = TierChangeRow.__table__


def tier_columns(track: TierTrack, facts: TierFacts, rules: TierRules) -> dict:
    """The customer columns that hold the tier and what the sweep needs to move it."""
    return {
        "tier": track.tier.value if track.tier else None,
        "tier_since": track.since,
        "next_tier_at": track.next_change_at(facts, rules),
        "interactions": facts.interactions,
    }


def rows_of(customer_id: int, changes: Iterable[TierChange], causes: dict | None = None,
            new_cause: Cause | None = None) -> list[dict]:
    """History rows for `changes`; a change found in `causes` (by (to, at)) keeps that cause, any
    other takes `new_cause` when given, else its own."""
    causes = causes or {}
    return [
        {
            "customer_id": customer_id,
            "from_tier": change.from_tier.value if change.from_tier else None,
            "to_tier": change.to_tier.value,
            "at": change.at,
            "cause": causes.get((change.to_tier.value, change.at)) or (new_cause or change.cause).value,
        }
        for change in changes
    ]


def take_recorded(connection: Connection, customer_id: int, after: int | None = None) -> dict[tuple[str, int], str]:
    """Remove a customer's recorded history (after `after`, when given) before it is re-derived;
    returns (to, at) → cause of what was removed."""
    mine = [tier_changes.c.customer_id == customer_id, *([tier_changes.c.at > after] if after is not None else [])]
    recorded = {
        (row.to_tier, row.at): row.cause
        for row in connection.execute(select(tier_changes.c.to_tier, tier_changes.c.at, tier_changes.c.cause).where(*mine))
    }
    connection.execute(delete(tier_changes).where(*mine))
    return recorded


def rewind_time(connection: Connection, rewinds: dict[int, int]) -> dict[int, TierTrack]:
    """Forget the changes time made after each customer's instant (customer id → at), and return
    their tracks as they stood before them; two statements a chunk of customers.

    Used when an event at `at` comes after every event applied but before changes that time
    already made (the sweep ran, or a replay's now lies ahead): those changes were derived from
    the facts before the event, so they go, and time runs again after it. Every change after
    `at` is of time, since no event applied is later than `at`."""
    tracks, doomed = {customer_id: TierTrack() for customer_id in rewinds}, []
    ids = sorted(rewinds)
    for chunk in in_chunks(ids):
        recorded = connection.execute(
            select(tier_changes.c.id, tier_changes.c.customer_id, tier_changes.c.to_tier, tier_changes.c.at)
            .where(tier_changes.c.customer_id.in_(chunk))
            .order_by(tier_changes.c.at, tier_changes.c.id)
        )
        for row in recorded:
            if row.at > rewinds[row.customer_id]:
                doomed.append(row.id)
            else:
                tracks[row.customer_id] = TierTrack(Tier(row.to_tier), row.at)  # the last one standing wins
    for chunk in in_chunks(doomed):
        connection.execute(delete(tier_changes).where(tier_changes.c.id.in_(chunk)))
    return tracks
