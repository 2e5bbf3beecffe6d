"""The team figures and reminder effectiveness on a timeline built so that every answer is known:
eight customers go cold on the same day, their reps act on some reminders in time, one late and
some never, and some customers come back. Bodies go through the real worker and sweep; the
expected figures are counted here from the timeline itself, not from wapulse's code."""

from __future__ import annotations

import json
from dataclasses import asdict
from statistics import median

import pytest
from scipy.stats import fisher_exact
from sqlalchemy import select

from report.figures import Period
from report.team import Slas, team
from report.team_load import team_facts
from scoring.followups import Action
from scoring.reminders import Rule
from store import followups
from store.db import read_snapshot, write_transaction
from store.models import Reminder, ReminderDelivery
from store.queries import customer_id_for
from store.reminders import assign_owners
from tests.conftest import FIXTURES
from tests.webhook.conftest import body_from
from tests.workers.test_tiers import process, set_now
from workers.context import installed
from workers.jobs import sweep_tiers

DAY = 86_400
T0 = 1_790_000_000  # 2026-09-21
CUSTOMERS = {n: f"3460000010{n}" for n in range(1, 9)}
OWNER = {n: "ana" if n <= 4 else "ben" for n in CUSTOMERS}
FIRST = {n: T0 + n * 60 for n in CUSTOMERS}  # each writes once...
CROSSING = {n: FIRST[n] + 30 * DAY for n in CUSTOMERS}  # ...and goes cold 30 days later
SWEPT = T0 + 30 * DAY + 3600  # when the sweep notices, and the reminders are made
DONE = {1: CROSSING[1] + DAY, 2: CROSSING[2] + 2 * DAY, 4: CROSSING[4] + 10 * DAY}  # 4: too late to count
OURS = {3: CROSSING[3] + 2 * DAY, 1: CROSSING[1] + 5 * DAY + 180}  # 1: our answer to their question
BACK = {1: (CROSSING[1] + 5 * DAY, "How much is it now?"), 3: (CROSSING[3] + 6 * DAY, "Thanks, got it"),
        4: (CROSSING[4] + 12 * DAY, "Hello again"), 5: (CROSSING[5] + 10 * DAY, "What is the price?")}
NOW = T0 + 91 * DAY
CONFIG = """
[[reps]]
id = "ana"
channels = [{ type = "slack", url = "http://127.0.0.1:9/ana" }]

[[reps]]
id = "ben"
channels = [{ type = "slack", url = "http://127.0.0.1:9/ben" }]

[owners]
default = "ana"

[reminders]
rules = ["went_cold", "cooling"]
"""


def sent_to(who: str, message_id: str, at: int) -> bytes:
    """A `sent` status of a message of ours: how the webhook tells us we wrote to them."""
    body = json.loads((FIXTURES / "cloudapi" / "messages__status-sent.json").read_bytes())
    value = body["entry"][0]["changes"][0]["value"]
    value.pop("contacts", None)
    status = value["statuses"][0]
    status.update(recipient_id=who, timestamp=str(at), id=message_id)
    status.pop("recipient_user_id", None)
    return json.dumps(body).encode()


@pytest.fixture
def timeline(env, redis, drain, engine, monkeypatch, tmp_path):
    play(redis, drain, engine, monkeypatch, tmp_path, CONFIG)
    return engine


def play(redis, drain, engine, monkeypatch, tmp_path, text: str) -> None:
    """The timeline through the worker, the sweep and the reps' Done, each at its instant."""
    config = tmp_path / "wapulse.toml"
    config.write_text(text)
    monkeypatch.setenv("WAPULSE_CONFIG", str(config))
    set_now(monkeypatch, T0 + DAY)
    process(redis, drain, [body_from(who, f"Customer {n}", f"wamid.first{n}", FIRST[n], "Hello")
                           for n, who in CUSTOMERS.items()])
    with write_transaction(engine) as connection:
        assert assign_owners(connection, [(who, OWNER[n]) for n, who in CUSTOMERS.items()]) == []
    set_now(monkeypatch, SWEPT)
    sweep_tiers()
    steps = sorted([(at, "done", n) for n, at in DONE.items()] + [(at, "ours", n) for n, at in OURS.items()]
                   + [(at, "back", n) for n, (at, _) in BACK.items()])
    for at, what, n in steps:
        set_now(monkeypatch, at)
        if what == "done":
            with write_transaction(engine) as connection:
                reminder = next(iter(followups.of_customer(connection, customer_id(engine, n))), None)
                assert reminder is None or followups.close(connection, reminder.id, reminder.rep, Action.DONE, OWNER[n], at)
        elif what == "ours":
            process(redis, drain, [sent_to(CUSTOMERS[n], f"wamid.ours{n}", at)])
        else:
            process(redis, drain, [body_from(CUSTOMERS[n], f"Customer {n}", f"wamid.back{n}", at, BACK[n][1])])
    set_now(monkeypatch, NOW)
    sweep_tiers()


