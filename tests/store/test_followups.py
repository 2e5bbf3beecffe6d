"""Follow-ups through the real worker, sweep and delivery job: what a rep does about a reminder,
and what the customer's behaviour does by itself, each seen in the store and on the rep's channel."""

from __future__ import annotations

import json

from sqlalchemy import select

from scoring.followups import Action, State
from store import followups
from store.db import write_transaction
from store.models import Reminder, ReminderAction
from tests.conftest import FIXTURES
from tests.workers.test_reminders import SHEENA_AT, configure, deliveries, our_reply_to_sheena, sheena_goes_cold, webhook
from tests.workers.test_tiers import process, set_now
from workers.jobs import deliver_due
from workers.context import installed
from workers.jobs import sweep_tiers

SHEENA_ASKS = (FIXTURES / "cloudapi" / "messages__text.json").read_bytes()  # "Does it come in another color?"


def reminders_of(engine) -> list[tuple]:
    table = Reminder.__table__
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(
            select(table.c.rule, table.c.rep, table.c.state, table.c.close_reason).order_by(table.c.at, table.c.rep))]


def actions_of(engine) -> list[tuple]:
    table = ReminderAction.__table__
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(
            select(table.c.rep, table.c.actor, table.c.action, table.c.detail).order_by(table.c.id))]


def unanswered_for_sheena(redis, drain, monkeypatch) -> None:
    set_now(monkeypatch, SHEENA_AT + 60)
    process(redis, drain, [SHEENA_ASKS])
    set_now(monkeypatch, SHEENA_AT + 3600)
    sweep_tiers()


def test_our_reply_closes_an_unanswered_follow_up_and_what_was_still_to_go_out(
    redis, engine, drain, monkeypatch, tmp_path, endpoint
):
    url, received = endpoint
    configure(monkeypatch, tmp_path, webhook(url), rep='daily_digest = "18:00"\n')
    unanswered_for_sheena(redis, drain, monkeypatch)
    assert reminders_of(engine) == [("unanswered", "ana", "open", None)]
    set_now(monkeypatch, SHEENA_AT + 3700)
    process(redis, drain, [our_reply_to_sheena(SHEENA_AT + 3650)])
    assert reminders_of(engine) == [("unanswered", "ana", "closed", "replied")]
    assert actions_of(engine) == [("ana", None, "replied", {})]
    assert [row.status for row in deliveries(engine)] == ["cancelled"]  # held for the digest: never sent
    set_now(monkeypatch, SHEENA_AT + 2 * 86_400)
    deliver_due()
    assert received == []


def test_a_message_from_a_customer_who_went_cold_closes_went_cold(redis, engine, drain, monkeypatch, tmp_path, endpoint):
    url, _ = endpoint
    configure(monkeypatch, tmp_path, webhook(url))
    sheena_goes_cold(redis, drain, monkeypatch)
    assert ("went_cold", "ana", "open", None) in reminders_of(engine)
    back = json.loads(SHEENA_ASKS)
    message = back["entry"][0]["changes"][0]["value"]["messages"][0]
    message.update(id="wamid.back", timestamp=str(SHEENA_AT + 40 * 86_400))
    set_now(monkeypatch, SHEENA_AT + 40 * 86_400 + 60)
    process(redis, drain, [json.dumps(back).encode()])
    rules = {rule: (state, reason) for rule, _, state, reason in reminders_of(engine)}
    assert rules["went_cold"] == ("closed", "came_back")
    assert rules["reactivated"] == ("open", None)  # the comeback is a follow-up of its own


def test_a_snoozed_follow_up_comes_back_when_its_snooze_ends_and_goes_out_again(
    redis, engine, drain, monkeypatch, tmp_path, endpoint
):
    url, received = endpoint
    configure(monkeypatch, tmp_path, webhook(url))
    sheena_goes_cold(redis, drain, monkeypatch)
    deliver_due()
    (first,) = [json.loads(body) for _, body in received]
    now = SHEENA_AT + 30 * 86_400 + 3600
    with write_transaction(engine) as connection:
        assert followups.snooze(connection, first["id"], "ana", "ana", now + 3600, now)
    set_now(monkeypatch, now + 3599)
    sweep_tiers()
    assert reminders_of(engine) == [("went_cold", "ana", "snoozed", None)]
    set_now(monkeypatch, now + 3600)
    sweep_tiers()
    deliver_due()
    assert reminders_of(engine) == [("went_cold", "ana", "open", None)]
    again = json.loads(received[-1][1])
    assert (len(received), again["id"], again["rule"]) == (2, f"{first['id']}.1", "went_cold")
    assert received[-1][0]["Idempotency-Key"] == again["id"]
    assert [(action, detail) for _, _, action, detail in actions_of(engine)] == [
        ("snooze", {"until": now + 3600}), ("woke", {})]


def test_done_closes_a_follow_up_once_and_reassign_moves_the_customer_and_their_follow_ups(
    redis, engine, drain, monkeypatch, tmp_path, endpoint
):
    url, received = endpoint
    configure(monkeypatch, tmp_path, webhook(url), extra=f'\n[[reps]]\nid = "ben"\nchannels = [{webhook(url)}]\n')
    unanswered_for_sheena(redis, drain, monkeypatch)
    sheena_goes_cold(redis, drain, monkeypatch)
    now = SHEENA_AT + 30 * 86_400 + 3600
    with engine.connect() as connection:
        (went_cold,) = [row for row in followups.followups(connection, "ana", State.OPEN) if row.rule == "went_cold"]
    with write_transaction(engine) as connection:
        assert followups.close(connection, went_cold.id, "ana", Action.DONE, "ana", now)
        assert not followups.close(connection, went_cold.id, "ana", Action.DONE, "ana", now)
        queued = followups.reassign(connection, installed().settings.reminder_setup, went_cold.customer_id, "ben", "ana", now)
    assert reminders_of(engine) == [("unanswered", "ana", "closed", "reassign"), ("unanswered", "ben", "open", None),
                                    ("went_cold", "ana", "closed", "done")]
    assert [(row.rep, row.status) for row in deliveries(engine) if row.id in queued] == [("ben", "pending")]
    assert actions_of(engine)[-3:] == [("ana", "ana", "done", {}), ("ana", "ana", "reassign", {"to": "ben"}),
                                       ("ben", "ana", "reassign", {"from": "ana"})]
    with engine.connect() as connection:
        assert [row.rule for row in followups.followups(connection, "ben", State.OPEN)] == ["unanswered"]
        assert followups.followups(connection, "ana", State.OPEN) == []
        assert followups.count_open(connection, None) == 1
