"""One person cut out of decoded bodies, with plain values."""

from __future__ import annotations

import copy
import json

from cloudapi.parse import parse_body
from cloudapi.redact import redact
from tests.conftest import FIXTURES

SHEENA = frozenset({"16505551234", "+16505551234", "US.13491208655302741918"})


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / "cloudapi" / f"{name}.json").read_bytes())


def test_her_elements_go_and_the_others_stay_as_they_parse():
    body = fixture("messages__mixed__multi_entry")
    before = copy.deepcopy(body)
    kept = redact(body, SHEENA)
    assert body == before  # the argument is left as it was
    assert "16505551234" not in json.dumps(kept) and "Sheena" not in json.dumps(kept)
    others = [item for item in parse_body(before, 0).items if item.identity.wa_id != "16505551234"]
    assert [(item.identity, item.event) for item in parse_body(kept, 0).items] == [
        (item.identity, item.event) for item in others]


def test_an_identity_change_a_history_thread_and_a_shared_card_are_theirs():
    change = fixture("user_id_update__change")
    old_bsuid = frozenset({"US.13491208655302741918"})  # known only by the BSUID it changed from
    assert redact(change, old_bsuid)["entry"][0]["changes"][0]["value"]["user_id_update"] == []
    history = fixture("history__messages")
    threads = history["entry"][0]["changes"][0]["value"]["history"][0]["threads"]
    kept = redact(history, frozenset({"34612345678"}))["entry"][0]["changes"][0]["value"]["history"][0]["threads"]
    assert "34612345678" in [thread["id"] for thread in threads]
    assert kept == [thread for thread in threads if thread["id"] != "34612345678"]
    card = fixture("messages__contacts")  # Ana shares Barbara's card: Barbara's erasure takes the card out
    kept = redact(card, frozenset({"14155550829"}))["entry"][0]["changes"][0]["value"]["messages"][0]
    assert kept["from"] == "34612345678" and [card["name"]["first_name"] for card in kept["contacts"]] == ["María"]
    assert "Barbara" not in json.dumps(kept) and "barbara.johnson@example.com" not in json.dumps(kept)


def test_a_longer_number_that_holds_theirs_is_someone_else():
    body = fixture("messages__text")  # Sheena, 16505551234: erasing 6505551234 or 1650555123 leaves her be
    assert redact(body, frozenset({"6505551234", "1650555123", "+6505551234"})) == body


def test_other_strings_naming_them_are_blanked():
    body = {"entry": [{"note": "call 16505551234 back", "short": "ab", "list": ["ab", "US.13491208655302741918"]}]}
    assert redact(body, frozenset({"16505551234", "US.13491208655302741918", "ab"})) == {
        "entry": [{"note": "", "short": "", "list": ["", ""]}]}
