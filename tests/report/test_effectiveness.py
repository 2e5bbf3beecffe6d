"""Reminder effectiveness with plain values: which group a crossing falls in, and the statistics."""

from __future__ import annotations

import pytest

from report.effectiveness import (
    ACT_WITHIN_S, COME_BACK_WITHIN_S, Crossing, classify, compare, effectiveness, wilson,
)

AT, NOW = 1_790_000_000, 1_790_000_000 + 60 * 86_400


def crossing(**fields) -> Crossing:
    return Crossing(**{"customer": 1, "rule": "went_cold", "at": AT, "rep": "ana", "reminded": True,
                       "held_back": False, **fields})


@pytest.mark.parametrize("fields, group", [
    ({"done_at": AT + ACT_WITHIN_S}, ("acted", None)),  # Done on the third day's last second: in time
    ({"first_ours_after": AT + 60}, ("acted", None)),
    ({"done_at": AT + ACT_WITHIN_S + 1}, ("acted_late", None)),
    ({}, ("not_acted", "never_acted")),
    ({"done_at": AT + COME_BACK_WITHIN_S + 1}, ("not_acted", "never_acted")),
    ({"snoozed_until": AT + COME_BACK_WITHIN_S + 1}, ("not_acted", "snoozed_past_window")),
    ({"held_back": True, "reminded": False, "first_ours_after": AT + 60}, ("not_acted", "held_back")),
    ({"reminded": False}, ("not_acted", "no_reminder")),
    ({"at": NOW - COME_BACK_WITHIN_S + 1, "done_at": NOW}, ("too_recent", None)),
])
def test_each_crossing_falls_in_one_group(fields, group):
    assert classify(crossing(**fields), NOW) == group


def test_the_interval_of_a_difference_is_newcombes():
    """Newcombe (1998), Statistics in Medicine 17:873, example (a): 56/70 against 48/80, method 10."""
    figures = compare(56, 70, 48, 80)
    assert figures["difference"] == 0.2
    assert figures["interval_95"] == [0.0524, 0.3339]
    assert 0 < figures["p_value"] < 0.02
    low, high = wilson(81, 263)  # Wilson (1927) as Newcombe's method 3 gives it: 0.2553 to 0.3662
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)


def test_an_empty_group_has_no_difference():
    shown = effectiveness([crossing(done_at=AT + 60, first_theirs_after=AT + 86_400)], NOW)
    assert shown["acted"] == {"crossings": 1, "came_back": 1, "rate": 1.0}
    assert (shown["difference"], shown["interval_95"], shown["p_value"]) == (None, None, None)
    assert shown["by_rep"]["ana"]["acted"]["crossings"] == 1
