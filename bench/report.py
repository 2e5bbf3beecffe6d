"""How long the activity report takes over 100,000 customers and 2 million events, against the
least any report could cost: the database handing over the rows the report reads, measured on the
same database in the same run.

    python -m bench.report [--customers 100000] [--events 2000000] [--backend postgres|sqlite|both]

The store is filled directly (COPY on PostgreSQL, executemany on SQLite) with a generated half
year: customers over 3 business numbers, 25 owners and 12 countries, each with a random level of
activity (most write rarely, a few every day), our messages with their delivery statuses and
campaign tags, and a tier history. Both the report and the baseline run as fresh processes, so
their time includes start-up and their peak resident memory is theirs alone.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import msgspec
from sqlalchemy import text

from bench.common import backends_to_measure, machine, print_table, scratch_database, wapulse
from scoring.events import iso
from store import db

DAY = 86_400
NOW = 1_790_000_000  # 2026-09-21, a Monday: the report covers the 90 days before it
SPAN_DAYS = 200  # the generated history: the period, the previous one and some before
NUMBERS = ["100000000000001", "100000000000002", "100000000000003"]
WABA = "100000000000009"
OWNERS = [f"rep{n:02d}" for n in range(25)]
PLACES = [("US", "America/New_York", "1201"), ("US", "America/Los_Angeles", "1415"), ("BR", "America/Sao_Paulo", "5511"),
          ("GB", "Europe/London", "4420"), ("DE", "Europe/Berlin", "4930"), ("NG", "Africa/Lagos", "2341"),
          ("IN", "Asia/Kolkata", "9198"), ("ID", "Asia/Jakarta", "6221"), ("AE", "Asia/Dubai", "9714"),
          ("MX", "America/Mexico_City", "5255"), ("AU", "Australia/Sydney", "6128"), ("VN", "Asia/Ho_Chi_Minh", "8428")]
SIGNALS = [(), (), (), ("question",), ("price_inquiry", "question"), ("product_inquiry",), ("order_intent",),
           ("order",), ("voice",), ("image",), ("sticker",), ("rapport",), ("reaction",), ("sample_request",)]
CAMPAIGNS = [None, None, "spring_promo", "restock_a", "restock_b"]
TIERS = ["hot", "warm", "cold", "dead"]
INBOUND_SHARE = 0.6  # of the events, messages from customers; the rest are statuses of ours (2 per message)


def generate(customers: int, events: int, seed: int = 7):
    """Rows for the customer, event, outbound_message and tier_change tables."""
    rng = random.Random(seed)
    inbound_per_customer = events * INBOUND_SHARE / customers
    outbound_per_customer = events * (1 - INBOUND_SHARE) / 2 / customers
    start = NOW - SPAN_DAYS * DAY
    customer_rows, event_rows, outbound_rows, tier_rows = [], [], [], []
    for cid in range(1, customers + 1):
        country, zone, prefix = PLACES[cid % len(PLACES)]
        wa_id = f"{prefix}{cid:08d}"
        number = NUMBERS[cid % len(NUMBERS)]
        customer_rows.append((cid, wa_id, wa_id, f"Customer {cid}", country, zone, number, OWNERS[cid % len(OWNERS)],
                              start, TIERS[cid % 4], "{}", False, False, 0))
        activity = rng.expovariate(1.0)  # most customers quiet, a few very busy
        last_active = NOW - int(rng.random() ** 2 * SPAN_DAYS * DAY)  # some went quiet long ago
        for n in range(round(rng.expovariate(1 / (inbound_per_customer * activity))) if activity else 0):
            at = rng.randrange(start, last_active)
            message_id = f"wamid.c{cid}x{n}"
            signals = rng.choice(SIGNALS)
            event_rows.append((f"m:{message_id}", cid, number, "message", "text", at,
                               record({"mid": message_id, "waba": WABA} | ({"sig": list(signals)} if signals else {}))))
        for n in range(round(rng.expovariate(1 / outbound_per_customer))):
            at = rng.randrange(start, NOW)
            message_id = f"wamid.b{cid}x{n}"
            rank = rng.choice((1, 2, 2, 3, 3, 3))
            failed = rng.random() < 0.03
            outbound_rows.append((message_id, cid, at, rank, failed, 131026 if failed else None, rng.choice(CAMPAIGNS),
                                  number))
            for step, status in enumerate(("sent", "delivered")):
                event_rows.append((f"s:{message_id}:{status}", cid, number, "status", status, at + step * 30,
                                   record({"mid": message_id, "waba": WABA})))
        at = start
        while (at := at + rng.randrange(5 * DAY, 60 * DAY)) < NOW:
            tier_rows.append((cid, None, rng.choice(TIERS), at, "event"))
    return customer_rows, event_rows, outbound_rows, tier_rows


COLUMNS = {
    "customer": "id, key, wa_id, name, country, timezone, phone_number_id, owner, first_seen_at, tier, state, opted_out, "
                "unreachable, interactions",
    "event": "key, customer_id, phone_number_id, kind, type, at, data",
    "outbound_message": "message_id, customer_id, at, rank, failed, error_code, campaign, phone_number_id",
    "tier_change": "customer_id, from_tier, to_tier, at, cause",
}


def fill(url: str, tables: dict[str, list[tuple]]) -> None:
    engine = db.make_engine(url)
    with engine.begin() as connection:
        raw = connection.connection.dbapi_connection
        for table, rows in tables.items():
            if engine.dialect.name == "postgresql":
                with raw.cursor().copy(f"COPY {table} ({COLUMNS[table]}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                marks = ", ".join("?" * len(COLUMNS[table].split(",")))
                raw.cursor().executemany(f"INSERT INTO {table} ({COLUMNS[table]}) VALUES ({marks})", rows)
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("ANALYZE"))
    engine.dispose()


BASELINE = """
import sys
from sqlalchemy import text
from store import db
with db.make_engine(sys.argv[1]).connect() as connection:
    for query in ("SELECT id, key, name, country, timezone, owner, phone_number_id, wa_id FROM customer",
                  "SELECT customer_id, at, data, phone_number_id FROM event WHERE kind = 'message'",
                  "SELECT customer_id, at, rank, failed, error_code, campaign, phone_number_id FROM outbound_message",
                  "SELECT customer_id, to_tier, at FROM tier_change"):
        connection.execute(text(query)).fetchall()
