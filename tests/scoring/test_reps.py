"""Reps, their quiet hours and channels, and the default owner of a new customer."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from scoring.reminders import Rule
from scoring.reps import OwnerPolicy, Rep

MADRID = ZoneInfo("Europe/Madrid")
WEBHOOK = {"type": "webhook", "url": "https://crm.example.com/hook", "secret": "s3cret"}


def madrid(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=MADRID).timestamp())


def rep(**table) -> Rep:
    return Rep.from_config({"id": "ana", "timezone": "Europe/Madrid", "channels": [WEBHOOK], **table}, "[[reps]] 1")


def test_quiet_hours_across_midnight_end_at_the_next_local_morning():
    ana = rep(quiet_hours="22:00-07:00")
    assert ana.quiet_until(madrid("2026-11-22T21:59:59")) is None
    assert ana.quiet_until(madrid("2026-11-22T22:00:00")) == madrid("2026-11-23T07:00:00")
    assert ana.quiet_until(madrid("2026-11-23T03:30:00")) == madrid("2026-11-23T07:00:00")
    assert ana.quiet_until(madrid("2026-11-23T07:00:00")) is None


def test_quiet_hours_within_a_day_and_across_a_clock_change():
    lunch = rep(quiet_hours="13:00-15:00")
    assert lunch.quiet_until(madrid("2026-11-22T14:00:00")) == madrid("2026-11-22T15:00:00")
    assert lunch.quiet_until(madrid("2026-11-22T15:00:00")) is None
    night = rep(quiet_hours="22:00-07:00")  # Europe/Madrid goes from +02:00 to +01:00 on 2026-10-25
    assert night.quiet_until(madrid("2026-10-24T23:00:00")) == int(
        datetime(2026, 10, 25, 7, tzinfo=MADRID).timestamp()
    )
    assert rep().quiet_until(madrid("2026-11-22T03:00:00")) is None


def test_a_daily_digest_holds_all_but_the_immediate_rules_until_its_hour_outside_quiet_hours():
    ana = rep(daily_digest="18:00", immediate=["unanswered"], quiet_hours="22:00-07:00")
    assert ana.hold_until(madrid("2026-11-22T09:00:00"), Rule.WENT_COLD) == madrid("2026-11-22T18:00:00")
    assert ana.hold_until(madrid("2026-11-22T18:00:00"), Rule.WENT_COLD) == madrid("2026-11-22T18:00:00")
    assert ana.hold_until(madrid("2026-11-22T18:00:01"), Rule.WENT_COLD) == madrid("2026-11-23T18:00:00")
    assert ana.hold_until(madrid("2026-11-22T09:00:00"), Rule.UNANSWERED) is None
    assert ana.hold_until(madrid("2026-11-22T23:00:00"), Rule.UNANSWERED) == madrid("2026-11-23T07:00:00")
    late = rep(daily_digest="23:00", quiet_hours="22:00-07:00")  # a digest hour inside quiet hours waits for them
    assert late.hold_until(madrid("2026-11-22T09:00:00"), Rule.HEATING) == madrid("2026-11-23T07:00:00")
    assert rep().hold_until(madrid("2026-11-22T09:00:00"), Rule.HEATING) is None


def test_a_whatsapp_channel_takes_the_number_without_plus_and_the_default_template():
    (channel,) = rep(channels=[{"type": "whatsapp", "to": "+34600000000"}]).channels
    assert dict(channel.settings) == {"to": "34600000000", "template": "wapulse_reminder", "language": "en"}


def test_channel_labels_number_repeated_types():
    slack = {"type": "slack", "url": "https://hooks.slack.com/services/T/B/x"}
    ana = rep(channels=[WEBHOOK, slack, slack])
    assert ana.channel_labels() == ["webhook", "slack", "slack#2"]


@pytest.mark.parametrize(
    "table, message",
    [
        ({"id": "ana bad"}, "id must be 1 to 64"),
        ({"timezone": "Mars/Olympus"}, "not an IANA zone"),
        ({"channels": []}, "at least one channel"),
        ({"channels": [{"type": "pigeon"}]}, "channel 1 needs type = one of"),
        ({"channels": [{"type": "webhook", "url": "https://x"}]}, "(webhook) needs secret"),
        ({"channels": [{"type": "slack", "url": "ftp://x"}]}, "url must start with"),
        ({"channels": [{"type": "whatsapp", "to": "600 000 000"}]}, "(whatsapp) to must be the rep's number"),
        ({"channels": [{"type": "whatsapp", "to": "34600000000", "from": "my-number"}]}, "from must be a business"),
        ({"daily_digest": "6pm"}, "daily_digest = '6pm' must be a time of day"),
        ({"immediate": ["urgent"]}, "immediate must list rules among went_cold"),
        ({"channels": [{"type": "email", "to": "ana"}]}, "(email) to must be an e-mail address"),
        ({"channels": [{"type": "slack", "url": "https://x", "colour": "red"}]}, "unknown keys ['colour']"),
        ({"quiet_hours": "22-7"}, "must read like"),
        ({"quiet_hours": "07:00-07:00"}, "must read like"),
        ({"mood": "happy"}, "unknown keys ['mood']"),
    ],
)
def test_a_bad_rep_is_named_in_the_error(table, message):
    with pytest.raises(ValueError) as raised:
        rep(**table)
    assert message in str(raised.value)


def test_owners_fixed_in_turn_and_per_number():
    policy = OwnerPolicy.from_config({"default": ["ana", "ben"], "by_number": {"106540352242922": "carla"}},
                                     frozenset({"ana", "ben", "carla"}))
    assert [policy.pick("999", customer_id) for customer_id in range(1, 4)] == ["ana", "ben", "ana"]
    assert [policy.pick("106540352242922", customer_id) for customer_id in range(1, 3)] == ["carla", "carla"]
    assert OwnerPolicy().pick("999", 1) is None


@pytest.mark.parametrize(
    "table, message",
    [
        ({"default": "zoe"}, "['zoe'], which are not reps"),
        ({"default": []}, "must be a rep id or a list"),
        ({"by_number": {"1": ["ana", "zoe"]}}, "[owners.by_number] 1 names ['zoe']"),
        ({"by_number": "ana"}, "by_number must be a table"),
        ({"fallback": "ana"}, "unknown keys ['fallback']"),
    ],
)
def test_a_bad_owners_table_is_named_in_the_error(table, message):
    with pytest.raises(ValueError) as raised:
        OwnerPolicy.from_config(table, frozenset({"ana"}))
    assert message in str(raised.value)
