"""Follow-up rules with plain values: snoozes on the rep's clock, what settles a follow-up, who
may act on one."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from scoring.followups import Action, Snooze, may_reassign, may_work, settled_by, snooze_until
from scoring.reminders import Rule
from scoring.reps import Rep

MADRID = "Europe/Madrid"


def at(text: str, zone: str = "UTC") -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).timestamp())


@pytest.mark.parametrize("now, choice, until", [
    ("2026-11-30 16:20", Snooze.HOUR, "2026-11-30 17:20"),
    ("2026-11-30 16:20", Snooze.TOMORROW, "2026-12-01 09:00"),
    ("2026-11-30 23:50", Snooze.TOMORROW, "2026-12-01 09:00"),  # Monday late evening
    ("2026-11-30 00:10", Snooze.TOMORROW, "2026-12-01 09:00"),  # just after midnight: tomorrow is still tomorrow
    ("2026-11-30 10:00", Snooze.NEXT_WEEK, "2026-12-07 09:00"),  # a Monday: the Monday after
    ("2026-12-06 22:00", Snooze.NEXT_WEEK, "2026-12-07 09:00"),  # a Sunday: tomorrow's Monday
    ("2027-03-27 12:00", Snooze.TOMORROW, "2027-03-28 09:00"),  # across the change to summer time
])
def test_a_snooze_ends_on_the_reps_own_clock(now, choice, until):
    assert snooze_until(choice, at(now, MADRID), MADRID) == at(until, MADRID)


def test_tomorrow_morning_is_the_reps_morning_not_utcs():
    now = at("2026-11-30 20:00")  # already tomorrow in Tokyo
    assert datetime.fromtimestamp(snooze_until(Snooze.TOMORROW, now, "Asia/Tokyo"), UTC).isoformat() == \
        "2026-12-02T00:00:00+00:00"


@pytest.mark.parametrize("rule, awaiting, last_inbound, settled", [
    (Rule.UNANSWERED, None, 90, Action.REPLIED),  # we replied: nothing waits on us
    (Rule.UNANSWERED, 150, 150, Action.REPLIED),  # we replied, and a new question came after the reminder
    (Rule.UNANSWERED, 50, 60, None),  # the wait it was about goes on
    (Rule.WINDOW_CLOSING, None, 60, Action.REPLIED),
    (Rule.WENT_COLD, None, 150, Action.CAME_BACK),
    (Rule.COOLING, 140, 140, Action.CAME_BACK),
    (Rule.WENT_COLD, None, 60, None),  # still silent since it went cold
    (Rule.HEATING, None, 150, None),  # good news is closed by its rep, not by behaviour
    (Rule.REACTIVATED, None, 150, None),
    (Rule.UNREACHABLE, None, 150, None),
])
def test_what_the_customer_does_settles_some_follow_ups_by_itself(rule, awaiting, last_inbound, settled):
    assert settled_by(rule, 100, awaiting, last_inbound) == settled


ANA, BEN = Rep("ana", "Ana", "UTC", ()), Rep("ben", "Ben", "UTC", ())
MARIA = Rep("maria", "Maria", "UTC", (), role="manager")


def test_a_rep_works_only_their_own_follow_ups_and_a_manager_anyones():
    assert may_work(ANA, "ana") and not may_work(BEN, "ana") and may_work(MARIA, "ana")


def test_only_the_owner_or_a_manager_reassigns_a_customer():
    assert may_reassign(ANA, "ana") and not may_reassign(BEN, "ana") and may_reassign(MARIA, "ana")
    assert not may_reassign(ANA, None) and may_reassign(MARIA, None)
