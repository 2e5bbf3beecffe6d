"""The batch planner's decisions, with plain values: whom events belong to, and how each customer
is folded."""

from __future__ import annotations

from dataclasses import replace

from scoring.customer import CustomerState
from scoring.events import Event, EventKind, Identity, Item
from scoring.planner import (
    Approach, KnownOwners, Snapshot, aliases_of, folds_forward, plan_customer, refold_start, resolve_identities,
    rewind_instant, track_before,
)
from scoring.tiers import REORDER_WINDOW_S, Cause, Tier, TierRules, TierTrack, fold_with_tiers, outbound_as_of
from tests.scoring.test_customer import T0, message, status

RULES = TierRules()
DAY = 86_400


def said_by(wa_id: str, event: Event, **identity) -> Item:
    return Item(Identity(wa_id=wa_id, **identity), event)


# ---- identity ---------------------------------------------------------------------------------


def test_a_username_identifies_only_when_nothing_stronger_is_given_and_overlong_values_never():
    assert aliases_of(Identity(wa_id="34600111222", username="@ana")) == [("wa_id", "34600111222")]
    assert aliases_of(Identity(username="@ana")) == [("username", "@ana")]
    assert aliases_of(Identity(wa_id="3" * 33, user_id="ES.1")) == [("user_id", "ES.1")]
    assert aliases_of(None) == []


def test_people_not_known_become_new_customers_in_the_order_they_are_met():
    items = [said_by("111", message(1, T0)), said_by("222", message(2, T0 + 1)), said_by("111", message(3, T0 + 2))]
    resolution = resolve_identities(items, KnownOwners())
    assert resolution.customer_of == [-1, -2, -1]
    assert resolution.new_customers == {-1: ("111", T0), -2: ("222", T0 + 1)}
    assert resolution.new_aliases == {("wa_id", "111"), ("wa_id", "222")}
    assert not resolution.merged and not resolution.merged_into


def test_an_item_naming_two_stored_customers_merges_the_newer_into_the_older():
    known = KnownOwners({("wa_id", "111"): 7, ("user_id", "US.5"): 3}, {("wa_id", "111"): T0, ("user_id", "US.5"): T0})
    items = [said_by("111", message(1, T0 + 10)), said_by("111", message(2, T0 + 20), user_id="US.5")]
    resolution = resolve_identities(items, known)
    assert resolution.customer_of == [3, 3]  # the first item's customer, as it ended
    assert resolution.merged_into == {7: 3} and resolution.merged == {3}
    assert resolution.aliases_by_customer() == {3: {("wa_id", "111"): T0, ("user_id", "US.5"): T0}}


def test_a_new_customer_met_twice_under_two_identifiers_is_one_customer_with_both():
    items = [said_by("111", message(1, T0)), Item(Identity(user_id="US.9"), message(2, T0 + 1)),
             said_by("111", message(3, T0 + 2), user_id="US.9")]
    resolution = resolve_identities(items, KnownOwners())
    assert resolution.customer_of == [-1, -1, -1]
    assert resolution.new_customers == {-1: ("111", T0)}
    assert resolution.merged == {-1} and resolution.merged_into == {}  # nothing stored to move


def test_a_number_change_attaches_the_new_number_to_the_customer_and_a_status_finds_its_message():
    change = Event(key="nid", kind=EventKind.IDENTITY, type="number_change", at=T0 + 5,
                   new_identity=Identity(wa_id="999"))
    known = KnownOwners({("wa_id", "111"): 4}, {("wa_id", "111"): T0}, {"out1": 4})
    items = [said_by("111", change), Item(None, status("out1", "read", T0 + 6)), Item(None, status("unknown", "read", T0))]
    resolution = resolve_identities(items, known)
    assert resolution.customer_of == [4, 4, None]
    assert resolution.alias_owner[("wa_id", "999")] == 4 and ("wa_id", "999") in resolution.new_aliases


def test_an_alias_seen_before_its_recorded_first_instant_is_moved_earlier():
    known = KnownOwners({("wa_id", "111"): 4}, {("wa_id", "111"): T0})
    resolution = resolve_identities([said_by("111", message(1, T0 - 60))], known)
    assert resolution.earlier_aliases == {("wa_id", "111")} and resolution.alias_first_at[("wa_id", "111")] == T0 - 60


# ---- how a customer is folded -----------------------------------------------------------------


