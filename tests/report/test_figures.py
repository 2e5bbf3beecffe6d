"""The report's figures on a quarter whose every number is known by construction."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from report.figures import CUSTOMER_ROWS, HEADLINE_SECTIONS, Activity, Message, Period, Person, Sent, compare, compute, summary

DAY, HOUR, MINUTE = 86_400, 3600, 60
START = int(datetime(2026, 7, 1, tzinfo=UTC).timestamp())
END = int(datetime(2026, 10, 1, tzinfo=UTC).timestamp())
QUARTER = Period(START, END)
THRESHOLDS = {"hot_days": 7, "warm_days": 30, "cold_days": 90, "hot_min_interactions": 5}

PEOPLE = [
    Person(1, "c1", "Priya", "US", "America/New_York", "ana", "111", tier_at_start="cold", tier_at_end="hot"),
    Person(2, "c2", "João", "ES", "Europe/Madrid", "ben", "111", tier_at_start="warm", tier_at_end="warm"),
    Person(3, "c3", None, "BR", None, "ana", "222", tier_at_start="warm", tier_at_end="cold"),
    Person(4, "c4", None, "BR", None, None, "222", tier_at_start="dead", tier_at_end="dead"),
    Person(5, "c5", None, "IN", "Asia/Kolkata", "ben", "111", tier_at_start=None, tier_at_end="unengaged"),
]
MESSAGES = [
    Message(1, END - 10 * DAY + 2 * HOUR, frozenset({"question"}), "111"),  # Priya answers our campaign after 2 h...
    Message(1, END - 9 * DAY, frozenset({"order"}), "111"),  # ...and orders
    Message(2, END - 28 * DAY, frozenset({"rapport"}), "111"),  # João answers our second message in a row
    Message(3, START - 40 * DAY, frozenset({"price_inquiry"}), "222"),  # before the quarter
]
SENT = [
    Sent(1, END - 10 * DAY, rank=3, campaign="promo_a", number="111"),
    Sent(1, END - 10 * DAY + 2 * HOUR + 3 * MINUTE, rank=2, number="111"),  # answered in 3 minutes
    Sent(1, END - 9 * DAY + 10 * MINUTE, rank=2, number="111"),  # answered in 10 minutes
    Sent(2, END - 30 * DAY, rank=3, campaign="promo_b", number="111"),
    Sent(2, END - 29 * DAY, rank=2, number="111"),
    Sent(2, END - 28 * DAY + HOUR, rank=2, number="111"),  # answered in an hour
    Sent(5, END - 15 * DAY, rank=1, number="111"),  # never delivered
]


def quarter(**changes) -> dict:
    activity = Activity(PEOPLE, MESSAGES, SENT, readers=frozenset({1}), excluded={"errors": 4},
                        wabas={"111": "900", "222": "900"})
    for name, value in changes.items():
        setattr(activity, name, value)
    return compute(activity, QUARTER, THRESHOLDS)


def test_source_counts_the_customers_and_events_of_the_period_only():
    source = quarter()["source"]
    assert source["customers"] == 3  # c1, c2 and c5 did something in the quarter
    assert source["events"] == {"inbound": 3, "outbound": 7}
    assert source["numbers"] == ["111"]  # 222 had nothing in the quarter
    assert source["wabas"] == {"900": ["111"]}
    assert source["excluded"] == {"errors": 4}


def test_source_names_the_numbers_of_the_events_and_their_wabas_where_known():
    source = quarter(messages=MESSAGES + [Message(4, END - DAY, number="333")])["source"]
    assert source["numbers"] == ["111", "333"]  # c4's number on record is 222: the event's number counts
    assert source["wabas"] == {"900": ["111"], "unknown": ["333"]}


def test_segmentation_shares_ranges_and_breakdowns():
    segmentation = quarter()["segmentation"]
    tiers = segmentation["tiers"]
    assert [(t, v["count"], v["share"], v.get("share_of_four")) for t, v in tiers.items()] == [
        ("hot", 1, 0.2, 0.25), ("warm", 1, 0.2, 0.25), ("cold", 1, 0.2, 0.25), ("dead", 1, 0.2, 0.25),
        ("unengaged", 1, 0.2, None)]
    assert {t: v["outside_expected"] for t, v in tiers.items() if t != "unengaged"} == {
        "hot": True, "warm": False, "cold": False, "dead": True}
    assert tiers["hot"]["rule"] == "interacted within 7 days, 5 interactions or more"
    assert tiers["dead"]["rule"] == "no interaction for 90 days or more, or unreachable"  # dead at exactly 90 days
    assert segmentation["silent_over_60_days"] == {"count": 3, "share": 0.6}  # c3, c4 and c5
    assert segmentation["by_country"]["BR"] == {"hot": 0, "warm": 0, "cold": 1, "dead": 1, "unengaged": 0, "total": 2}
    assert list(segmentation["by_country"]) == ["BR", "ES", "IN", "US"]  # largest first, then by name
    assert segmentation["by_owner"]["none"]["dead"] == 1


def test_reply_rates_touches_and_read_rate_over_customers_who_send_receipts():
    reply = quarter()["reply_rate"]
    assert (reply["messaged"], reply["replied"], reply["rate"]) == (3, 2, 0.6667)
    assert {tier: (v["messaged"], v["replied"]) for tier, v in reply["by_tier"].items() if v["messaged"]} == {
        "cold": (1, 1), "warm": (1, 1), "new": (1, 0)}  # by the tier at the start: Priya was cold, c5 unknown
    assert reply["by_tier"]["hot"] == {"messaged": 0, "replied": 0, "rate": None}
    assert reply["touches"] == {
        "1": {"touches": 6, "replied": 2, "rate": 0.3333},
        "2": {"touches": 1, "replied": 1, "rate": 1.0},
        "3": {"touches": 0, "replied": 0, "rate": None},
    }
    assert reply["messages"] == {"sent": 7, "delivered": 6, "delivered_rate": 0.8571, "read": 1, "read_rate": 0.3333,
                                 "read_rate_base": 3, "customers_without_read_receipts": 1}


def test_frequency_content_and_funnel():
    report = quarter()
    assert report["frequency"]["low"] == {"count": 2, "share": 1.0, "by_tier": {"hot": 1, "warm": 1}}
    assert report["frequency"]["high"]["share"] == 0.0
    assert {k: (v["messages"], v["customers"]) for k, v in report["content"].items()} == {
        "passive_text": (0, 0), "questions": (1, 1), "commerce": (1, 1), "rapport": (1, 1)}
    funnel = report["funnel"]
    assert [(step, funnel[step]["count"], funnel[step]["conversion"]) for step in ("reached", "replied", "inquired", "ordered")] == [
        ("reached", 2, None), ("replied", 2, 1.0), ("inquired", 1, 0.5), ("ordered", 1, 1.0)]
    assert funnel["biggest_loss"] == ["inquired"]
    assert funnel["reached_to_ordered"] == 0.5
    assert funnel["by_owner"]["ben"]["reached"]["count"] == 1  # João; c5 was never delivered
    assert list(funnel["by_number"]) == ["111"]  # nothing went from 222 in the quarter


def test_content_types_take_the_first_that_fits_so_shares_add_up():
    messages = [Message(1, END - DAY, frozenset({"question", "price_inquiry"})), Message(1, END - DAY + 1, frozenset({"question", "voice"})),
                Message(2, END - DAY, frozenset({"voice"})), Message(2, END - DAY + 1)]
    content = quarter(messages=messages)["content"]
    assert {kind: (v["messages"], v["customers"]) for kind, v in content.items()} == {
        "passive_text": (1, 1), "questions": (1, 1), "commerce": (1, 1), "rapport": (1, 1)}
    assert sum(v["share"] for v in content.values()) == 1.0


def test_the_funnel_per_number_follows_each_conversation_of_a_customer_who_wrote_to_two_numbers():
    messages = MESSAGES + [Message(2, END - 5 * DAY, frozenset({"price_inquiry"}), "333")]
    sent = SENT + [Sent(2, END - 6 * DAY, rank=2, number="333"), Sent(4, END - 6 * DAY, rank=2, number="333")]
    funnel = quarter(messages=messages, sent=sent)["funnel"]
    counts = {number: [steps[step]["count"] for step in ("reached", "replied", "inquired", "ordered")]
              for number, steps in funnel["by_number"].items()}
    assert counts == {"111": [2, 2, 1, 1], "333": [2, 1, 1, 0]}  # João replied on 111, inquired on 333; c4 only reached
    assert [funnel[step]["count"] for step in ("reached", "replied", "inquired", "ordered")] == [3, 2, 2, 1]


def test_reactivation_by_campaign_tag():
    back = quarter()["reactivation"]
    assert (back["dormant_at_start"], back["came_back"], back["rate"]) == (2, 1, 0.5)
    assert back["time_to_come_back_median_s"] == 2 * HOUR
    assert back["by_campaign"] == {"promo_a": {"messaged": 1, "replied": 1, "reactivated": 1, "reply_rate": 1.0,
                                               "reactivation_rate": 1.0}}
    assert back["significance"] == "one campaign tag or none: nothing to compare"


def test_local_time_heatmap_is_on_each_customers_own_clock():
    local = quarter()["local_time"]
    cells = {(day, hour): n for day, row in enumerate(local["heatmap"]) for hour, n in enumerate(row) if n}
    assert cells == {(6, 22): 1, (0, 20): 1, (3, 2): 1}  # Sun 22:00 and Mon 20:00 in New York, Thu 02:00 in Madrid
    assert local["best_hours"] == {"America": [20, 22], "Europe": [2]}


def test_reply_speed_median_p90_and_unanswered():
    speed = quarter(messages=MESSAGES + [Message(5, END - DAY)])["reply_speed"]
    assert (speed["answers"], speed["unanswered"], speed["median_s"], speed["p90_s"]) == (3, 1, 600, 3600)
    assert speed["by_owner"]["ana"] == {"answers": 2, "unanswered": 0, "median_s": 390.0, "p90_s": 600}
    assert speed["by_tier"]["new"] == {"answers": 0, "unanswered": 1, "median_s": None, "p90_s": None}  # c5
    assert speed["by_tier"]["cold"]["answers"] == 2  # Priya, by her tier at the start


def test_hot_customers_count_as_answered_within_five_minutes_only_when_every_wait_was():
    hot_at_start = [replace(PEOPLE[0], tier_at_start="hot"), replace(PEOPLE[1], tier_at_start="hot"), *PEOPLE[2:]]
    speed = quarter(people=hot_at_start, messages=MESSAGES[:1] + MESSAGES[2:])["reply_speed"]
    assert speed["hot_within_5_min"] == {"customers": 2, "answered_within_5_min": 1, "share": 0.5}  # Priya in 3 min
    speed = quarter(people=hot_at_start)["reply_speed"]
    assert speed["hot_within_5_min"]["answered_within_5_min"] == 0  # Priya's order waited 10 minutes


def test_action_plan_lists_customers_by_value():
    plan = quarter()["action_plan"]
    assert plan["hot"]["cadence"] == "daily" and plan["dead"]["cadence"] == "archived"
    assert plan["hot"]["list"] == [{"key": "c1", "name": "Priya", "owner": "ana", "last_contact": "2026-09-22T00:00:00Z",
                                    "last_signals": ["order"], "orders": 1, "interactions": 2}]
    assert plan["cold"]["list"][0]["last_signals"] == ["price_inquiry"]


def test_an_empty_period_shows_n_a_rather_than_dividing_by_zero():
    report = compute(Activity([], [], []), QUARTER, THRESHOLDS)
    assert report["reply_rate"]["rate"] is None and report["funnel"]["biggest_loss"] == []
    assert report["reply_speed"]["median_s"] is None and report["segmentation"]["tiers"]["hot"]["share"] is None
    assert summary(report, None)[1] == "Hot n/a of customers with a tier; n/a silent for over 60 days."
    assert report["reply_speed"]["hot_within_5_min"]["share"] is None and report["funnel"]["reached_to_ordered"] is None


def test_a_period_without_messages_of_ours():
    report = quarter(sent=[])
    assert report["reply_rate"]["messaged"] == 0 and report["reply_rate"]["messages"]["delivered_rate"] is None
    assert report["funnel"]["reached"]["count"] == 0


def test_the_summary_compares_with_the_previous_period_of_equal_length():
    earlier = Period(START - (END - START), START)
    assert QUARTER.previous() == earlier
    asked_before = [Message(1, START - 20 * DAY, frozenset({"question"}), "111")]  # Priya asked but did not order
    sent_before = [Sent(1, START - 21 * DAY, rank=2, number="111"), Sent(2, START - 21 * DAY, rank=2, number="111")]
    activity = Activity(PEOPLE, MESSAGES + asked_before, SENT + sent_before)
    now = compute(activity, QUARTER, THRESHOLDS)
    before = compute(activity, earlier, THRESHOLDS, HEADLINE_SECTIONS)
    assert (before["source"]["customers"], before["reply_rate"]["rate"], before["funnel"]["reached_to_ordered"]) == (3, 0.5, 0.0)
    comparison = compare(now, before)
    assert comparison == {"customers": {"now": 3, "before": 3, "change": 0}, "reply_rate_points": 16.7,
                          "hot_share_points": 0.0, "conversion_points": 50.0}
    assert summary(now, comparison) == [
        "3 customers active in the period, 3 of them messaged by us.",
        "Hot 20.0% of customers with a tier, all in US; 60.0% silent for over 60 days.",
        "Reply rate 66.7% (up 17 points); conversion from reached to ordered 50.0% (up 50 points).",
        "As many active customers as in the previous period.",
    ]
    fewer = compare(now, compute(Activity(PEOPLE, MESSAGES[:1], SENT[:1]), QUARTER, THRESHOLDS, HEADLINE_SECTIONS))
    assert summary(now, fewer)[-1] == "2 more active customers than in the previous period."


def test_trend_counts_each_week_of_the_period():
    trend = quarter()["trend"]
    assert len(trend) == 14 and (trend[-1]["from"], trend[-1]["days"]) == ("2026-09-30T00:00:00Z", 1)  # 13 weeks and a day
    busy = {week: (row["inbound"], row["outbound"], row["customers_writing"]) for week, row in enumerate(trend)
            if row["inbound"] or row["outbound"]}
    assert busy == {8: (0, 1, 0), 9: (1, 2, 1), 11: (2, 4, 1)}


def test_customer_rows_hold_each_customer_of_the_scope():
    rows = {row["key"]: row for row in compute(Activity(PEOPLE, MESSAGES, SENT), QUARTER, THRESHOLDS, [CUSTOMER_ROWS])[
        CUSTOMER_ROWS]}
    assert list(rows) == ["c1", "c2", "c3", "c4", "c5"]
    assert rows["c1"] == {"key": "c1", "name": "Priya", "country": "US", "time_zone": "America/New_York", "owner": "ana",
                          "business_number": "111", "tier_at_start": "cold", "tier_at_end": "hot", "interactions": 2,
                          "our_messages": 3, "funnel_step": "ordered", "orders": 1,
                          "last_contact": "2026-09-22T00:00:00Z", "last_signals": "order"}
    assert (rows["c5"]["funnel_step"], rows["c5"]["our_messages"]) == ("not reached", 1)
    assert (rows["c3"]["interactions"], rows["c3"]["last_signals"], rows["c3"]["funnel_step"]) == (0, "price_inquiry", "not reached")
