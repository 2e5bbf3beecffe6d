"""Tiers, thresholds and tier history with plain values."""

from __future__ import annotations

import pytest

from scoring.customer import CustomerState
from scoring.events import Event, EventKind
from scoring.planner import track_before
from scoring.tiers import (
    DAY,
    PRESETS,
    REORDER_WINDOW_S,
    Cause,
    Floor,
    Tier,
    TierChange,
    TierFacts,
    TierRules,
    TierTrack,
    apply_events,
    classify,
    fold_with_tiers,
    join_floors,
    outbound_as_of,
    raise_floor,
)
from tests.scoring.test_customer import T0, message, status

RULES = TierRules()


def failure(message_id: str, at: int, code: int) -> Event:
    return Event(key=f"s:{message_id}:failed", kind=EventKind.STATUS, type="failed", at=at, message_id=message_id,
                 error_codes=(code,))


@pytest.mark.parametrize(
    "interactions, age_days, tier",
    [
        (5, 0, Tier.HOT), (5, 6.99, Tier.HOT), (5, 7, Tier.WARM), (4, 1, Tier.WARM), (1, 29.99, Tier.WARM),
        (9, 30, Tier.COLD), (9, 89.99, Tier.COLD), (9, 90, Tier.DEAD), (9, 400, Tier.DEAD),
    ],
)
def test_the_default_thresholds(interactions, age_days, tier):
    facts = TierFacts(interactions, T0, unreachable=False)
    assert classify(facts, T0 + int(age_days * DAY), RULES) is tier


def test_unreachable_is_dead_and_never_interacting_is_unengaged():
    assert classify(TierFacts(40, T0, unreachable=True), T0 + 60, RULES) is Tier.DEAD
    assert classify(TierFacts(0, None, unreachable=False), T0, RULES) is Tier.UNENGAGED


def test_presets_and_overrides():
    assert TierRules.from_config({}) == PRESETS["default"] == TierRules(7, 30, 90, 5)
    assert TierRules.from_config({"preset": "b2b_long_cycle"}) == TierRules(14, 90, 180, 5)
    assert TierRules.from_config({"preset": "fast_moving", "hot_min_interactions": 3}) == TierRules(3, 14, 45, 3)


@pytest.mark.parametrize(
    "table, named",
    [
        ({"preset": "retail"}, "preset = 'retail'"),
        ({"hot_days": 0}, "hot_days = 0"),
        ({"warm_days": "30"}, "warm_days = '30'"),
        ({"cold_days": True}, "cold_days = True"),
        ({"hot_days": 40}, "hot_days < warm_days < cold_days"),
        ({"hot_day": 3}, "unknown keys ['hot_day']"),
    ],
)
def test_a_bad_threshold_is_refused_with_its_name(table, named):
    with pytest.raises(ValueError, match=named.replace("[", r"\[").replace("]", r"\]")):
        TierRules.from_config(table)


def six_in_a_week() -> list[Event]:
    return [message(n, T0 + n * DAY) for n in range(6)]


def test_six_messages_in_a_week_then_silence_then_one_more():
    last = T0 + 5 * DAY
    events = six_in_a_week() + [message(7, last + 130 * DAY)]
    _, _, track, changes = fold_with_tiers(events, RULES, now=last + 131 * DAY)[:4]
    assert changes == [
        TierChange(None, Tier.WARM, T0, Cause.EVENT),
        TierChange(Tier.WARM, Tier.HOT, T0 + 4 * DAY, Cause.EVENT),
        TierChange(Tier.HOT, Tier.WARM, last + 7 * DAY, Cause.TIME),
        TierChange(Tier.WARM, Tier.COLD, last + 30 * DAY, Cause.TIME),
        TierChange(Tier.COLD, Tier.DEAD, last + 90 * DAY, Cause.TIME),
        TierChange(Tier.DEAD, Tier.HOT, last + 130 * DAY, Cause.EVENT),
    ]
    assert (track.tier, track.since) == (Tier.HOT, last + 130 * DAY)


def test_time_moved_in_steps_gives_the_history_of_one_big_step():
    state, outbound, track, changes = fold_with_tiers(six_in_a_week(), RULES, now=T0 + 5 * DAY)[:4]
    facts = TierFacts.of(state)
    stepped = list(changes)
    for day in range(6, 200, 3):
        stepped += track.advance(facts, T0 + day * DAY, RULES, inclusive=True)
    _, _, _, at_once = fold_with_tiers(six_in_a_week(), RULES, now=T0 + 199 * DAY)[:4]
    assert stepped == at_once


def test_next_change_is_the_next_threshold_that_changes_the_tier():
    state, _, track, _ = fold_with_tiers([message(1, T0), message(2, T0 + 60)], RULES, now=T0 + 120)[:4]
    assert track.tier is Tier.WARM
    assert track.next_change_at(TierFacts.of(state), RULES) == T0 + 60 + 30 * DAY  # 7 days changes nothing: not hot
    dead = TierTrack(Tier.DEAD, T0 + 200 * DAY)
    assert dead.next_change_at(TierFacts.of(state), RULES) is None


def test_a_failure_with_131026_makes_the_customer_dead_for_that_cause_until_they_write():
    events = [message(1, T0), status("out1", "sent", T0 + 100), failure("out1", T0 + 200, 131026), message(2, T0 + 900)]
    _, _, _, changes = fold_with_tiers(events, RULES, now=T0 + 1000)[:4]
    assert changes == [
        TierChange(None, Tier.WARM, T0, Cause.EVENT),
        TierChange(Tier.WARM, Tier.DEAD, T0 + 200, Cause.UNREACHABLE),
        TierChange(Tier.DEAD, Tier.WARM, T0 + 900, Cause.EVENT),
    ]


