"""The customer fold, with plain values: no Redis, no database."""

from __future__ import annotations

import itertools
import random
from decimal import Decimal

from scoring.customer import CustomerState, combine, current_identifiers, event_order, fold
from scoring.events import Event, EventKind, Identity

T0 = 1_794_000_000  # 2026-11-06T...Z
HOUR = 3600


def message(n: int, at: int, type_: str = "text", **fields) -> Event:
    return Event(key=f"m:{n}", kind=EventKind.MESSAGE, type=type_, at=at, message_id=f"in{n}", **fields)


def status(message_id: str, value: str, at: int, **fields) -> Event:
    return Event(key=f"s:{message_id}:{value}", kind=EventKind.STATUS, type=value, at=at, message_id=message_id, **fields)


def test_inbound_messages_are_counted_by_type_week_and_day():
    state, _ = fold([message(1, T0), message(2, T0 + 60, "image", signals=("image",)), message(3, T0 + 3 * 86400)])
    assert state.inbound == 3
    assert state.inbound_by_type == {"text": 2, "image": 1}
    assert state.signals == {"image": 1}
    assert state.active_days == 2
    assert sum(state.interactions_by_week().values()) == 3
    assert (state.first_inbound_at, state.last_inbound_at) == (T0, T0 + 3 * 86400)


def test_statuses_count_each_message_once_at_each_level_whatever_their_order():
    events = [
        status("out1", "sent", T0),
        status("out1", "delivered", T0 + 5),
        status("out1", "read", T0 + 50),
        status("out2", "sent", T0 + 100),
        status("out2", "read", T0 + 160),  # delivered skipped, as Meta does when both happen together
        status("out3", "sent", T0 + 200),
        status("out3", "failed", T0 + 210, error_codes=(131047,)),
    ]
    expected, _ = fold(events)
    assert (expected.outbound, expected.delivered, expected.read, expected.failed) == (3, 2, 2, 1)
    assert expected.errors == {"131047": 1}
    for shuffled in itertools.islice(itertools.permutations(events), 0, 5000, 97):
        assert fold(shuffled)[0] == expected


def test_a_status_arriving_again_changes_nothing():
    state, outbound = fold([status("out1", "sent", T0), status("out1", "read", T0 + 9)])
    before = state.to_json()
    state.apply(status("out1", "delivered", T0 + 10), outbound)  # later but lower: rank never falls
    after = state.to_json()
    assert after["delivered"] == before["delivered"] == 1
    assert after["read"] == 1


def test_replies_and_response_times_follow_the_turns_of_the_conversation():
    events = [
        status("out1", "sent", T0),  # our campaign
        message(1, T0 + 2 * HOUR),  # their reply, 2 h later
        message(2, T0 + 2 * HOUR + 60),  # same turn: not another reply
        status("out2", "sent", T0 + 3 * HOUR),  # our answer, 1 h after their first message
        message(3, T0 + 4 * HOUR),  # reply again
    ]
    state, _ = fold(events)
    assert state.replies == 2
    assert state.reply_latency_total == 2 * HOUR + HOUR
    assert (state.our_responses, state.response_time_total) == (1, HOUR)
    assert state.awaiting_reply_since == T0 + 4 * HOUR


def test_incremental_application_equals_a_full_refold():
    rng = random.Random(7)
    events = [message(n, T0 + rng.randint(0, 10 * 86400), rng.choice(["text", "image", "reaction"])) for n in range(30)]
    events += [status(f"out{n}", rng.choice(["sent", "delivered", "read"]), T0 + rng.randint(0, 10 * 86400)) for n in range(30)]
    ordered = sorted(events, key=event_order)
    incremental, outbound = CustomerState(), {}
    for event in ordered:
        assert incremental.comes_after(event)
        incremental.apply(event, outbound)
    assert incremental == fold(reversed(events))[0]


def test_an_older_event_is_not_applicable_incrementally():
    state, _ = fold([message(2, T0 + 10)])
    assert not state.comes_after(message(1, T0))
    assert not state.comes_after(message(1, T0 + 10))  # same instant, earlier key
    assert state.comes_after(message(3, T0 + 10))


def test_unreachable_after_131026_until_the_customer_writes_again():
    failed = status("out1", "failed", T0, error_codes=(131026,))
    assert fold([failed])[0].unreachable
    assert not fold([failed, message(1, T0 + 60)])[0].unreachable
    assert fold([message(1, T0 - 60), failed])[0].unreachable


def test_consent_follows_the_latest_preference_whatever_the_arrival_order():
    stop = Event(key="p:stop", kind=EventKind.PREFERENCE, type="stop", at=T0)
    resume = Event(key="p:resume", kind=EventKind.PREFERENCE, type="resume", at=T0 + 60)
    opt_out_failure = status("out1", "failed", T0 + 120, error_codes=(131050,))
    assert not fold([resume, stop])[0].opted_out
    state, _ = fold([resume, stop, opt_out_failure])
    assert state.opted_out and (state.opt_outs, state.opt_ins) == (1, 1)


