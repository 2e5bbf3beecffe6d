"""Tiers through the real worker, sweep and rebuild, with the system's now moving forward."""

from __future__ import annotations

import json
import threading

import pytest
from sqlalchemy import func, select, text

from scoring.events import iso
from scoring.figures import FigureRules
from store import queries
from store.models import Customer, RawBody, TierChangeRow
from tests.conftest import FIXTURES, reread_environment
from workers import inbox
from workers.context import installed
from workers.jobs import sweep_tiers
from workers.rebuild import rebuild

TIMELINE = FIXTURES / "scenarios" / "messages__timeline__tier_moves.jsonl"
DAY = 86_400
T0 = 1_789_981_200  # the first message of the timeline
PRIYA, JOAO = "919812345670", "5511987654321"
PRIYA_FIFTH, PRIYA_LAST, PRIYA_BACK = T0 + 4 * DAY + 2400, T0 + 5 * DAY + 3000, T0 + 5 * DAY + 3000 + 130 * DAY
JOAO_FIRST, JOAO_LAST = T0 + DAY + 5000, T0 + 3 * DAY + 7000


def set_now(monkeypatch, at: int) -> None:
    monkeypatch.setenv("WAPULSE_NOW", iso(at))
    reread_environment()


def card(engine, key: str, now: int) -> dict:
    view = queries.find_customer(engine, key, now, FigureRules())
    assert view is not None
    return view


def history(engine, key: str, now: int) -> list[tuple]:
    return [(c["from"], c["to"], c["at"], c["cause"]) for c in card(engine, key, now)["tier_history"]]


def process(redis, drain, bodies: list[bytes]) -> None:
    for body in bodies:
        inbox.hand_off(redis, body)
    drain()


PRIYA_HISTORY = [
    (None, "warm", iso(T0), "event"),
    ("warm", "hot", iso(PRIYA_FIFTH), "event"),
    ("hot", "warm", iso(PRIYA_LAST + 7 * DAY), "time"),
    ("warm", "cold", iso(PRIYA_LAST + 30 * DAY), "time"),
    ("cold", "dead", iso(PRIYA_LAST + 90 * DAY), "time"),
    ("dead", "hot", iso(PRIYA_BACK), "event"),
]
JOAO_HISTORY = [
    (None, "warm", iso(JOAO_FIRST), "event"),
    ("warm", "cold", iso(JOAO_LAST + 30 * DAY), "time"),
    ("cold", "dead", iso(JOAO_LAST + 90 * DAY), "time"),
]


def test_tiers_move_with_time_and_events_and_every_change_is_at_its_threshold(redis, engine, drain, monkeypatch):
    week, comeback = TIMELINE.read_bytes().splitlines()[:-1], TIMELINE.read_bytes().splitlines()[-1:]
    set_now(monkeypatch, PRIYA_LAST + 3600)
    process(redis, drain, week)
    assert card(engine, PRIYA, PRIYA_LAST + 3600)["tier"] == "hot"
    assert card(engine, JOAO, PRIYA_LAST + 3600)["tier"] == "warm"  # two interactions: never hot

    for days, tier in ((8, "warm"), (31, "cold"), (91, "dead")):
        now = PRIYA_LAST + days * DAY
        set_now(monkeypatch, now)
        sweep_tiers()
        priya = card(engine, PRIYA, now)
        assert (priya["tier"], priya["tier_since"]) == (tier, PRIYA_HISTORY[1 + [8, 31, 91].index(days) + 1][2])

    set_now(monkeypatch, PRIYA_BACK + 60)
    process(redis, drain, comeback)
    assert card(engine, PRIYA, PRIYA_BACK + 60)["tier"] == "hot"  # seven interactions in all
    assert history(engine, PRIYA, PRIYA_BACK + 60) == PRIYA_HISTORY
    assert history(engine, JOAO, PRIYA_BACK + 60) == JOAO_HISTORY
    assert sweep_tiers() == {"customers": 0, "changes": 0}


def test_crossings_found_by_an_event_alone_carry_the_same_instants_as_the_sweeps(redis, engine, drain, monkeypatch):
    """No sweep runs between the first week and the comeback: the comeback's batch finds the
    crossings, and one sweep afterwards finds João's."""
    set_now(monkeypatch, PRIYA_BACK + 60)
    process(redis, drain, TIMELINE.read_bytes().splitlines())
    assert history(engine, PRIYA, PRIYA_BACK + 60) == PRIYA_HISTORY
    assert history(engine, JOAO, PRIYA_BACK + 60) == JOAO_HISTORY  # already moved in the same batch
    assert sweep_tiers() == {"customers": 0, "changes": 0}


def test_a_late_event_older_than_the_sweeps_changes_rewrites_the_history_it_contradicts(
    redis, engine, drain, monkeypatch
):
    lines = TIMELINE.read_bytes().splitlines()
    late = [line for line in lines if any(b'"timestamp":"%d"' % (T0 + n * DAY + n * 600) in line for n in (3, 4))]
    set_now(monkeypatch, PRIYA_LAST + 40 * DAY)
    process(redis, drain, [line for line in lines[:-1] if line not in late])
    assert card(engine, PRIYA, PRIYA_LAST + 40 * DAY)["tier"] == "cold"
    assert [change[1] for change in history(engine, PRIYA, PRIYA_LAST + 40 * DAY)] == ["warm", "cold"]  # 4 in all: never hot
    process(redis, drain, late)  # the fourth and fifth messages arrive last
    assert history(engine, PRIYA, PRIYA_LAST + 40 * DAY) == PRIYA_HISTORY[:4]


