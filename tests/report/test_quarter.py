"""A quarter of webhook traffic, generated with known behaviour per customer, replayed through
`wapulse replay` and reported on: every checked figure is counted again here from the bodies
themselves, not from the store."""

from __future__ import annotations

import csv
import io
import json
import random
import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.wapulse.test_cli import run

NUMBER, SECOND = "106540352242922", "106540352242999"  # the second number belongs to another WABA
WABAS = {NUMBER: "102290129340398", SECOND: "102290129340399"}
DAY, HOUR = 86_400, 3600
START = int(datetime(2026, 7, 1, tzinfo=UTC).timestamp())  # the quarter reported on
END = int(datetime(2026, 10, 1, tzinfo=UTC).timestamp())
BEFORE = START - (END - START)  # the previous period, of equal length
PEOPLE = [  # country code, a number's local part, the time zone phonenumbers gives it (its tz names are the old ones)
    ("1", "2025550", "America/New_York"), ("49", "3012345", "Europe/Berlin"),
    ("91", "9812345", "Asia/Calcutta"), ("55", "11987650", "America/Sao_Paulo"),
]
QUARTER_OPTIONS = ("--from", "2026-07-01", "--to", "2026-09-30", "--now", "2026-10-01T00:00:00Z")
PASSIVE, QUESTION, PRICE = "Noted.", "Is it available?", "Please send the price list"


@dataclass
class Quarter:
    """The generated bodies and what they hold, counted as they are made."""

    bodies: list[dict] = field(default_factory=list)
    inbound: list[tuple[str, int, str]] = field(default_factory=list)  # wa_id, at, what
    ours: list[tuple[str, int, str, str | None]] = field(default_factory=list)  # wa_id, at, how far, failure code
    zones: dict[str, str] = field(default_factory=dict)
    dormant: dict[str, str] = field(default_factory=dict)  # the campaign tag that reached each one
    on_second: set[str] = field(default_factory=set)  # customers who deal with the second number only
    serial: int = 0

    def number_of(self, wa_id: str) -> str:
        return SECOND if wa_id in self.on_second else NUMBER

    def message(self, wa_id: str, at: int, what: str) -> None:
        self.serial += 1
        message = {"from": wa_id, "id": f"wamid.q{self.serial}", "timestamp": str(at)}
        if what == "order":
            message |= {"type": "order", "order": {"catalog_id": "1", "product_items": [
                {"product_retailer_id": "drum-20l", "quantity": 4, "item_price": 31.5, "currency": "USD"}]}}
        else:
            message |= {"type": "text", "text": {"body": what}}
        self.bodies.append(_body(wa_id, self.number_of(wa_id), {"messages": [message]}))
        self.inbound.append((wa_id, at, what))

    def send(self, wa_id: str, at: int, reached: str, campaign: str | None = None) -> None:
        """A message of ours as its statuses tell it: sent, then delivered and read, or failed."""
        self.serial += 1
        steps = {"sent": ["sent"], "delivered": ["sent", "delivered"], "read": ["sent", "delivered", "read"],
                 "unreachable": ["sent", "failed"]}[reached]
        for offset, status in enumerate(steps):
            entry = {"id": f"wamid.o{self.serial}", "status": status, "timestamp": str(at + offset * 20), "recipient_id": wa_id}
            if campaign:
                entry["biz_opaque_callback_data"] = campaign
            if status == "failed":
                entry["errors"] = [{"code": 131026, "title": "Message undeliverable"}]
            self.bodies.append(_body(wa_id, self.number_of(wa_id), {"statuses": [entry]}))
        self.ours.append((wa_id, at, reached, campaign))


def _body(wa_id: str, number: str, value: dict) -> dict:
    return {"object": "whatsapp_business_account", "entry": [{"id": WABAS[number], "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550783881", "phone_number_id": number},
        "contacts": [{"profile": {"name": f"Customer {wa_id[-3:]}"}, "wa_id": wa_id}], **value}}]}]}


