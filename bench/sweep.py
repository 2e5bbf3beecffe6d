"""The sweep over 100,000 and 1,000,000 customers, when 1% cross a threshold and when none do,
against the naive sweep measured in the same run: read every customer and classify each.

    python -m bench.sweep [--sizes 100000,1000000]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from sqlalchemy import insert, select, text

from bench.common import machine, postgres_available, print_table, scratch_database
from scoring.tiers import DAY, Tier, TierFacts, TierRules, classify
from store.db import engine_for, write_transaction
from store.models import Customer
from store.sweep import sweep

NOW = 1_795_000_000
RULES = TierRules()
customers = Customer.__table__


def populate(url: str, count: int, crossing: int) -> None:
    """`count` warm customers (two interactions); `crossing` of them went quiet 30 days ago, the
    others wrote within the last 20 days."""
    rng = random.Random(count)
    rows = []
    for n in range(count):
        last = NOW - 30 * DAY - rng.randint(1, 3600) if n < crossing else NOW - rng.randint(1, 20 * DAY)
        rows.append({
            "key": f"4915{n:09d}", "wa_id": f"4915{n:09d}", "interactions": 2, "last_inbound_at": last,
            "first_seen_at": last - DAY, "tier": Tier.WARM.value, "tier_since": last, "next_tier_at": last + 30 * DAY,
            "opted_out": False, "unreachable": False, "state": {},
        })
    rng.shuffle(rows)
    engine = engine_for(url)
    with engine.begin() as connection:
        for start in range(0, count, 50_000):
            connection.execute(insert(customers), rows[start:start + 50_000])
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("ANALYZE customer"))  # as autovacuum would after such a load


def timed_sweep(url: str) -> tuple[float, int]:
    started = time.perf_counter()
    with write_transaction(engine_for(url)) as connection:
        result = sweep(connection, RULES, NOW)
    return time.perf_counter() - started, result.changes


def naive_sweep(url: str) -> tuple[float, int]:
    """Every customer read and classified; the ones whose tier changed would then be written."""
    started = time.perf_counter()
    changed = 0
    with engine_for(url).connect() as connection:
        query = select(customers.c.id, customers.c.tier, customers.c.interactions, customers.c.last_inbound_at,
                       customers.c.unreachable)
        for row in connection.execute(query):
            facts = TierFacts(row.interactions, row.last_inbound_at, row.unreachable)
            changed += classify(facts, NOW, RULES).value != row.tier
    return time.perf_counter() - started, changed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    print(f"machine: {machine()}")
    backends = ["sqlite"] + (["postgresql"] if postgres_available() else [])
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for backend in backends:
            for size in sizes:
                for share in (0.01, 0.0):
                    crossing = int(size * share)
                    with scratch_database(backend, Path(folder)) as url:
                        populate(url, size, crossing)
                        naive_s, naive_changes = naive_sweep(url)
                        ours_s, changes = timed_sweep(url)
                        engine_for(url).dispose()
                    assert changes == naive_changes == crossing, (changes, naive_changes, crossing)
                    rows.append([backend, f"{size:,}", f"{crossing:,}", f"{ours_s * 1000:,.1f}",
                                 f"{naive_s * 1000:,.0f}", f"{naive_s / ours_s:,.0f}x"])
    print_table("sweep (ms)", ["database", "customers", "crossing", "wapulse", "naive full scan", "ratio"], rows)


if __name__ == "__main__":
    main()