def customer_id(engine, n: int) -> int:
    with engine.connect() as connection:
        return customer_id_for(connection, CUSTOMERS[n])


def figures(engine, period: Period) -> dict:
    settings = installed().settings
    with read_snapshot(engine) as connection:
        rules = settings.reminder_setup.rules
        facts = team_facts(connection, period, NOW, frozenset(), rules.sla_other_s)
    return team(facts, period, NOW, asdict(settings.tier_rules), Slas(rules.sla_hot_s, rules.sla_other_s))


def expected_effectiveness(customers: list[int]) -> dict:
    """Acted on: Done or a message of ours within 3 days of the crossing; came back: a message of
    theirs within 30 days; acted on between 3 and 30 days: compared with neither group."""
    acted = [n for n in customers if any(at - CROSSING[n] <= 3 * DAY for at in (DONE.get(n), OURS.get(n)) if at)]
    late = [n for n in customers if n not in acted and any(at for at in (DONE.get(n), OURS.get(n)))]
    not_acted = [n for n in customers if n not in acted and n not in late]
    back = {n for n in customers if n in BACK and BACK[n][0] - CROSSING[n] <= 30 * DAY}
    return {"acted": (len(acted), len(back & set(acted))), "not_acted": (len(not_acted), len(back & set(not_acted))),
            "late": len(late)}


def test_reminder_effectiveness_counts_what_the_timeline_says(timeline):
    result = figures(timeline, Period(T0, T0 + 60 * DAY))
    for group, customers in (("team", list(CUSTOMERS)), ("ana", [1, 2, 3, 4]), ("ben", [5, 6, 7, 8])):
        shown = result["team"]["effectiveness"] if group == "team" else result["by_rep"][group]["effectiveness"]
        expected = expected_effectiveness(customers)
        assert (shown["acted"]["crossings"], shown["acted"]["came_back"]) == expected["acted"], group
        assert (shown["not_acted"]["crossings"], shown["not_acted"]["came_back"]) == expected["not_acted"], group
        assert shown["acted_late"] == expected["late"] and shown["too_recent"] == 0, group
    team_figures = result["team"]["effectiveness"]
    (acted, acted_back), (others, others_back) = expected_effectiveness(list(CUSTOMERS))["acted"], \
        expected_effectiveness(list(CUSTOMERS))["not_acted"]
    assert (acted, acted_back, others, others_back) == (3, 2, 4, 1)  # the timeline as designed
    assert team_figures["difference"] == round(acted_back / acted - others_back / others, 4)
    assert team_figures["p_value"] == round(fisher_exact([[acted_back, acted - acted_back],
                                                          [others_back, others - others_back]])[1], 4)
    low, high = team_figures["interval_95"]
    assert low < team_figures["difference"] < high
    assert team_figures["not_acted"]["never_acted"] == 4 and team_figures["not_acted"]["held_back"] == 0


def test_the_team_figures_per_rep_and_for_the_team(timeline):
    result = figures(timeline, Period(T0, NOW))
    ana, ben, everyone = result["by_rep"]["ana"], result["by_rep"]["ben"], result["team"]
    # tiers now: silent 90 days or more is dead, 30 or more cold
    last = {n: max([FIRST[n]] + ([BACK[n][0]] if n in BACK else [])) for n in CUSTOMERS}
    tier_now = {n: "dead" if NOW - at >= 90 * DAY else "cold" for n, at in last.items()}
    for shown, group in ((ana, [1, 2, 3, 4]), (ben, [5, 6, 7, 8]), (everyone, list(CUSTOMERS))):
        assert shown["customers"] == len(group)
        assert {t: shown["tiers"][t] for t in ("cold", "dead")} == {
            t: sum(tier_now[n] == t for n in group) for t in ("cold", "dead")}
        came_back = [n for n in group if n in BACK]
        assert shown["flow"] == {"hot_to_warm": 0, "warm_to_cold": len(group) + len(came_back),
                                 "cold_to_dead": sum(tier_now[n] == "dead" for n in group), "up": len(came_back)}
    # follow-ups: one went_cold reminder each; Done, or closed by the customer coming back, or open
    still_open = [n for n in CUSTOMERS if n not in DONE and n not in BACK]
    assert everyone["open_followups"]["count"] == len(still_open) == 3
    assert ana["open_followups"]["count"] == 0 and ben["open_followups"]["count"] == 3
    assert everyone["open_followups"]["oldest_customer"] in {customer_id(timeline, n) for n in still_open}
    waits = sorted(at - SWEPT for at in DONE.values())
    assert ana["action_median_s"] == {"followups": 4, "acted": 3, "median_s": median(waits)}
    assert ben["action_median_s"] == {"followups": 4, "acted": 0, "median_s": None}
    # questions: 1 asked and answered in 3 minutes (warm: the 60-minute SLA), 5 asked and never answered
    assert (ana["sla"]["questions"], ana["sla"]["kept"]) == (1, 1)
    assert (ben["sla"]["questions"], ben["sla"]["kept"]) == (1, 0)
    assert everyone["sla"]["share"] == 0.5
    # reply rate: of the customers we wrote to (1 and 3), those who wrote after our first message (3)
    assert everyone["reply_rate"] == ana["reply_rate"] == {"messaged": 2, "replied": 1, "rate": 0.5}
    assert ben["reply_rate"]["messaged"] == 0
    # reply speed: a wait runs from their first unanswered message to our next one
    answered = sorted([OURS[1] - FIRST[1], OURS[3] - FIRST[3]])
    assert ana["reply_speed"]["answers"] == 2 and ana["reply_speed"]["median_s"] == median(answered)


