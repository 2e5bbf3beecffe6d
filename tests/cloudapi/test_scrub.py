"""Recorded bodies scrubbed as one recording: nothing personal left, all the parser reads kept, and
the same fake for the same original everywhere."""

from __future__ import annotations

import json
import re
import tomllib
import unicodedata
from collections import Counter
from pathlib import Path

import phonenumbers
import pytest

from cloudapi.parse import parse_body
from cloudapi.scrub import Scrubber
from scoring.signals import SignalMatcher

ROOT = Path(__file__).resolve().parents[2]
KEYWORDS = tomllib.loads((ROOT / "scoring" / "keywords.toml").read_text())
MATCHER = SignalMatcher.from_keywords({name: table["keywords"] for name, table in KEYWORDS.items()})
BODIES = [(path.name, path.read_bytes()) for path in sorted((ROOT / "fixtures" / "cloudapi").glob("*.json"))] + [
    (f"{path.name}:{number}", line) for path in sorted((ROOT / "fixtures" / "scenarios").glob("*.jsonl"))
    for number, line in enumerate(path.read_bytes().splitlines(), 1)]
RECEIVED_AT = 1_796_000_000
SHIFT = 3 * 86_400 + 17

PHONES = {"wa_id", "from", "to", "recipient_id", "recipient_participant_id", "new_wa_id", "customer", "phone",
          "phone_number"}
BSUIDS = {"user_id", "from_user_id", "recipient_user_id", "to_user_id", "parent_user_id", "from_parent_user_id",
          "recipient_parent_user_id", "parent_recipient_user_id", "to_parent_user_id", "previous", "current"}
NAMES = {"formatted_name", "first_name", "last_name", "middle_name", "full_name"}
TEXTS = {"body", "caption", "title", "description", "address", "text"}
KEPT = {"display_phone_number", "phone_number_id", "biz_opaque_callback_data", "emoji", "code", "type", "status",
        "currency", "item_price", "quantity", "catalog_id", "product_retailer_id", "source_id", "payload"}
INSTANTS = {"timestamp", "time", "expiration_timestamp", "created_timestamp", "start", "end"}