def test_a_customer_we_reached_who_never_answered_is_unengaged():
    _, _, track, changes = fold_with_tiers([status("out1", "delivered", T0)], RULES, now=T0 + 400 * DAY)[:4]
    assert changes == [TierChange(None, Tier.UNENGAGED, T0, Cause.EVENT)]
    assert track.tier is Tier.UNENGAGED


def test_a_threshold_falling_on_the_second_of_a_status_is_a_change_of_time():
    state, outbound, track, _ = fold_with_tiers(six_in_a_week(), RULES, now=T0 + 5 * DAY)[:4]
    changes = apply_events(state, outbound, track, [status("out1", "sent", T0 + 12 * DAY)], RULES, now=None)
    assert changes == [TierChange(Tier.HOT, Tier.WARM, T0 + 12 * DAY, Cause.TIME)]


def test_folding_forward_in_pieces_gives_the_history_of_folding_at_once():
    events = six_in_a_week() + [message(7, T0 + 50 * DAY), message(8, T0 + 51 * DAY)]
    _, _, _, at_once = fold_with_tiers(events, RULES, now=T0 + 60 * DAY)[:4]
    state, outbound, track, pieces = fold_with_tiers(events[:3], RULES, now=T0 + 3 * DAY)[:4]
    pieces += apply_events(state, outbound, track, events[3:7], RULES, now=T0 + 50 * DAY + 5)
    pieces += apply_events(state, outbound, track, events[7:], RULES, now=T0 + 60 * DAY)
    assert pieces == at_once


def test_a_late_event_folded_from_the_checkpoint_gives_what_a_whole_refold_gives():
    """The checkpoint keeps the fold an hour before the newest event; an event arriving late, but
    after it, refolds from there with the outbound messages as their earlier statuses left them."""
    newest = T0 + 6 * DAY
    events = six_in_a_week() + [
        status("out1", "sent", T0 + 5 * DAY), status("out1", "delivered", T0 + 5 * DAY + 60),
        status("out2", "sent", newest - 2 * REORDER_WINDOW_S), message(9, newest),
    ]
    checkpoint = fold_with_tiers(events, RULES, now=newest).checkpoint
    assert checkpoint is not None and checkpoint.through == newest - REORDER_WINDOW_S
    late = [status("out1", "read", newest - 30), status("out2", "delivered", newest - 60)]
    everything = events + late
    whole = fold_with_tiers(everything, RULES, now=T0 + 40 * DAY)
    after = [event for event in everything if event.at > checkpoint.through]
    before_touched = [e for e in everything if e.at <= checkpoint.through and e.message_id in {"out1", "out2"}]
    partial = fold_with_tiers(after, RULES, T0 + 40 * DAY, checkpoint, outbound_as_of(before_touched))
    assert partial.state == whole.state and partial.state.read == 1 and partial.state.delivered == 2
    assert partial.track == whole.track
    assert partial.changes == [change for change in whole.changes if change.at > checkpoint.through]
    assert partial.outbound == {mid: whole.outbound[mid] for mid in ("out1", "out2")}
    assert partial.checkpoint == whole.checkpoint


def test_no_checkpoint_until_an_event_is_older_than_the_window():
    events = [message(1, T0), message(2, T0 + REORDER_WINDOW_S - 1)]
    assert fold_with_tiers(events, RULES, now=T0 + 2 * REORDER_WINDOW_S).checkpoint is None


def test_a_refold_from_the_floor_gives_what_a_whole_refold_gives():
    """Retention folds the events up to an instant into the floor and deletes them; a refold of
    what is left, from the floor, ends as a refold of everything, our messages included (one sent
    before the floor is read after it)."""
    now = T0 + 60 * DAY
    events = six_in_a_week() + [status("out1", "sent", T0 + 6 * DAY), status("out1", "delivered", T0 + 6 * DAY + 60),
                                message(8, T0 + 20 * DAY), status("out1", "read", T0 + 21 * DAY), message(9, T0 + 22 * DAY)]
    whole = fold_with_tiers(events, RULES, now=now)
    through = T0 + 10 * DAY
    history = [(change.to_tier.value, change.at) for change in whole.changes]
    floor = raise_floor(None, [event for event in events if event.at <= through], through, track_before(history, through))
    assert floor.through == through and floor.outbound["out1"][1] == 2  # delivered, as the floor's events left it
    refold = fold_with_tiers([event for event in events if event.at > through], RULES, now, floor.start(),
                             outbound_as_of([], floor))
    assert refold.state == whole.state and refold.track == whole.track
    assert refold.changes == [change for change in whole.changes if change.at > through]
    assert Floor.from_json(floor.to_json()) == floor


def test_joining_floors_adds_up_what_each_holds_and_what_no_floor_holds():
    early = raise_floor(None, [message(1, T0), status("out1", "sent", T0 + 60)], T0 + DAY, TierTrack(Tier.WARM, T0))
    later = raise_floor(None, [message(2, T0 + 2 * DAY, signals=("question",))], T0 + 3 * DAY, TierTrack(Tier.WARM, T0))
    joined = join_floors([early, later], [status("out1", "read", T0 + 2 * DAY), message(3, T0 + 3 * DAY)], RULES)
    state = CustomerState.from_json(joined.state)
    assert joined.through == T0 + 3 * DAY
    assert (state.inbound, state.outbound, state.read, state.signals) == (3, 1, 1, {"question": 1})
    assert joined.outbound["out1"][1] == 3
    assert (joined.tier, joined.since) == (Tier.WARM, T0)  # three interactions: warm, as the later floor said