def test_an_event_after_the_last_but_before_changes_of_time_replaces_those_changes(redis, engine, drain, monkeypatch):
    """A replay whose now lies ahead: each batch lets time run to now, and the next message of
    the customer comes before those changes. They are taken back and time runs again after it."""
    lines = TIMELINE.read_bytes().splitlines()
    sixth = next(line for line in lines if b'"timestamp":"%d"' % PRIYA_LAST in line)
    set_now(monkeypatch, PRIYA_LAST + 40 * DAY)
    process(redis, drain, [line for line in lines[:-1] if line != sixth])
    assert [change[1] for change in history(engine, PRIYA, PRIYA_LAST + 40 * DAY)] == ["warm", "hot", "warm", "cold"]
    process(redis, drain, [sixth])
    assert history(engine, PRIYA, PRIYA_LAST + 40 * DAY) == PRIYA_HISTORY[:4]


def customers_with_crossings(redis, drain, monkeypatch, count: int) -> None:
    """`count` customers who each wrote once on day 0, hour by hour; the sweep at day 30 + h hours
    moves exactly the first h + 1 of them into cold."""
    bodies = []
    for n in range(count):
        at = T0 + n * 3600
        value = {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
            "contacts": [{"profile": {"name": f"Customer {n}"}, "wa_id": f"4915{n:09d}"}],
            "messages": [{"from": f"4915{n:09d}", "id": f"wamid.sweep{n}", "timestamp": str(at), "type": "text",
                          "text": {"body": "hello"}}],
        }
        body = {"object": "whatsapp_business_account",
                "entry": [{"id": "102290129340398", "changes": [{"value": value, "field": "messages"}]}]}
        bodies.append(json.dumps(body).encode())
    set_now(monkeypatch, T0 + count * 3600)
    process(redis, drain, bodies)


@pytest.mark.parametrize("count", [30, 300])
def test_the_sweep_visits_only_the_customers_crossing_a_threshold(count, redis, engine, drain, monkeypatch):
    customers_with_crossings(redis, drain, monkeypatch, count)
    set_now(monkeypatch, T0 + 30 * DAY + 4 * 3600)
    assert sweep_tiers() == {"customers": 5, "changes": 5}  # ten times the customers, the same work
    assert sweep_tiers() == {"customers": 0, "changes": 0}


def test_the_sweep_finds_its_customers_through_the_index(engine):
    if engine.dialect.name != "sqlite":
        pytest.skip("the plan is checked on SQLite; PostgreSQL chooses by statistics")
    with engine.connect() as connection:
        plan = " ".join(
            str(row[-1]) for row in connection.execute(text("EXPLAIN QUERY PLAN SELECT id FROM customer WHERE next_tier_at <= 5"))
        )
    assert "ix_customer_next_tier_at" in plan


def test_two_sweeps_at_once_record_each_change_once(redis, engine, drain, monkeypatch):
    customers_with_crossings(redis, drain, monkeypatch, 120)
    set_now(monkeypatch, T0 + 200 * DAY)
    results = []
    threads = [threading.Thread(target=lambda: results.append(sweep_tiers())) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(result["changes"] for result in results) == [0, 240]  # warm → cold → dead, each once
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(TierChangeRow.__table__)).scalar_one() == 360


def everything(engine, now: int) -> list[dict]:
    keys = sorted(view["key"] for view in queries.list_customers(engine, now, FigureRules()))
    return [card(engine, key, now) for key in keys]


def test_rebuild_gives_the_state_live_processing_gave(redis, engine, drain, monkeypatch):
    week, comeback = TIMELINE.read_bytes().splitlines()[:-1], TIMELINE.read_bytes().splitlines()[-1:]
    set_now(monkeypatch, PRIYA_LAST + 3600)
    process(redis, drain, week + [path.read_bytes() for path in sorted((FIXTURES / "cloudapi").glob("*.json"))])
    set_now(monkeypatch, PRIYA_LAST + 40 * DAY)
    sweep_tiers()
    set_now(monkeypatch, PRIYA_BACK + 60)
    process(redis, drain, comeback)
    sweep_tiers()  # as cron does every minute: live state is current as of now
    live = everything(engine, PRIYA_BACK + 60)
    result = rebuild(installed())
    assert result.failed_bodies == 0 and result.bodies > len(week)
    assert everything(engine, PRIYA_BACK + 60) == live


def test_rebuild_with_other_thresholds_records_what_it_changed_as_rebuild(redis, engine, drain, monkeypatch, tmp_path):
    set_now(monkeypatch, PRIYA_LAST + 3600)
    process(redis, drain, TIMELINE.read_bytes().splitlines()[:-1])
    config = tmp_path / "wapulse.toml"
    config.write_text('[tiers]\npreset = "b2b_long_cycle"\n')
    monkeypatch.setenv("WAPULSE_CONFIG", str(config))
    set_now(monkeypatch, PRIYA_LAST + 20 * DAY)
    rebuild(installed())
    assert history(engine, PRIYA, PRIYA_LAST + 20 * DAY) == [
        (None, "warm", iso(T0), "event"),
        ("warm", "hot", iso(PRIYA_FIFTH), "event"),
        ("hot", "warm", iso(PRIYA_LAST + 14 * DAY), "rebuild"),  # 14 days under b2b_long_cycle
    ]


def test_rebuild_retries_dead_letters_and_clears_those_that_now_go_through(redis, engine, drain, monkeypatch):
    set_now(monkeypatch, PRIYA_LAST + 3600)
    process(redis, drain, TIMELINE.read_bytes().splitlines()[:2])
    raw = RawBody.__table__
    with engine.begin() as connection:
        connection.execute(raw.update().values(error="RuntimeError at parse.py:1"))
    rebuild(installed())
    with engine.connect() as connection:
        assert connection.execute(select(raw.c.error)).scalars().all() == [None, None]
        assert connection.execute(select(func.count()).select_from(Customer.__table__)).scalar_one() == 1
