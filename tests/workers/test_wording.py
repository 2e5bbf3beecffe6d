"""Reminder wording: defaults, what wapulse.toml may change, and reminders stored by older releases."""

from __future__ import annotations

import pytest

from scoring.reminders import CustomerFacts, ReminderRules, Rule, compose
from scoring.tiers import Tier
from workers.wording import Wording


def reminder(rule: Rule = Rule.WENT_COLD, name: str | None = "Sheena Nelson") -> dict:
    facts = CustomerFacts("16505551234", "16505551234", None, name, None, 0, ("question",))
    return compose("rem_1", rule, "ana", Tier.WARM, Tier.COLD, 0, facts, ReminderRules(), 30 * 86_400)


def test_a_reminder_stored_before_reason_and_type_existed_still_reads():
    old = {key: value for key, value in reminder().items() if key not in ("type", "reason", "phone_number_id")}
    assert Wording().render(old).startswith("Went cold: Sheena Nelson (+16505551234), 30 days silent.")


def test_a_digest_has_a_title_each_reminder_and_a_one_line_summary():
    title, text, summary = Wording().digest("Ana Ruiz", [reminder(), reminder(Rule.HEATING, name=None)])
    assert title == "2 reminders for Ana Ruiz"
    assert text.split("\n\n")[0] == title and text.count("• ") == 2
    assert summary == "2 reminders for Ana Ruiz: Went cold: Sheena Nelson; Heating up: 16505551234."


@pytest.mark.parametrize("table, message", [
    ({"headlines": {"frozen": "x"}}, "'frozen' is not a rule"),
    ({"headlines": {"went_cold": " "}}, "went_cold must be a non-empty text"),
    ({"templates": {"body": "x"}}, "unknown keys ['body']"),
    ({"templates": {"digest": "{{ total }}"}}, "digest fails"),
])
def test_bad_wording_is_named(table, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Wording.from_config(table)