def test_new_events_after_the_last_one_applied_fold_forward_and_a_late_one_or_a_merge_does_not():
    state = fold_with_tiers([message(1, T0), message(2, T0 + 100)], RULES, None).state
    assert folds_forward(CustomerState(), [message(1, T0)], merged=False)
    assert folds_forward(state, [message(3, T0 + 200)], merged=False)
    assert not folds_forward(state, [message(3, T0 + 50)], merged=False)
    assert not folds_forward(state, [message(3, T0 + 200)], merged=True)


def test_a_refold_starts_at_the_checkpoint_only_when_every_new_event_comes_after_it():
    events = [message(n, T0 + n * 600) for n in range(1, 12)]
    checkpoint = fold_with_tiers(events, RULES, None).checkpoint
    assert checkpoint.through == T0 + 11 * 600 - REORDER_WINDOW_S
    assert refold_start(checkpoint, [message(20, checkpoint.through + 1)], merged=False) is checkpoint
    assert refold_start(checkpoint, [message(20, checkpoint.through)], merged=False) is None
    assert refold_start(checkpoint, [message(20, checkpoint.through + 1)], merged=True) is None
    assert refold_start(None, [message(20, T0)], merged=False) is None


def test_time_is_rewound_when_a_new_event_comes_before_a_change_time_made():
    assert rewind_instant([message(1, T0 + 10)], tier_since=T0 + 20) == T0 + 10
    assert rewind_instant([message(1, T0 + 30)], tier_since=T0 + 20) is None
    assert rewind_instant([message(1, T0 + 30)], tier_since=None) is None
    history = [("warm", T0), ("cold", T0 + 30 * DAY), ("dead", T0 + 90 * DAY)]
    assert track_before(history, T0 + 40 * DAY) == TierTrack(Tier.COLD, T0 + 30 * DAY)
    assert track_before(history, T0 - 1) == TierTrack()


def six_in_a_week() -> list[Event]:
    return [message(n, T0 + n * DAY) for n in range(6)]


def test_a_forward_plan_is_what_folding_everything_at_once_gives():
    now = T0 + 60 * DAY
    earlier = fold_with_tiers(six_in_a_week()[:3], RULES, now=T0 + 3 * DAY)
    fresh = six_in_a_week()[3:]
    plan = plan_customer(Snapshot(earlier.state, earlier.track, {}), fresh, False, RULES, now)
    whole = fold_with_tiers(six_in_a_week(), RULES, now)
    assert plan.state == whole.state and plan.track == whole.track
    assert plan.changes == [change for change in whole.changes if change.at > T0 + 3 * DAY]
    assert plan.history_after is None and not plan.checkpoint_changed


def test_a_refold_from_the_checkpoint_replaces_the_history_after_it_and_keeps_recorded_causes():
    newest = T0 + 6 * DAY
    stored = six_in_a_week() + [status("out1", "sent", newest - 2 * REORDER_WINDOW_S), message(9, newest)]
    before = fold_with_tiers(stored, RULES, now=newest)
    start = before.checkpoint
    late = [status("out1", "delivered", newest - 60)]
    recorded = {(change.to_tier.value, change.at): "rebuild" for change in before.changes if change.at > start.through}
    snapshot = Snapshot(before.state, before.track, outbound_as_of([e for e in stored if e.at <= start.through]),
                        Approach.FROM_CHECKPOINT, start=start, stored_checkpoint=start,
                        stored=[e for e in stored if e.at > start.through], recorded=recorded)
    plan = plan_customer(snapshot, late, False, RULES, T0 + 40 * DAY)
    whole = fold_with_tiers(stored + late, RULES, T0 + 40 * DAY)
    assert plan.state == whole.state and plan.state.delivered == 1
    assert plan.history_after == start.through
    kept = [replace(c, cause=Cause.REBUILD) if (c.to_tier.value, c.at) in recorded else c
            for c in whole.changes if c.at > start.through]
    assert plan.changes == kept
    assert plan.checkpoint == whole.checkpoint and plan.checkpoint_changed == (whole.checkpoint != start)


def test_a_merge_refolds_whole_and_names_the_changes_it_finds_for_the_first_time():
    stored = [message(1, T0), message(2, T0 + 1)]
    snapshot = Snapshot(CustomerState(), TierTrack(), {}, Approach.WHOLE, stored=stored,
                        recorded={("warm", T0): "event"})
    plan = plan_customer(snapshot, [message(3, T0 + 2)], True, RULES, T0 + 40 * DAY)
    assert plan.history_after == 0 and plan.checkpoint_changed
    assert [(c.to_tier, c.cause) for c in plan.changes] == [(Tier.WARM, Cause.EVENT), (Tier.COLD, Cause.MERGE)]