def test_orders_add_up_per_currency_with_their_decimals():
    order = message(1, T0, "order", signals=("order",), order_value=(("EUR", Decimal("23.97")), ("USD", Decimal("85"))), order_items=4)
    second = message(2, T0 + 60, "order", signals=("order",), order_value=(("EUR", Decimal("0.03")),), order_items=1)
    state, _ = fold([order, second])
    assert state.orders == 2 and state.order_items == 5
    assert state.order_value == {"EUR": "24.00", "USD": "85"}


def test_echoes_count_as_our_messages_but_revokes_do_not():
    echo = Event(key="o:1", kind=EventKind.ECHO, type="text", at=T0, message_id="out1")
    revoke = Event(key="o:2", kind=EventKind.ECHO, type="revoke", at=T0 + 5, message_id="out2")
    state, outbound = fold([echo, revoke, status("out1", "read", T0 + 9)])
    assert (state.outbound, state.read) == (1, 1)
    assert set(outbound) == {"out1"}


def test_profile_fields_follow_the_latest_event():
    older = message(1, T0, name="Old Name")
    newer = message(2, T0 + 60, name="New Name", username="newname", phone_number_id="111")
    assert fold([newer, older])[0].name == "New Name"
    assert fold([newer, older])[0].phone_number_id == "111"


def test_state_and_event_records_survive_serialisation():
    events = [
        message(1, T0, "order", signals=("order", "question"), order_value=(("EUR", Decimal("7.99")),), order_items=1,
                ad_id="ad1", name="Ana"),
        status("out1", "failed", T0 + 1, error_codes=(131026,), campaign="spring"),
        Event(key="u:1", kind=EventKind.IDENTITY, type="user_id_update", at=T0 + 2,
              new_identity=Identity(user_id="ES.2")),
    ]
    for event in events:
        record = event.to_record()
        assert Event.from_record(event.key, event.kind.value, event.type, event.at, event.phone_number_id, record) == event
    state, _ = fold(events)
    assert CustomerState.from_json(state.to_json()) == state


def test_the_identifier_an_identity_change_names_is_current_at_its_instant_and_until_a_newer_one():
    aliases = [("wa_id", "1219", 100), ("user_id", "US.9", 100), ("user_id", "US.1", 100)]
    assert current_identifiers(aliases, {}) == {"wa_id": "1219", "user_id": "US.9"}  # a tie: only the order of values
    assert current_identifiers(aliases, {"user_id": [100, "US.1"]}) == {"wa_id": "1219", "user_id": "US.1"}
    later = aliases + [("user_id", "US.5", 200)]
    assert current_identifiers(later, {"user_id": [100, "US.1"]})["user_id"] == "US.5"
    assert current_identifiers(aliases, {"user_id": [100, "US.gone"]})["user_id"] == "US.9"  # not one of theirs


def conversation(seed: int, threads: int = 40) -> list[list[Event]]:
    """Threads of one customer's conversation over a few weeks: a message of theirs (some asking,
    some ordering) or one of ours with its statuses."""
    rng, threads_of_events = random.Random(seed), []
    for n in range(threads):
        at = T0 + rng.randrange(30 * 86400)
        if rng.random() < 0.5:
            signals = rng.choice([(), ("question",), ("price_inquiry", "question")])
            extra = {"order_value": (("EUR", Decimal("12.50")),), "order_items": 2} if rng.random() < 0.1 else {}
            threads_of_events.append([message(n, at, signals=signals, **extra)])
        else:
            levels = ["sent", "delivered", "read"][: rng.randrange(1, 4)]
            threads_of_events.append([status(f"out{n}", level, at + i) for i, level in enumerate(levels)])
    return threads_of_events


def test_combining_the_folds_of_two_halves_keeps_every_count_and_instant():
    """(Not the turns between the halves: replies and response times are counted within each.)"""
    for seed in range(20):
        threads = conversation(seed)
        rng = random.Random(seed)
        halves = ([], [])
        for thread in threads:
            halves[rng.random() < 0.5].extend(thread)
        whole, _ = fold([event for thread in threads for event in thread])
        combined = combine(fold(halves[0])[0], fold(halves[1])[0])
        for name in ("inbound", "inbound_by_type", "signals", "days", "first_inbound_at", "last_inbound_at", "outbound",
                     "delivered", "read", "failed", "first_outbound_at", "last_outbound_at", "orders", "order_value",
                     "order_items", "first_seen_at", "last_event_at", "last_event_key", "last_type", "signal_log",
                     "order_log", "last_turn"):
            assert getattr(combined, name) == getattr(whole, name), (seed, name)


def test_combining_with_nothing_changes_nothing():
    state, _ = fold([event for thread in conversation(7) for event in thread])
    assert combine(state, CustomerState()) == state == combine(CustomerState(), state)
