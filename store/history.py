"""Tier columns and tier history rows, as events, merges, the sweep and rebuilds move customers.

A customer's history is derived from their events and the clock. Folding forward appends to it;
refolding (an event older than the last one applied, a merge) re-derives part or all of it
(`scoring.planner` decides which and with what causes), and the batch replaces those rows.
"""

from __future__ import annotations

from typing import Iterable

from scoring.tiers import TierChange, TierFacts, TierRules, TierTrack
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


def rows_of(customer_id: int, changes: Iterable[TierChange]) -> list[dict]:
    """History rows for `changes`, with the causes they carry."""
    return [
        {
            "customer_id": customer_id,
            "from_tier": change.from_tier.value if change.from_tier else None,
            "to_tier": change.to_tier.value,
            "at": change.at,
            "cause": change.cause.value,
        }
        for change in changes
    ]
