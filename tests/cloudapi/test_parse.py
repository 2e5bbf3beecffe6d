"""Every recorded body parses into the expected typed events, and details survive parsing."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from cloudapi.parse import IGNORED_FIELDS, parse_body
from scoring.events import EventKind, Identity
from tests.cloudapi.expected_fixtures import EXPECTED

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
BODIES = sorted((FIXTURES / "cloudapi").glob("*.json"))
RECEIVED_AT = 1_796_000_000


def parse_fixture(stem: str):
    return parse_body(json.loads((FIXTURES / "cloudapi" / f"{stem}.json").read_bytes()), RECEIVED_AT)


def summary(parsed) -> list[tuple]:
    return [
        (item.event.kind.value, item.event.type, item.identity and (item.identity.wa_id or item.identity.user_id))
        for item in parsed.items
    ]


def test_every_fixture_has_an_expectation_and_every_expectation_a_fixture():
    stems = {path.stem for path in BODIES} | {path.stem for path in (FIXTURES / "scenarios").glob("*.jsonl")}
    assert stems == set(EXPECTED)


@pytest.mark.parametrize("path", BODIES, ids=lambda path: path.stem)
def test_fixture_parses_into_the_expected_items(path):
    parsed = parse_body(json.loads(path.read_bytes()), RECEIVED_AT)
    assert parsed.problems == []
    assert summary(parsed) == EXPECTED[path.stem]


SCENARIOS = sorted((FIXTURES / "scenarios").glob("*.jsonl"))


def test_fixture_bytes_are_as_meta_sends_them():
    bodies = [(path.name, path.read_bytes()) for path in BODIES]
    bodies += [(path.name, line) for path in SCENARIOS for line in path.read_bytes().splitlines()]
    for name, raw in bodies:
        assert raw.isascii(), name
        assert json.dumps(json.loads(raw), separators=(",", ":")).encode() == raw, name


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda path: path.stem)
def test_scenario_lines_parse_into_the_expected_items(path):
    items = []
    for line in path.read_bytes().splitlines():
        items += summary(parse_body(json.loads(line), RECEIVED_AT))
    assert items == EXPECTED[path.stem]


def test_ignored_and_unknown_fields_are_listed_not_parsed():
    for stem, expected in EXPECTED.items():
        if not expected and not stem.startswith("history"):
            parsed = parse_fixture(stem)
            assert parsed.items == [] and len(parsed.ignored_fields) >= 1
    assert "calls" in IGNORED_FIELDS
    assert parse_fixture("conversation_insights_update__future_field").ignored_fields == ["conversation_insights_update"]


def event_of(stem: str, index: int = 0):
    return parse_fixture(stem).items[index].event


def test_order_value_is_quantity_times_price_per_currency_with_decimals():
    event = event_of("messages__order")
    expected: dict[str, Decimal] = {}
    body = json.loads((FIXTURES / "cloudapi" / "messages__order.json").read_bytes())
    for product in body["entry"][0]["changes"][0]["value"]["messages"][0]["order"]["product_items"]:
        amount = Decimal(str(product["quantity"])) * Decimal(str(product["item_price"]))
        expected[product["currency"]] = expected.get(product["currency"], Decimal(0)) + amount
    assert dict(event.order_value) == expected
    assert any(amount != amount.to_integral_value() for amount in expected.values())  # decimals kept
    assert "order" in event.signals


def test_voice_notes_and_audio_files_are_told_apart():
    assert set(event_of("messages__audio__voice").signals) == {"voice", "rapport"}
    assert event_of("messages__audio__file").signals == ("audio",)


@pytest.mark.parametrize("stem", ["messages__reaction__removed_omitted", "messages__reaction__removed_empty"])
def test_a_removed_reaction_is_activity_without_the_reaction_signal(stem):
    event = event_of(stem)
    assert event.kind is EventKind.MESSAGE and event.type == "reaction"
    assert event.signals == ("reaction_removed",)
    assert set(event_of("messages__reaction").signals) == {"reaction", "rapport"}


def test_context_and_referral_become_signals():
    assert "product_inquiry" in event_of("messages__text__referred_product").signals
    assert "forwarded" in event_of("messages__text__forwarded").signals
    assert "forwarded" in event_of("messages__image__frequently_forwarded").signals
    ad = event_of("messages__text__referral_ctwa")
    assert "ad_referral" in ad.signals and ad.ad_id
    assert event_of("messages__text__referral_status_ad").ad_id


def test_interactive_replies_carry_their_title_as_text_and_tolerate_a_missing_object():
    parsed = parse_fixture("messages__interactive__list_reply")
    assert parsed.items[0].text and "interactive_reply" in parsed.items[0].event.signals
    missing = parse_fixture("messages__interactive__missing_object_error_131000")
    assert missing.items[0].event.type == "interactive"


def test_media_errors_are_kept_on_the_message():
    assert 131052 in event_of("messages__image__media_error_131052").error_codes


def test_string_and_integer_timestamps_give_the_same_instant():
    assert isinstance(event_of("messages__text__integer_timestamp").at, int)
    assert event_of("messages__text").at == int(
        json.loads((FIXTURES / "cloudapi" / "messages__text.json").read_bytes())["entry"][0]["changes"][0]["value"][
            "messages"][0]["timestamp"]
    )


def test_statuses_keep_campaign_errors_and_identity():
    sent = event_of("messages__status-sent")
    assert sent.campaign and sent.message_id and sent.key == f"s:{sent.message_id}:sent"
    failed = parse_fixture("messages__status-failed__unreachable").items[0]
    assert failed.event.error_codes == (131026,) and failed.identity.wa_id
    bsuid_only = parse_fixture("messages__status-delivered__bsuid_only").items[0].identity
    assert bsuid_only.user_id and not bsuid_only.wa_id
    for stem in ("messages__status-read__parent_recipient_user_id", "messages__status-sent__recipient_parent_user_id"):
        assert parse_fixture(stem).items[0].identity.parent_user_id


def test_system_changes_carry_old_and_new_identities():
    number = parse_fixture("messages__system__user_changed_number").items[0]
    assert number.event.kind is EventKind.IDENTITY
    assert number.identity.wa_id and number.event.new_identity.wa_id
    assert number.identity.wa_id != number.event.new_identity.wa_id
    bsuid = parse_fixture("messages__system__user_changed_user_id").items[0]
    assert bsuid.event.new_identity.user_id and bsuid.event.new_identity.user_id != bsuid.identity.user_id
    update = parse_fixture("user_id_update__change").items[0]
    assert update.event.new_identity.user_id != update.identity.user_id


def test_bsuid_only_customers_are_identified_by_bsuid_and_username():
    identity = parse_fixture("messages__text__bsuid_only").items[0].identity
    assert identity.wa_id is None and identity.user_id and identity.username


def test_profile_name_travels_with_the_event():
    item = parse_fixture("messages__text").items[0]
    assert item.event.name == item.identity.name and item.event.name


def test_one_malformed_item_costs_only_itself():
    body = json.loads((FIXTURES / "cloudapi" / "messages__text.json").read_bytes())
    messages = body["entry"][0]["changes"][0]["value"]["messages"]
    messages.insert(0, {"id": "wamid.bad", "type": "order", "order": {"product_items": "not a list"}, "from": 7,
                        "timestamp": {"not": "a number"}})
    messages.insert(0, "not even an object")
    parsed = parse_body(body, RECEIVED_AT)
    assert [item.event.type for item in parsed.items][-1] == "text"
    assert all(isinstance(item.identity, Identity) for item in parsed.items)


@pytest.mark.parametrize("body", [None, [], "text", 3, {"entry": "x"}, {"entry": [{"changes": [None, 5]}]}])
def test_bodies_of_the_wrong_shape_give_no_items_and_no_exception(body):
    assert parse_body(body, RECEIVED_AT).items == []


def test_a_lone_contact_names_a_lone_sender_whose_number_is_written_differently():
    body = json.loads((FIXTURES / "cloudapi" / "messages__text.json").read_bytes())
    value = body["entry"][0]["changes"][0]["value"]
    value["contacts"][0]["wa_id"] = "5511987654321"  # the modern form of the number
    value["messages"][0]["from"] = "551187654321"  # the legacy form Meta still sends in `from`
    value["messages"][0].pop("from_user_id", None)
    item = parse_body(body, RECEIVED_AT).items[0]
    assert item.identity.wa_id == "551187654321"
    assert item.identity.name == value["contacts"][0]["profile"]["name"]


def test_each_event_keeps_the_waba_and_number_of_its_entry():
    parsed = parse_fixture("messages__mixed__multi_entry")
    assert {(item.event.waba_id, item.event.phone_number_id) for item in parsed.items} == {
        ("102290129340398", "106540352242922"), ("104996122399160", "113904561287344")}
    assert all(item.event.to_record()["waba"] == item.event.waba_id for item in parsed.items)


def text_body(timestamp, name: str = "Ana", body: str = "hi", **change) -> dict:
    value = {"metadata": {"phone_number_id": "106540352242922"}, "contacts": [{"profile": {"name": name}, "wa_id": "1650"}],
             "messages": [{"from": "1650", "id": "wamid.1", "timestamp": timestamp, "type": "text", "text": {"body": body}}]}
    return {"entry": [{"id": "1", "changes": [{"field": "messages", "value": value, **change}]}]}


@pytest.mark.parametrize("timestamp", ["1795796405000", 2**63, -(2**63), "1e400", "nan", "0", 4_102_444_800, True, [1], "x"])
def test_a_timestamp_that_is_no_plausible_instant_is_the_arrival_time(timestamp):
    (item,) = parse_body(text_body(timestamp), RECEIVED_AT).items
    assert item.event.at == RECEIVED_AT


@pytest.mark.parametrize("timestamp", ["1230768000", 4_102_444_799, "1794328383.0"])
def test_the_first_and_last_plausible_instants_are_kept(timestamp):
    (item,) = parse_body(text_body(timestamp), RECEIVED_AT).items
    assert item.event.at == int(float(timestamp))


def test_text_is_cleaned_of_what_no_store_can_hold():
    (item,) = parse_body(text_body("1794328383", name="\x00A\ud800na\x00", body="how\x00 much\udfff"), RECEIVED_AT).items
    assert (item.event.name, item.identity.name, item.text) == ("A\ufffdna", "A\ufffdna", "how much\ufffd")


def test_a_field_that_is_not_a_string_is_an_unknown_field_not_a_failure():
    body = text_body("1794328383")
    body["entry"][0]["changes"] += [{"field": ["messages"], "value": {}}, {"field": {"x": 1}}, {"field": 10**5000}]
    parsed = parse_body(body, RECEIVED_AT)
    assert [item.event.key for item in parsed.items] == ["m:wamid.1"]
    assert parsed.ignored_fields == ["None", "None", "None"]


def test_error_codes_outside_any_integer_column_are_no_codes():
    status = {"id": "w", "status": "failed", "timestamp": "1794328383", "recipient_id": "1650",
              "errors": [{"code": 2**63}, {"code": -1}, {"code": "131026"}, {"code": True}, {"code": 1.5}, {"code": 131050}]}
    body = {"entry": [{"changes": [{"field": "messages", "value": {"statuses": [status]}}]}]}
    (item,) = parse_body(body, RECEIVED_AT).items
    assert item.event.error_codes == (131026, 131050)


@pytest.mark.parametrize("timestamp", ["1795796405000", "-5", None, "x"])
def test_keys_that_hold_an_instant_stay_the_same_when_the_instant_falls_back_to_arrival(timestamp):
    """Redelivered later, the same item must give the same key, or it would count twice."""
    value = {"metadata": {"phone_number_id": "1"}, "contacts": [{"wa_id": "1650"}],
             "messages": [{"from": "1650", "timestamp": timestamp, "type": "text", "text": {"body": "hi"}}],
             "user_preferences": [{"wa_id": "1650", "category": "marketing_messages", "value": "stop",
                                   "timestamp": timestamp}],
             "user_id_update": [{"wa_id": "1650", "timestamp": timestamp,
                                 "user_id": {"previous": "US.1", "current": "US.2"}}],
             "message_echoes": [{"to": "1650", "timestamp": timestamp, "type": "text", "text": {"body": "ok"}}]}
    body = {"entry": [{"changes": [{"field": field, "value": value}
                                   for field in ("messages", "user_preferences", "user_id_update", "smb_message_echoes")]}]}
    first, again = (parse_body(body, received_at) for received_at in (RECEIVED_AT, RECEIVED_AT + 3600))
    assert len(first.items) == 4
    assert [item.event.key for item in first.items] == [item.event.key for item in again.items]
    assert [item.event.at for item in again.items] == [RECEIVED_AT + 3600] * 4


def test_an_id_less_message_keeps_a_key_of_its_own_beside_another_of_the_same_kind_and_instant():
    value = {"metadata": {"phone_number_id": "1"},
             "messages": [{"from": "1650", "timestamp": "1794328383", "type": "text", "text": {"body": body}}
                          for body in ("hi", "there")]}
    parsed = parse_body({"entry": [{"changes": [{"field": "messages", "value": value}]}]}, RECEIVED_AT)
    assert len({item.event.key for item in parsed.items}) == 2


def test_repeated_preferences_whose_instants_fell_back_stay_apart_when_their_timestamps_differ():
    """stop, resume, stop, each with a millisecond timestamp: three events. (With no timestamp at
    all, two identical items cannot be told from a redelivery: they count once.)"""
    preferences = [{"wa_id": "1650", "category": "marketing_messages", "value": value, "timestamp": stamp}
                   for value, stamp in (("stop", "1795796405000"), ("resume", "1795796406000"),
                                        ("stop", "1795796407000"))]
    value = {"metadata": {"phone_number_id": "1"}, "user_preferences": preferences}
    parsed = parse_body({"entry": [{"changes": [{"field": "user_preferences", "value": value}]}]}, RECEIVED_AT)
    assert len({item.event.key for item in parsed.items}) == 3


def test_a_back_fill_message_without_a_timestamp_keeps_its_key_when_delivered_again():
    body = json.loads((FIXTURES / "cloudapi" / "history__messages.json").read_bytes())
    for thread in body["entry"][0]["changes"][0]["value"]["history"][0]["threads"]:
        for message in thread["messages"]:
            del message["timestamp"]
    keys = [[item.event.key for item in parse_body(body, at).items if item.event.kind.value != "backfill"]
            for at in (RECEIVED_AT, RECEIVED_AT + 3600)]
    assert keys[0] == keys[1] and len(set(keys[0])) == len(keys[0])