def generate(seed: int = 11) -> Quarter:
    """40 customers in four countries: buyers who ask and order, chatters, customers who never
    answer, some we cannot reach, and dormant ones a campaign wakes up halfway through."""
    rng, quarter = random.Random(seed), Quarter()
    for n in range(40):
        code, local, zone = PEOPLE[n % len(PEOPLE)]
        wa_id = f"{code}{local}{n:03d}"
        quarter.zones[wa_id] = zone
        kind = ("buyer", "chatter", "silent", "unreachable", "dormant")[n % 5]
        if kind == "buyer" and n >= 20:
            quarter.on_second.add(wa_id)
        if kind == "dormant":  # wrote last in the spring, answers the autumn campaign
            quarter.message(wa_id, BEFORE - 40 * DAY + n * HOUR, QUESTION)
            sent_at = START + 45 * DAY + n * HOUR
            quarter.dormant[wa_id] = rng.choice(["promo_a", "promo_b"])
            quarter.send(wa_id, sent_at, "read", quarter.dormant[wa_id])
            if n % 2:
                quarter.message(wa_id, sent_at + 3 * HOUR, PRICE)
            continue
        for week in range(26):  # the previous period and this one
            at = BEFORE + week * 7 * DAY + rng.randrange(7 * DAY - 4 * HOUR)
            if kind in ("buyer", "chatter") and rng.random() < 0.6:
                quarter.message(wa_id, at, rng.choice([PASSIVE, QUESTION, PRICE] if kind == "buyer" else [PASSIVE, QUESTION]))
                quarter.send(wa_id, at + rng.choice([120, 900, 4 * HOUR]), rng.choice(["delivered", "read"]))
            elif kind == "silent" and week % 3 == 0:
                quarter.send(wa_id, at, "delivered", "promo_a")
            elif kind == "unreachable" and week % 6 == 0:
                quarter.send(wa_id, at, "unreachable")
        if kind == "buyer":
            quarter.message(wa_id, START + 60 * DAY + n * HOUR, "order")
    order = sorted(range(len(quarter.bodies)), key=lambda i: int(_instant(quarter.bodies[i])))
    quarter.bodies = [quarter.bodies[i] for i in order]
    return quarter


def _instant(body: dict) -> str:
    value = body["entry"][0]["changes"][0]["value"]
    return (value.get("messages") or value.get("statuses"))[0]["timestamp"]


def _replied(quarter: Quarter, start: int, end: int) -> set[str]:
    """Customers who wrote in [start, end) after our first message to them in it."""
    first = {}
    for c, at, _, _ in sorted(quarter.ours, key=lambda o: o[1]):
        if start <= at < end:
            first.setdefault(c, at)
    return {c for c, at, _ in quarter.inbound if start <= at < end and c in first and at > first[c]}


def _tier_at(quarter: Quarter, customer: str, instant: int) -> str:
    """The default rule (7/30/90 days, hot from 5 interactions) applied to the generated traffic."""
    if any(c == customer and how == "unreachable" and at < instant for c, at, how, _ in quarter.ours):
        return "dead"
    written = [at for c, at, _ in quarter.inbound if c == customer and at < instant]
    if not written:
        return "unengaged"
    silent = instant - max(written)
    if silent < 7 * DAY and len(written) >= 5:
        return "hot"
    return "warm" if silent < 30 * DAY else "cold" if silent < 90 * DAY else "dead"


@pytest.fixture
def replayed(env, tmp_path: Path) -> Quarter:
    quarter = generate()
    traffic = tmp_path / "quarter.jsonl"
    traffic.write_text("".join(json.dumps(body) + "\n" for body in quarter.bodies))
    run("replay", str(traffic), "--now", "2026-10-01T00:00:00Z")
    return quarter