"""
"""The baseline: one plain query per table the report reads, results fetched. The generated
history is shorter than what a report reads (its period, the one before and 90 days of lead-in),
so these are the same rows, read by a plain scan."""


def record(data: dict) -> str:
    """An event's data as the store writes it."""
    return msgspec.json.encode(data).decode()


MEASURED = """
import os, subprocess, sys, time
started = time.perf_counter()
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(child.pid, 0)
print(os.waitstatus_to_exitcode(status), time.perf_counter() - started, usage.ru_maxrss)
"""
"""Runs one process and prints its exit code, seconds and peak resident KiB. It stands between
the bench and the measured process because Linux starts a child's peak RSS at its parent's high
water mark (carried through fork and exec): measured straight from this process, which holds the
generated rows, every run would report the bench's own size."""


def timed(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Seconds and peak resident MiB of one process run to its end."""
    result = subprocess.run([sys.executable, "-c", MEASURED, *args], env={**os.environ, **env},
                            capture_output=True, text=True, check=False)
    code, seconds, kib = result.stdout.split()
    if result.returncode or int(code):
        sys.exit(f"{args[2:4]} failed with status {code}: {result.stderr[-2000:]}")
    return float(seconds), int(kib) / 1024


def measure(backend: str, customers: int, events: int, folder: Path, repeat: int) -> list[list]:
    tables = dict(zip(COLUMNS, generate(customers, events)))
    rows = []
    with scratch_database(backend, folder) as url:
        started = time.perf_counter()
        fill(url, tables)
        print(f"{backend}: {len(tables['customer']):,} customers, {len(tables['event']):,} events, "
              f"{len(tables['outbound_message']):,} messages of ours, {len(tables['tier_change']):,} tier changes "
              f"stored in {time.perf_counter() - started:.0f} s", flush=True)
        env = {"DATABASE_URL": url, "WAPULSE_NOW": iso(NOW), "WHATSAPP_APP_SECRET": "bench", "WHATSAPP_VERIFY_TOKEN": "bench"}
        runs = {
            "baseline: the rows, fetched": [sys.executable, "-c", BASELINE, url],
            "report, JSON": wapulse("report", "--format", "json", "-o", os.devnull),
            "report, JSON, no comparison": wapulse("report", "--format", "json", "--compare", "none", "-o", os.devnull),
            "report, HTML": wapulse("report", "--format", "html", "-o", os.devnull),
            "report, XLSX (and every customer)": wapulse("report", "--format", "xlsx", "-o", os.devnull),
        }
        results = {name: min(timed(args, env) for _ in range(repeat)) for name, args in runs.items()}
        base_s, base_mib = results["baseline: the rows, fetched"]
        for name, (seconds, mib) in results.items():
            rows.append([backend, name, f"{seconds:.2f}", f"{seconds / base_s:.2f}", f"{mib:.0f}", f"{mib / base_mib:.2f}"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--backend", choices=["postgres", "sqlite", "both"], default="both")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each; the fastest counts")
    options = parser.parse_args()
    backends = backends_to_measure(options.backend)
    print(f"machine: {machine()}")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for backend in backends:
            rows += measure(backend, options.customers, options.events, Path(folder), options.repeat)
    print_table("Report over the generated half year (period: the last 90 days)",
                ["backend", "run", "seconds", "x baseline", "peak MiB", "x baseline"], rows)


if __name__ == "__main__":
    main()
