"""How long `[retention] events_days` takes to retire half a store's events, against the least
deleting them could cost: one plain DELETE of the same events, on a copy of the same store, in
the same run.

    python -m bench.retention [--customers 20000] [--events 400000] [--backend postgres|sqlite|both]

The store is bench.report's generated half year (200 days); events older than 100 days are
retired. Retiring also folds each customer's old events into their floor and adds their messages
to the report's day counts, a few hundred customers per transaction; the baseline does neither.
Both run as fresh processes, so their time includes start-up.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from bench.common import backends_to_measure, machine, print_table, scratch_database, wapulse
from bench.report import COLUMNS, DAY, NOW, fill, generate, timed
from scoring.events import iso

EVENTS_DAYS = 100
BASELINE = """
import sys
from sqlalchemy import text
from store import db
with db.make_engine(sys.argv[1]).begin() as connection:
    connection.execute(text("DELETE FROM event WHERE at <= :through"), {"through": int(sys.argv[2])})
"""


def measure(backend: str, customers: int, events: int, folder: Path) -> list[list]:
    tables = dict(zip(COLUMNS, generate(customers, events)))
    config = folder / "retention.toml"
    config.write_text(f"[retention]\nevents_days = {EVENTS_DAYS}\n")
    through = NOW - EVENTS_DAYS * DAY - 1
    retired = sum(1 for row in tables["event"] if row[5] <= through)
    print(f"{backend}: {len(tables['customer']):,} customers, {len(tables['event']):,} events, "
          f"{retired:,} of them at or before the limit", flush=True)
    env = {"WAPULSE_NOW": iso(NOW), "WAPULSE_CONFIG": str(config), "WHATSAPP_APP_SECRET": "bench",
           "WHATSAPP_VERIFY_TOKEN": "bench"}
    results = {}
    for name, args in (("baseline: one DELETE", lambda url: [sys.executable, "-c", BASELINE, url, str(through)]),
                       ("wapulse retention", lambda url: wapulse("retention"))):
        with scratch_database(backend, folder) as url:
            fill(url, tables)
            results[name] = timed(args(url), {**env, "DATABASE_URL": url})
    base_s = results["baseline: one DELETE"][0]
    return [[backend, name, f"{seconds:.2f}", f"{seconds / base_s:.2f}", f"{retired / seconds:,.0f}", f"{mib:.0f}"]
            for name, (seconds, mib) in results.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--events", type=int, default=400_000)
    parser.add_argument("--backend", choices=["postgres", "sqlite", "both"], default="both")
    options = parser.parse_args()
    print(f"machine: {machine()}")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for backend in backends_to_measure(options.backend):
            rows += measure(backend, options.customers, options.events, Path(folder))
    print_table(f"Retiring the events older than {EVENTS_DAYS} days", ["backend", "run", "seconds", "x baseline",
                                                                        "events/s", "peak MiB"], rows)


if __name__ == "__main__":
    main()
