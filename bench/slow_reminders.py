"""Ingest throughput while every rep's endpoint misbehaves: events a second committed by the
ingest workers (`wapulse worker --processes 2`, as the Procfile runs them) while the reminders
worker (`wapulse worker --queue reminders`) sends to endpoints that answer at once (the baseline,
measured in the same run), never answer, trickle their answer a byte at a time, reset the
connection or answer 500; on SQLite and PostgreSQL.

    python -m bench.slow_reminders [--customers 300] [--bodies 20000] [--limit 300]

First `--customers` customers each write six questions within an hour, so each turns hot and
leaves a question unanswered: two reminders each, which start going out to the endpoint. Then a
backlog of `--bodies` seeded bodies (bench/bodies.py) is handed off, and the rate is that
backlog's events over the time to commit them (or what was committed in `--limit` seconds).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from bench.bodies import DISPLAY, PHONE_NUMBER_ID, WABA_ID, Corpus, make_corpus
from bench.common import (
    REDIS_URL, machine, postgres_available, print_table, procfile, redis, scratch_database, spawn, stop_group,
)
from bench.workers import events_committed, hand_off
from scoring.events import iso
from tests.peers import Peer, answer, hang, reset, trickle
from workers import inbox

T0 = 1_794_000_000
REPS = 20
BEHAVIOURS = {
    "answers 200 at once (baseline)": answer(200),
    "never answers": hang,
    "trickles a byte every 0.5 s": trickle(every_s=0.5),
    "resets the connection": reset,
    "answers 500": answer(500),
}


def corpus(customers: int, messages: int) -> list[bytes]:
    """Each customer's `messages` questions, a minute apart, one body each."""
    bodies = []
    for n in range(customers):
        wa_id = f"3460{n:07d}"
        for m in range(messages):
            value = {"messaging_product": "whatsapp",
                     "metadata": {"display_phone_number": DISPLAY, "phone_number_id": PHONE_NUMBER_ID},
                     "contacts": [{"profile": {"name": f"Customer {n}"}, "wa_id": wa_id}],
                     "messages": [{"from": wa_id, "id": f"wamid.slow{n:06d}{m:02d}", "timestamp": str(T0 + m * 60),
                                   "type": "text", "text": {"body": "What is the price for 500 pieces?"}}]}
            bodies.append(json.dumps({"object": "whatsapp_business_account",
                                      "entry": [{"id": WABA_ID, "changes": [{"value": value, "field": "messages"}]}]},
                                     separators=(",", ":")).encode())
    return bodies


def config_file(folder: Path, url: str) -> Path:
    path = folder / f"wapulse-{time.monotonic_ns()}.toml"
    reps = "".join(f'[[reps]]\nid = "rep{n}"\nchannels = [{{ type = "webhook", url = "{url}", secret = "s" }}]\n\n'
                   for n in range(REPS))
    turn = ", ".join(f'"rep{n}"' for n in range(REPS))
    path.write_text(f"{reps}[owners]\ndefault = [{turn}]\n")
    return path


def run(reminding: list[bytes], backlog: Corpus, peer: Peer, folder: Path, backend: str, limit_s: float) -> tuple:
    """The backlog's events a second, and the sends the endpoint saw and held at once meanwhile."""
    connection = redis()
    with scratch_database(backend, folder) as url, open(folder / "workers.log", "ab") as log:
        env = {"DATABASE_URL": url, "REDIS_URL": REDIS_URL, "WAPULSE_NOW": iso(T0 + 3600),
               "WAPULSE_CONFIG": str(config_file(folder, peer.url))}
        hand_off(connection, reminding)
        inbox.ensure_group(connection)
        inbox.enqueue_drain(connection)
        processes = [spawn(procfile()[name], env, stderr=log, group=True) for name in ("reminders", "worker")]
        try:
            wait_until(lambda: events_committed(connection) >= len(reminding) and peer.accepted > 0, 120)
            before, seen_before = events_committed(connection), peer.accepted
            started = time.monotonic()
            hand_off(connection, backlog.bodies)
            inbox.request_drain_if_backlog(connection)
            inbox.enqueue_drain(connection)  # one for each ingest process
            done = wait_until(lambda: events_committed(connection) - before >= backlog.updates, limit_s)
            elapsed = time.monotonic() - started
            committed = events_committed(connection) - before
            return committed / elapsed, committed, done, peer.accepted - seen_before, peer.most_open
        finally:
            for process in processes:
                stop_group(process)


def wait_until(condition, limit_s: float) -> bool:
    deadline = time.monotonic() + limit_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--bodies", type=int, default=20_000)
    parser.add_argument("--limit", type=float, default=300, help="seconds to wait for the backlog")
    args = parser.parse_args()
    reminding, backlog = corpus(args.customers, 6), make_corpus(args.bodies)
    print(f"machine: {machine()}")
    print(f"{args.customers} customers owed 2 reminders each, {REPS} reps with a webhook each (deadline 15 s a send, "
          f"8 in flight); backlog: {len(backlog.bodies):,} bodies, {backlog.updates:,} events")
    rows = []
    backends = ["sqlite"] + (["postgresql"] if postgres_available() else [])
    with tempfile.TemporaryDirectory() as folder:
        for backend in backends:
            baseline = None
            for name, behave in BEHAVIOURS.items():
                peer = Peer(behave)
                try:
                    rate, committed, done, seen, most = run(reminding, backlog, peer, Path(folder), backend, args.limit)
                finally:
                    peer.close()
                baseline = baseline or rate
                rows.append([backend, name, f"{rate:,.0f}", f"{rate / baseline:.2f}",
                             f"{committed:,}" + ("" if done else f" (limit {args.limit:.0f} s)"), seen, most])
    print_table("ingest of the backlog while reps' endpoints misbehave",
                ["database", "endpoint", "events/s", "vs baseline", "events committed", "sends meanwhile", "most at once"], rows)


if __name__ == "__main__":
    main()
