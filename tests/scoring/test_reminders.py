"""Reminder rules: which crossings fire which rules, their ids, and their configuration."""

from __future__ import annotations

from dataclasses import replace

import pytest

from scoring.reminders import (
    OWNER, CustomerFacts, ReminderRules, Rule, compose, reminder_id, rules_for_change, time_rule_instants,
)
from scoring.tiers import Cause, Tier


@pytest.mark.parametrize(
    "from_tier, to_tier, cause, fired",
    [
        (Tier.WARM, Tier.COLD, Cause.TIME, [Rule.WENT_COLD]),
        (Tier.HOT, Tier.WARM, Cause.TIME, [Rule.COOLING]),
        (Tier.WARM, Tier.HOT, Cause.EVENT, [Rule.HEATING]),
        (None, Tier.HOT, Cause.EVENT, [Rule.HEATING]),
        (Tier.COLD, Tier.WARM, Cause.EVENT, [Rule.REACTIVATED]),
        (Tier.DEAD, Tier.HOT, Cause.EVENT, [Rule.HEATING, Rule.REACTIVATED]),
        (Tier.HOT, Tier.DEAD, Cause.UNREACHABLE, [Rule.UNREACHABLE]),
        (Tier.COLD, Tier.DEAD, Cause.TIME, []),
        (Tier.WARM, Tier.DEAD, Cause.EVENT, []),
        (None, Tier.WARM, Cause.EVENT, []),
        (None, Tier.UNENGAGED, Cause.EVENT, []),
        (Tier.HOT, Tier.COLD, Cause.TIME, [Rule.WENT_COLD]),
    ],
)
def test_each_change_fires_the_rules_of_the_product_table(from_tier, to_tier, cause, fired):
    assert rules_for_change(from_tier, to_tier, cause) == fired


def test_a_crossing_has_one_id_and_any_other_crossing_another():
    first = reminder_id("34600000001", Rule.WENT_COLD, 1_790_000_000)
    assert first == reminder_id("34600000001", Rule.WENT_COLD, 1_790_000_000)
    others = {
        reminder_id("34600000002", Rule.WENT_COLD, 1_790_000_000),
        reminder_id("34600000001", Rule.COOLING, 1_790_000_000),
        reminder_id("34600000001", Rule.WENT_COLD, 1_790_000_001),
    }
    assert first not in others and len(others) == 3
    assert first.startswith("rem_") and len(first) == 28


def test_defaults_send_every_rule_to_the_owner_with_the_product_slas():
    rules = ReminderRules.from_config({}, frozenset())
    assert rules.enabled == frozenset(Rule)
    assert all(rules.recipients_of(rule) == (OWNER,) for rule in Rule)
    assert (rules.sla_hot_s, rules.sla_other_s, rules.window_closing_lead_s) == (300, 3600, 7200)
    assert rules.action_for(Tier.COLD).startswith("Send something of value")


def test_configured_rules_recipients_slas_and_wording_are_taken():
    rules = ReminderRules.from_config(
        {
            "rules": ["went_cold", "heating"],
            "to": {"heating": ["owner", "boss"], "went_cold": "boss"},
            "sla_minutes": {"hot": 2},
            "max_age_hours": 48,
            "actions": {"hot": "Call them."},
        },
        frozenset({"boss", "ana"}),
    )
    assert rules.enabled == {Rule.WENT_COLD, Rule.HEATING}
    assert rules.recipients_of(Rule.HEATING) == (OWNER, "boss")
    assert rules.recipients_of(Rule.WENT_COLD) == ("boss",)
    assert (rules.sla_hot_s, rules.sla_other_s, rules.max_age_s) == (120, 3600, 48 * 3600)
    assert rules.action_for(Tier.HOT) == "Call them."
    assert rules.action_for(Tier.WARM).startswith("Share a relevant case")