def test_held_back_reminders_are_kept_closed_never_sent_and_are_the_controlled_comparison(
        env, redis, drain, engine, monkeypatch, tmp_path):
    play(redis, drain, engine, monkeypatch, tmp_path, CONFIG + "hold_back_percent = 50\n")
    rules = installed().settings.reminder_setup.rules
    table, sent = Reminder.__table__, ReminderDelivery.__table__
    with engine.connect() as connection:
        rows = connection.execute(select(table.c.id, table.c.customer_id, table.c.close_reason, table.c.at)
                                  .where(table.c.rule == "went_cold", table.c.at < SWEPT)).all()
        delivered = set(connection.execute(select(sent.c.reminder_id)).scalars())
    held = {row.id for row in rows if rules.holds_back(row.id, Rule.WENT_COLD)}
    assert 0 < len(held) < len(rows) == len(CUSTOMERS)  # some, chosen by the crossing's id
    assert {row.id for row in rows if row.close_reason == "held_back"} == held
    assert not held & delivered and {row.id for row in rows} - held <= delivered
    shown = figures(engine, Period(T0, T0 + 60 * DAY))["team"]["effectiveness"]
    assert shown["not_acted"]["held_back"] == len(held)
    controlled = shown["reminded_against_held_back"]
    assert (controlled["reminded"]["crossings"], controlled["held_back"]["crossings"]) == (
        len(CUSTOMERS) - len(held), len(held))


def test_the_report_json_carries_the_same_reminder_figures(timeline):
    from report.build import produce, request_of

    asked = request_of({"from": "2026-09-21", "to": "2026-11-19", "compare": "none", "format": "json"}, NOW,
                       ["ana", "ben"], {"106540352242922"}, frozenset())
    report = json.loads(produce(timeline, asked, installed().settings.tier_rules))
    shown = figures(timeline, asked.period)["team"]["effectiveness"]
    assert report["reminders"] == {**json.loads(json.dumps(shown)), "by_rep": report["reminders"]["by_rep"]}
    assert report["reminders"]["by_rep"]["ben"]["not_acted"]["crossings"] == 4
    assert (report["reminders"]["acted"]["crossings"], report["reminders"]["acted"]["came_back"]) == (3, 2)


def test_a_reassignment_by_a_manager_is_no_action_of_either_rep(timeline):
    """The manager gives one of Ben's open follow-ups to Ana: neither Ben nor Ana did anything
    about it, so neither's time to act moves."""
    table = Reminder.__table__
    with timeline.connect() as connection:
        customer = connection.execute(select(table.c.customer_id).where(table.c.state == "open", table.c.rep == "ben")
                                      .limit(1)).scalar_one()
    period = Period(T0, NOW + DAY)
    before = figures(timeline, period)["by_rep"]
    with write_transaction(timeline) as connection:
        followups.reassign(connection, installed().settings.reminder_setup, customer, "ana", "maria", NOW)
    after = figures(timeline, period)["by_rep"]
    assert after["ana"]["action_median_s"]["acted"] == before["ana"]["action_median_s"]["acted"]
    assert after["ben"]["action_median_s"]["acted"] == before["ben"]["action_median_s"]["acted"] == 0


def test_a_question_answered_after_the_period_ends_is_judged_by_when_it_was_answered(timeline):
    """Customer 1 asked at CROSSING[1] + 5 days and was answered 3 minutes later: a period that
    ends between the two still counts the question as answered within its SLA."""
    asked = BACK[1][0]
    period = Period(T0, asked + 60)
    assert figures(timeline, period)["by_rep"]["ana"]["sla"] == {"questions": 1, "kept": 1, "share": 1.0}


def test_held_back_reminders_are_not_on_the_customers_timeline(env, redis, drain, engine, monkeypatch, tmp_path):
    from store.desk import timeline as moments

    play(redis, drain, engine, monkeypatch, tmp_path, CONFIG + "hold_back_percent = 50\n")
    table = Reminder.__table__
    with engine.connect() as connection:
        held = connection.execute(select(table.c.customer_id).where(table.c.close_reason == "held_back")).scalars().all()
        assert held
        for customer in held:
            assert not [m for m in moments(connection, customer, None, {}) if m.what == "followup"
                        and m.title.startswith("Went cold")]