def test_a_replayed_quarter_reports_what_its_traffic_holds(replayed: Quarter):
    report = _report()
    inbound = [(c, at, what) for c, at, what in replayed.inbound if START <= at < END]
    ours = [(c, at, reached, tag) for c, at, reached, tag in replayed.ours if START <= at < END]
    first_ours = {c: min(at for c2, at, _, _ in ours if c2 == c) for c, _, _, _ in ours}

    assert report["source"]["events"] == {"inbound": len(inbound), "outbound": len(ours)}
    assert report["source"]["customers"] == len({c for c, _, _ in inbound} | set(first_ours))
    assert report["source"]["numbers"] == [NUMBER, SECOND]
    assert report["source"]["wabas"] == {WABAS[NUMBER]: [NUMBER], WABAS[SECOND]: [SECOND]}
    assert report["comparison"]["customers"]["before"] == len(
        {c for c, at, _ in replayed.inbound if BEFORE <= at < START} | {c for c, at, _, _ in replayed.ours if BEFORE <= at < START})

    replied = _replied(replayed, START, END)
    assert (report["reply_rate"]["messaged"], report["reply_rate"]["replied"]) == (len(first_ours), len(replied))
    replied_before = _replied(replayed, BEFORE, START)
    messaged_before = {c for c, at, _, _ in replayed.ours if BEFORE <= at < START}
    assert report["comparison"]["reply_rate_points"] == round(
        (len(replied) / len(first_ours) - len(replied_before) / len(messaged_before)) * 100, 1)
    assert {tier: row["count"] for tier, row in report["segmentation"]["tiers"].items() if row["count"]} == Counter(
        _tier_at(replayed, c, END) for c in replayed.zones)
    delivered = [o for o in ours if o[2] in ("delivered", "read")]
    assert report["reply_rate"]["messages"]["sent"] == len(ours)
    assert report["reply_rate"]["messages"]["delivered"] == len(delivered)

    reached = {c for c, _, how, _ in delivered} - {c for c, _, how, _ in ours if how == "unreachable"}
    ordered = {c for c, _, what in inbound if what == "order"} & replied & reached
    funnel = report["funnel"]
    assert (funnel["reached"]["count"], funnel["replied"]["count"], funnel["ordered"]["count"]) == (
        len(reached), len(replied & reached), len(ordered))

    kinds = Counter(what for _, _, what in inbound)
    content = report["content"]
    assert content["passive_text"]["messages"] == kinds[PASSIVE]
    assert content["questions"]["messages"] == kinds[QUESTION]
    assert content["commerce"]["messages"] == kinds[PRICE] + kinds["order"]

    heatmap = Counter()
    for c, at, _ in inbound:
        local = datetime.fromtimestamp(at, ZoneInfo(replayed.zones[c]))
        heatmap[local.weekday(), local.hour] += 1
    assert {(d, h): n for d, row in enumerate(report["local_time"]["heatmap"]) for h, n in enumerate(row) if n} == heatmap

    assert sum(week["inbound"] for week in report["trend"]) == len(inbound)
    assert sum(week["outbound"] for week in report["trend"]) == len(ours)

    # cold or dead when the quarter began: silent for over 30 days, or unreachable (dead by rule)
    last_word = {c: at for c, at, _ in sorted(replayed.inbound, key=lambda m: m[1]) if at < START}
    dormant = ({c for c, at in last_word.items() if START - at > 30 * DAY}
               | {c for c, at, how, _ in replayed.ours if how == "unreachable" and at < START})
    assert set(replayed.dormant) <= dormant
    back = {c: min(at for c2, at, _ in inbound if c2 == c) for c, _, _ in inbound if c in dormant}
    reactivation = report["reactivation"]
    assert (reactivation["dormant_at_start"], reactivation["came_back"]) == (len(dormant), len(back))
    assert reactivation["time_to_come_back_median_s"] == 3 * HOUR
    last_tag = {}
    for c, at, _, tag in ours:  # the last message of ours in the quarter before a comeback
        if c in dormant and at < back.get(c, END):
            last_tag[c] = tag or "(no tag)"
    assert {tag: (row["messaged"], row["replied"]) for tag, row in reactivation["by_campaign"].items()} == {
        tag: (sum(1 for t in last_tag.values() if t == tag), sum(1 for c in back if last_tag.get(c) == tag))
        for tag in set(last_tag.values())}

def test_the_customer_rows_of_a_replayed_quarter(replayed: Quarter):
    rows = list(csv.DictReader(io.StringIO(run("report", *QUARTER_OPTIONS, "--format", "csv"))))
    written = Counter(c for c, at, _ in replayed.inbound if START <= at < END)
    assert {row["key"]: int(row["interactions"]) for row in rows} == {c: written[c] for c in replayed.zones}
    assert {row["time_zone"] for row in rows} == {zone for _, _, zone in PEOPLE}


def _report(*options: str) -> dict:
    return json.loads(run("report", *QUARTER_OPTIONS, "--format", "json", *options))