def leaves(node, path=()):
    """(path of keys, value) of every string, number, boolean and null in a decoded body."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from leaves(value, path + (key,))
    elif isinstance(node, list):
        for value in node:
            yield from leaves(value, path)
    else:
        yield path, node


def pairs(scrubbed):
    """(path, original, fake) of every leaf, the scrubbed body walked beside its original."""
    for name, raw, out in scrubbed:
        before, after = list(leaves(json.loads(raw))), list(leaves(json.loads(out)))
        assert [path for path, _ in before] == [path for path, _ in after], name
        yield from ((path, old, new) for (path, old), (_, new) in zip(before, after))


def business_numbers() -> set[str]:
    return {value for _, raw in BODIES for path, value in leaves(json.loads(raw)) if path[-1] == "display_phone_number"}


def personal_values(document) -> set[str]:
    """What names a customer in an original body, collected without the scrubber's table: numbers,
    BSUIDs, usernames, names (profiles, cards, address books), texts the parser reads, e-mails, and
    phone numbers written anywhere."""
    found = {item.text for item in parse_body(document, RECEIVED_AT).items if item.text}
    for path, value in leaves(document):
        if not isinstance(value, str) or not value:
            continue
        if path[-1] in PHONES | BSUIDS | NAMES | {"username", "email", "vcard", "street", "sha256", "url"} or (
                path[-2:] in {("profile", "name"), ("system", "body")}):
            found.add(value)
        found.update(match.raw_string for match in phonenumbers.PhoneNumberMatcher(value, None))
    return found - business_numbers()


@pytest.fixture(scope="module")
def scrubbed() -> tuple[Scrubber, list[tuple[str, bytes, bytes]]]:
    """Every fixture body and scenario line through one Scrubber, as a recording would be."""
    scrubber = Scrubber(MATCHER, seed="test", shift_s=SHIFT)
    return scrubber, [(name, raw, scrubber.scrub(raw)) for name, raw in BODIES]


def test_no_original_value_is_left_in_any_body(scrubbed):
    scrubber, bodies = scrubbed
    originals = scrubber.originals() | {value for _, raw in BODIES for value in personal_values(json.loads(raw))}
    assert {"Sheena Nelson", "16505551234", "US.13491208655302741918", "@noor.designs", "+49 151 12345678",
            "Does it come in another color?", "barbara.johnson@example.com"} <= originals
    assert not originals & business_numbers()
    searched = [re.compile(r"(?<![A-Za-z0-9])" + re.escape(text) + r"(?![A-Za-z0-9])")
                for original in originals for text in {original, json.dumps(original)[1:-1]}]
    for name, _, out in bodies:
        written = out.decode() + "\n" + json.dumps(json.loads(out), ensure_ascii=False)
        assert [pattern.pattern for pattern in searched if pattern.search(written)] == [], name


def read(item, shift: int = 0) -> tuple:
    """What the parser read of an item, but who: its instant moved back by `shift`."""
    event = item.event
    return (event.kind, event.type, event.at - shift, event.signals, MATCHER.match(item.text), event.order_value,
            event.order_items, event.campaign, event.error_codes, event.ad_id, event.phone_number_id, event.waba_id)


def test_scrubbed_bodies_parse_to_the_same_events_one_fake_person_per_person(scrubbed):
    people: dict = {}
    for name, raw, out in scrubbed[1]:
        before, after = parse_body(json.loads(raw), RECEIVED_AT), parse_body(json.loads(out), RECEIVED_AT + SHIFT)
        assert (after.problems, after.ignored_fields) == (before.problems, before.ignored_fields), name
        assert [read(item, SHIFT) for item in after.items] == [read(item) for item in before.items], name
        for old, new in zip(before.items, after.items):
            for was, now in ((old.identity, new.identity), (old.event.new_identity, new.event.new_identity),
                             (("message", old.event.message_id), ("message", new.event.message_id))):
                people.setdefault(was, set()).add(now)
    assert all(len(fakes) == 1 for fakes in people.values())  # one person (message) is one in the scrubbed
    fakes = Counter(fake for fakes in people.values() for fake in fakes)
    assert [fake for fake, count in fakes.items() if count > 1] == []  # and two stay two
    assert len(people) > 60


def test_the_same_original_gets_the_same_fake_everywhere(scrubbed):
    fakes: dict = {}
    for path, old, new in pairs(scrubbed[1]):
        if old != new and path[-1] not in INSTANTS:
            fakes.setdefault(old, set()).add(new)
    assert {old: new for old, new in fakes.items() if len(new) > 1} == {}
    assert len(fakes) > 300
    reply = next(json.loads(out) for name, _, out in scrubbed[1] if name == "smb_message_echoes__edit.json")
    echoed = next(json.loads(out) for name, _, out in scrubbed[1] if name == "smb_message_echoes__text.json")
    assert reply["entry"][0]["changes"][0]["value"]["message_echoes"][0]["edit"]["original_message_id"] == (
        echoed["entry"][0]["changes"][0]["value"]["message_echoes"][0]["id"])


def test_fake_numbers_are_valid_numbers_of_the_same_country_with_or_without_plus(scrubbed):
    checked = 0
    for path, old, new in pairs(scrubbed[1]):
        if path[-1] in PHONES and isinstance(old, str) and old.lstrip("+").isdigit() and old not in business_numbers():
            was, now = phonenumbers.parse("+" + old.lstrip("+")), phonenumbers.parse("+" + new.lstrip("+"))
            assert new != old and new.startswith("+") == old.startswith("+")
            assert phonenumbers.is_valid_number(now), (old, new)
            assert phonenumbers.region_code_for_number(now) == phonenumbers.region_code_for_number(was), (old, new)
            checked += 1
    assert checked > 100
    regions = ("US", "BR", "IN", "ID", "DE", "MX", "GB", "NG", "CN", "SA", "IT", "AR")
    examples = [phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE) for region in regions]
    numbers = [f"{example.country_code}{example.national_number + n}" for example in examples for n in range(20)]
    statuses = [{"id": f"wamid.{n}", "status": "sent", "recipient_id": number} for n, number in enumerate(numbers)]
    out = json.loads(Scrubber(MATCHER).scrub(json.dumps({"statuses": statuses}).encode()))
    for number, status in zip(numbers, out["statuses"]):
        fake = phonenumbers.parse("+" + status["recipient_id"])
        assert phonenumbers.is_valid_number(fake), (number, status["recipient_id"])
        assert phonenumbers.region_code_for_number(fake) == phonenumbers.region_code_for_number(
            phonenumbers.parse("+" + number))
    body = next(json.loads(out) for name, _, out in scrubbed[1] if name == "messages__system__user_changed_number.json")
    message = body["entry"][0]["changes"][0]["value"]["messages"][0]
    for number in (message["from"], message["system"]["wa_id"]):  # the fakes of the numbers the text mentions
        assert f"+{number}" in message["system"]["body"]


def test_bsuids_keep_their_country_and_the_business_values_stay(scrubbed):
    for path, old, new in pairs(scrubbed[1]):
        if path[-1] in BSUIDS and isinstance(old, str):
            assert new != old and new.rsplit(".", 1)[0] == old.rsplit(".", 1)[0] and len(new) == len(old), (old, new)
        if path[-1] in KEPT:
            assert new == old, path


def scripts(text: str) -> set[str]:
    return {unicodedata.name(char).split(" ")[0] for char in unicodedata.normalize("NFKD", text) if char.isalpha()}


def test_texts_keep_their_signals_length_and_script(scrubbed):
    checked = 0
    for path, old, new in pairs(scrubbed[1]):
        if path[-1] in TEXTS and isinstance(old, str) and "errors" not in path and "referral" not in path:
            assert MATCHER.match(new) == MATCHER.match(old), (old, new)
            assert abs(len(new) - len(old)) <= max(1, len(old) // 10), (old, new)
            assert scripts(new) <= scripts(old), (old, new)
            checked += 1
    assert checked > 50
    chinese = Scrubber(MATCHER).scrub(json.dumps({"text": {"body": "你好，这个多少钱？"}}).encode())
    assert scripts(json.loads(chinese)["text"]["body"]) == {"CJK"}


def test_names_keep_their_words_and_script(scrubbed):
    checked = 0
    for path, old, new in pairs(scrubbed[1]):
        if (path[-1] in NAMES or path[-2:] == ("profile", "name")) and isinstance(old, str):
            assert new != old and [len(word) for word in new.split(" ")] == [len(word) for word in old.split(" ")]
            assert scripts(new) == scripts(old), (old, new)
            checked += 1
    assert checked > 50


def test_short_values_get_fakes_of_their_own():
    initials = [chr(ord("A") + n) for n in range(20)]  # 20 of the 26 letters a one-letter name can become
    body = {"contacts": [{"profile": {"name": initial}, "user_id": f"US.{n}"} for n, initial in enumerate(initials)]}
    fakes = [contact["profile"]["name"] for contact in json.loads(Scrubber(MATCHER).scrub(json.dumps(body).encode()))[
        "contacts"]]
    assert len(set(fakes)) == len(initials) and all(fake != initial for fake, initial in zip(fakes, initials))


def test_every_instant_moves_by_exactly_the_shift_and_keeps_its_json_type(scrubbed):
    moved = 0
    for path, old, new in pairs(scrubbed[1]):
        if path[-1] in INSTANTS:
            assert type(new) is type(old) and int(new) == int(old) + SHIFT, (path, old, new)
            moved += 1
    assert moved > 100


def test_scrubbing_is_deterministic_and_the_seed_changes_every_fake(scrubbed):
    _, bodies = scrubbed
    again = Scrubber(MATCHER, seed="test", shift_s=SHIFT)
    assert [again.scrub(raw) for _, raw, _ in bodies] == [out for _, _, out in bodies]
    other = Scrubber(MATCHER, seed="another", shift_s=SHIFT)
    fakes = {new for path, old, new in pairs(bodies) if old != new and path[-1] not in INSTANTS}
    elsewhere = {new for path, old, new in pairs([(name, raw, other.scrub(raw)) for name, raw, _ in bodies])
                 if old != new and path[-1] not in INSTANTS}
    assert {fake for fake in fakes & elsewhere if len(fake) > 3} == set()  # "J." has 26 fakes only


@pytest.mark.parametrize("body", [b"[]", b'"text"', b"42", b"null", b"{", b"\xff{}", b""])
def test_a_body_that_is_not_a_json_object_is_a_value_error(body):
    with pytest.raises(ValueError):
        Scrubber(MATCHER).scrub(body)


def test_the_details_of_an_error_are_scrubbed_as_text_and_its_code_title_and_message_kept():
    failed = {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550783881", "phone_number_id": "1"},
        "statuses": [{"id": "wamid.x", "status": "failed", "timestamp": "1796000000", "recipient_id": "16505551234",
                      "errors": [{"code": 131026, "title": "Message undeliverable", "message": "Message undeliverable",
                                  "error_data": {"details": "Number +16505551234 is not on WhatsApp"}}]}]}}]}]}
    scrubbed = json.loads(Scrubber(MATCHER).scrub(json.dumps(failed).encode()))
    error = scrubbed["entry"][0]["changes"][0]["value"]["statuses"][0]["errors"][0]
    assert "16505551234" not in json.dumps(scrubbed)
    assert (error["code"], error["title"], error["message"]) == (131026, "Message undeliverable", "Message undeliverable")