@pytest.mark.parametrize(
    "table, message",
    [
        ({"rules": ["went_cld"]}, "'went_cld' is not a rule"),
        ({"rules": "went_cold"}, "must be a list"),
        ({"to": {"heating": ["nobody"]}}, "['nobody'], which are not reps"),
        ({"to": {"heating": []}}, "must be \"owner\", a rep id"),
        ({"sla_minutes": {"hot": 0}}, "hot = 0 must be a whole number"),
        ({"sla_minutes": {"warm": 5}}, "unknown keys ['warm']"),
        ({"max_age_hours": "1"}, "max_age_hours = '1'"),
        ({"actions": {"lukewarm": "x"}}, "[reminders.actions] lukewarm"),
        ({"colour": "red"}, "unknown keys ['colour']"),
        ({"hold_back_percent": 60}, "hold_back_percent = 60 must be a whole number from 0 to 50"),
        ({"hold_back_percent": 0.5}, "hold_back_percent = 0.5"),
    ],
)
def test_a_bad_reminders_table_is_named_in_the_error(table, message):
    with pytest.raises(ValueError) as raised:
        ReminderRules.from_config(table, frozenset({"ana"}))
    assert message in str(raised.value)


def test_a_reactivation_is_credited_to_our_last_message_before_it_and_its_campaign():
    back, sent = 1_790_000_000, 1_790_000_000 - 3 * 3600
    facts = CustomerFacts("34600000001", "34600000001", None, "Ana", "Europe/Madrid", back, ("price_inquiry",),
                          last_outbound_at=sent, last_outbound_campaign="spring-promo-b")
    rules = ReminderRules()
    content = compose("rem_x", Rule.REACTIVATED, "ana", Tier.DEAD, Tier.WARM, back, facts, rules, back + 60)
    assert content["credited_to"] == {"sent_at": "2026-09-21T11:13:20Z", "campaign": "spring-promo-b"}
    assert (content["days_silent"], content["template_required"], content["signals"]) == (0, False, ["price_inquiry"])
    assert content["customer_local_time"] == "2026-09-21T16:14:20+02:00"
    later = compose("rem_y", Rule.REACTIVATED, "ana", Tier.DEAD, Tier.WARM, back,
                    replace(facts, last_outbound_at=back + 10), rules, back + 60)
    assert later["credited_to"] == {"sent_at": None, "campaign": None}  # our message came after: no credit
    assert "credited_to" not in compose("rem_z", Rule.WENT_COLD, "ana", Tier.WARM, Tier.COLD, back, facts, rules, back)


def test_time_rules_fire_an_sla_after_a_question_and_two_hours_before_the_window_closes():
    rules, asked, last = ReminderRules(), 1_790_000_000, 1_790_000_600
    assert time_rule_instants(Tier.HOT, asked, asked, last, rules) == [
        (Rule.UNANSWERED, asked + 300), (Rule.WINDOW_CLOSING, last + 22 * 3600)]
    assert time_rule_instants(Tier.WARM, asked, asked, last, rules)[0] == (Rule.UNANSWERED, asked + 3600)
    assert time_rule_instants(Tier.WARM, None, asked, last, rules) == [(Rule.WINDOW_CLOSING, last + 22 * 3600)]
    assert time_rule_instants(Tier.WARM, None, None, last, rules) == []  # answered: nothing waits on us
    only_cold = ReminderRules.from_config({"rules": ["went_cold"]}, frozenset())
    assert time_rule_instants(Tier.HOT, asked, asked, last, only_cold) == []


def test_a_held_back_share_is_about_the_share_asked_for_and_only_of_the_measured_rules():
    rules = ReminderRules.from_config({"hold_back_percent": 20}, frozenset())
    ids = [reminder_id(f"3460000{n:04d}", Rule.WENT_COLD, 1_790_000_000) for n in range(2000)]
    held = [reminder for reminder in ids if rules.holds_back(reminder, Rule.WENT_COLD)]
    assert 0.17 < len(held) / len(ids) < 0.23
    assert held == [reminder for reminder in ids if rules.holds_back(reminder, Rule.WENT_COLD)]  # the same every time
    assert not any(rules.holds_back(reminder, Rule.UNANSWERED) for reminder in ids)
    assert not any(ReminderRules().holds_back(reminder, Rule.WENT_COLD) for reminder in ids)