def test_rates_bands_speeds_and_plan_of_a_replayed_quarter(replayed: Quarter):
    report = _report()
    inbound = [(c, at, what) for c, at, what in replayed.inbound if START <= at < END]
    ours = [(c, at, how, tag) for c, at, how, tag in replayed.ours if START <= at < END]

    replied = _replied(replayed, START, END)
    by_tier = Counter(), Counter()
    for c in {c for c, _, _, _ in ours}:
        by_tier[0][_tier_at(replayed, c, START)] += 1
        by_tier[1][_tier_at(replayed, c, START)] += c in replied
    assert {t: (row["messaged"], row["replied"]) for t, row in report["reply_rate"]["by_tier"].items() if row["messaged"]} == {
        t: (by_tier[0][t], by_tier[1][t]) for t in by_tier[0]}

    readers = {c for c, _, how, _ in replayed.ours if how == "read"}
    delivered = [(c, how) for c, _, how, _ in ours if how in ("delivered", "read")]
    messages = report["reply_rate"]["messages"]
    assert (messages["read_rate_base"], messages["read"]) == (
        sum(1 for c, _ in delivered if c in readers), sum(1 for _, how in delivered if how == "read"))
    assert messages["customers_without_read_receipts"] == len({c for c, _ in delivered} - readers)

    weeks = (END - START) / (7 * DAY)
    bands = Counter("high" if n / weeks >= 3 else "medium" if n / weeks >= 1 else "low"
                    for n in Counter(c for c, _, _ in inbound).values())
    assert {band: row["count"] for band, row in report["frequency"].items()} == {b: bands[b] for b in ("high", "medium", "low")}

    waits, open_waits = [], 0  # from a customer's first message after our last one to our next message
    for c in replayed.zones:
        timeline = sorted([(at, "in") for c2, at, _ in replayed.inbound if c2 == c]
                          + [(at, "out") for c2, at, _, _ in replayed.ours if c2 == c])
        since = None
        for at, way in timeline:
            if way == "in" and since is None:
                since = at
            elif way == "out" and since is not None:
                waits += [at - since] if START <= since < END and at < END else []
                open_waits += START <= since < END <= at
                since = None
        open_waits += since is not None and START <= since < END
    speed = report["reply_speed"]
    assert (speed["answers"], speed["unanswered"]) == (len(waits), open_waits)
    assert speed["median_s"] == statistics.median(waits)

    hot = sorted((c for c in replayed.zones if _tier_at(replayed, c, END) == "hot"),
                 key=lambda c: (-sum(1 for c2, _, what in inbound if c2 == c and what == "order"),
                                -sum(1 for c2, _, _ in inbound if c2 == c),
                                -max(at for c2, at, _ in replayed.inbound if c2 == c), c))
    assert [row["key"] for row in report["action_plan"]["hot"]["list"]] == hot


def test_a_report_on_one_number_counts_only_what_went_through_it(replayed: Quarter):
    report = _report("--number", SECOND)
    second = replayed.on_second
    inbound = [c for c, at, _ in replayed.inbound if START <= at < END and c in second]
    ours = [c for c, at, _, _ in replayed.ours if START <= at < END and c in second]
    assert report["source"]["numbers"] == [SECOND] and report["source"]["wabas"] == {WABAS[SECOND]: [SECOND]}
    assert report["source"]["events"] == {"inbound": len(inbound), "outbound": len(ours)}
    assert report["segmentation"]["customers"] == len(second)
    assert list(report["funnel"]["by_number"]) == [SECOND]
    assert report["funnel"]["by_number"][SECOND]["ordered"]["count"] == len(second)  # every buyer ordered in the quarter
    whole = _report()
    assert whole["funnel"]["by_number"][SECOND] == report["funnel"]["by_number"][SECOND]


def test_a_reps_own_number_is_left_out_and_its_messages_listed_as_excluded(env, monkeypatch, tmp_path):
    quarter = generate()
    rep_number = next(c for c in quarter.zones if c.endswith("001"))  # a chatter's number is in fact ana's phone
    config = tmp_path / "wapulse.toml"
    config.write_text(f'[[reps]]\nid = "ana"\nchannels = [{{ type = "whatsapp", to = "{rep_number}" }}]\n')
    monkeypatch.setenv("WAPULSE_CONFIG", str(config))
    monkeypatch.setenv("WHATSAPP_ACCESS_TOKEN", "unused: no reminder is due")
    traffic = tmp_path / "quarter.jsonl"
    traffic.write_text("".join(json.dumps(body) + "\n" for body in quarter.bodies))
    run("replay", str(traffic), "--now", "2026-10-01T00:00:00Z")
    report = _report()
    written = sum(1 for c, at, _ in quarter.inbound if c == rep_number and START <= at < END)
    assert written and report["source"]["excluded"] == {"messages from reps' own numbers (not customers)": written}
    assert report["segmentation"]["customers"] == len(quarter.zones) - 1
    assert report["source"]["events"]["inbound"] == sum(1 for c, at, _ in quarter.inbound if START <= at < END) - written
