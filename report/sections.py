"""The report's eleven sections as titled blocks of sentences and tables with typed cells: what
every readable form (Markdown, HTML, XLSX) lays out, each in its own way."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import NamedTuple

from report.figures import FUNNEL_STEPS, TIERS, listed, percent


class Share(NamedTuple):
    """A ratio from 0 to 1; None when its base is zero (shown as "n/a")."""

    value: float | None


class Duration(NamedTuple):
    seconds: float | None


class Instant(NamedTuple):
    """A moment in UTC, as the JSON form writes it (2026-09-22T00:00:00Z); a date to a spreadsheet."""

    iso: str | None


Cell = str | int | Share | Duration | Instant | None


@dataclass
class Table:
    header: list[str]
    rows: list[list[Cell]]
    caption: str = ""


@dataclass
class Section:
    title: str
    blocks: list[str | Table] = field(default_factory=list)
    charts: list[str] = field(default_factory=list)  # names in report.charts.CHARTS


def title(report: dict) -> str:
    period = report["source"]["period"]
    last = date.fromisoformat(period["to"][:10]) - timedelta(days=1)
    return f"WhatsApp customer activity, {period['from'][:10]} to {last.isoformat()}"


def scope(report: dict) -> str:
    """"Scope: number 123, owner ana." or "" for the whole store."""
    named = ", ".join(f"{name} {value}" for name, value in report["scope"].items() if value)
    return f"Scope: {named}." if named else ""


def sections(report: dict) -> list[Section]:
    return [_summary(report), _source(report), _segmentation(report), _reply_rate(report), _frequency(report),
            _content(report), _funnel(report), _reactivation(report), _local_time(report), _reply_speed(report),
            _action_plan(report)]


def duration(seconds: float | None) -> str:
    """Minutes under an hour, hours up to 48, days past them (a wait of 300 h reads as 12.5 days)."""
    if seconds is None:
        return "n/a"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds <= 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86_400:.1f} days"


def text(cell: Cell) -> str:
    """A cell as the text forms show it."""
    if cell is None:
        return "-"
    if isinstance(cell, Share):
        return percent(cell.value)
    if isinstance(cell, Duration):
        return duration(cell.seconds)
    if isinstance(cell, Instant):
        return cell.iso or "-"
    if isinstance(cell, int):
        return f"{cell:,}"
    return cell


def _summary(report: dict) -> Section:
    section = Section("Executive summary", list(report["summary"]))
    comparison = report["comparison"]
    if comparison:
        section.blocks.append(Table(
            ["figure", "change against the previous period"],
            [["active customers", f"{comparison['customers']['change']:+,} ({comparison['customers']['before']:,} before)"],
             ["reply rate", _points(comparison["reply_rate_points"])],
             ["hot share", _points(comparison["hot_share_points"])],
             ["conversion, reached to ordered", _points(comparison["conversion_points"])]]))
    return section


def _points(points: float | None) -> str:
    return "n/a" if points is None else f"{points:+.1f} points"


def _source(report: dict) -> Section:
    source = report["source"]
    excluded = [f"{count:,} {reason}" for reason, count in source["excluded"].items()]
    wabas = "; ".join(f"WABA {waba}: {', '.join(numbers)}" for waba, numbers in source["wabas"].items())
    return Section("Data source and period", [
        f"Period: {source['period']['from']} to {source['period']['to']} (end excluded).",
        f"Business numbers, by WABA: {wabas or 'none'}.",
        f"Customers active: {source['customers']:,}.",
        f"Events counted: {source['events']['inbound']:,} from customers, {source['events']['outbound']:,} of ours"
        + (f"; of them from chat exports: {imported['from_customers']:,} and {imported['of_ours']:,}."
           if any((imported := source["imported"]).values()) else "."),
        f"Excluded: {'; '.join(excluded) or 'none'}.",
        Table(["week from", "days", "from customers", "of ours", "customers writing"],
              [[week["from"][:10], week["days"], week["inbound"], week["outbound"], week["customers_writing"]]
               for week in report["trend"]],
              "Week by week (the last week is shorter when the period is not whole weeks):"),
    ], ["trend"])


def _segmentation(report: dict) -> Section:
    segmentation = report["segmentation"]
    rows = []
    for tier, entry in segmentation["tiers"].items():
        expected = entry.get("expected")
        flag = " (outside)" if entry.get("outside_expected") else ""
        rows.append([tier, entry["rule"], entry["count"], Share(entry["share"]),
                     Share(entry["share_of_four"]) if expected else None,
                     f"{expected[0] * 100:.0f}-{expected[1] * 100:.0f}%{flag}" if expected else None])
    silent = segmentation["silent_over_60_days"]
    blocks: list[str | Table] = [
        f"{segmentation['customers']:,} customers with a tier at the end of the period; "
        f"{silent['count']:,} ({percent(silent['share'])}) silent for over 60 days.",
        Table(["tier", "rule", "customers", "share", "share of the four", "expected"], rows),
    ]
    for caption, key in (("By country:", "by_country"), ("By owner:", "by_owner")):
        blocks.append(Table([key[3:]] + TIERS + ["total"],
                            [[name] + [row[t] for t in TIERS + ["total"]] for name, row in segmentation[key].items()],
                            caption))
    return Section("Segmentation", blocks, ["tiers"])


def _reply_rate(report: dict) -> Section:
    reply = report["reply_rate"]
    messages = reply["messages"]
    return Section("Reply rate", [
        f"{reply['replied']:,} of {reply['messaged']:,} customers we messaged replied: {percent(reply['rate'])}.",
        Table(["tier", "messaged", "replied", "rate"],
              [[t, v["messaged"], v["replied"], Share(v["rate"])] for t, v in reply["by_tier"].items()],
              "By tier at the start of the period:"),
        Table(["touch", "touches", "replied", "rate"],
              [[n, v["touches"], v["replied"], Share(v["rate"])] for n, v in reply["touches"].items()],
              "After our 1st, 2nd and 3rd message in a row:"),
        f"Messages: {messages['sent']:,} sent, {messages['delivered']:,} delivered ({percent(messages['delivered_rate'])}), "
        f"read rate {percent(messages['read_rate'])} over {messages['read_rate_base']:,} delivered messages to customers "
        f"who send read receipts ({messages['customers_without_read_receipts']:,} customers excluded: they never do).",
    ])


def _frequency(report: dict) -> Section:
    return Section("Interaction frequency", [
        "high: 3 or more a week; medium: 1 to 3; low: under 1.",
        Table(["band", "customers", "share", "by tier at the end"],
              [[band, v["count"], Share(v["share"]), ", ".join(f"{t} {n}" for t, n in v["by_tier"].items()) or None]
               for band, v in report["frequency"].items()]),
    ])


def _content(report: dict) -> Section:
    return Section("Content interaction types", [
        Table(["type", "messages", "share", "customers"],
              [[kind, v["messages"], Share(v["share"]), v["customers"]] for kind, v in report["content"].items()]),
    ])


def _funnel(report: dict) -> Section:
    funnel = report["funnel"]
    blocks: list[str | Table] = [
        Table(["step", "customers", "from the step before"],
              [[name, funnel[name]["count"], Share(funnel[name]["conversion"]) if funnel[name]["conversion"] is not None
                else None] for name in FUNNEL_STEPS]),
        _biggest_loss_sentence(funnel),
    ]
    for caption, key in (("Per business number:", "by_number"), ("Per owner:", "by_owner")):
        blocks.append(Table(
            [key[3:]] + list(FUNNEL_STEPS) + ["reached to ordered", "biggest loss"],
            [[name] + [steps[step]["count"] for step in FUNNEL_STEPS]
             + [Share(steps["reached_to_ordered"]), _biggest_loss(steps)] for name, steps in funnel[key].items()],
            caption))
    return Section("Conversion funnel", blocks, ["funnel"])


def _biggest_loss(steps: dict) -> str | None:
    """The steps that lose the most customers, all of them in a tie; "none stands out" when every
    step that loses anyone loses as many; None when no step loses anyone."""
    if steps["biggest_loss"]:
        return listed(steps["biggest_loss"])
    return "none stands out" if steps[FUNNEL_STEPS[0]]["count"] > steps[FUNNEL_STEPS[-1]]["count"] else None


def _biggest_loss_sentence(funnel: dict) -> str:
    named = _biggest_loss(funnel)
    if len(funnel["biggest_loss"]) > 1:
        return f"The steps that lose the most, as many customers each: {named}."
    if named and not funnel["biggest_loss"]:
        return "No step loses more customers than another."
    return f"The step that loses the most: {named or 'n/a'}."


def _reactivation(report: dict) -> Section:
    back = report["reactivation"]
    return Section("Dormant reactivation", [
        f"{back['came_back']:,} of {back['dormant_at_start']:,} customers cold or dead at the start came back "
        f"({percent(back['rate'])}); median time from our last message to their comeback "
        f"{duration(back['time_to_come_back_median_s'])}.",
        Table(["campaign tag", "messaged", "replied", "reply rate", "reactivated", "reactivation rate"],
              [[tag, v["messaged"], v["replied"], Share(v["reply_rate"]), v["reactivated"], Share(v["reactivation_rate"])]
               for tag, v in back["by_campaign"].items()]),
        f"Significance: {back['significance']}.",
    ])


def _local_time(report: dict) -> Section:
    local = report["local_time"]
    best = "; ".join(f"{region} {', '.join(f'{h:02d}:00' for h in hours) or '(no hour stands out)'}"
                     for region, hours in local["best_hours"].items())
    return Section("Activity by customer local time", [
        Table(["day"] + [f"{h:02d}" for h in range(24)],
              [[day] + counts for day, counts in zip(local["weekdays"], local["heatmap"])],
              "Messages by weekday and hour on the customer's own clock:"),
        f"Best hours to write, per region: {best or 'n/a'}."
        + (f" {local['without_time_zone']:,} messages from customers without a known time zone are left out."
           if local["without_time_zone"] else ""),
    ], ["heatmap"])


def _reply_speed(report: dict) -> Section:
    speed, hot = report["reply_speed"], report["reply_speed"]["hot_within_5_min"]
    return Section("Speed of our replies", [
        f"Median {duration(speed['median_s'])}, p90 {duration(speed['p90_s'])} over {speed['answers']:,} answers; "
        f"{speed['unanswered']:,} waits still unanswered at the end of the period "
        "(a wait: a customer's messages since our last one).",
        f"Hot customers answered within 5 minutes every time: {hot['answered_within_5_min']:,} of {hot['customers']:,} "
        f"({percent(hot['share'])}).",
        Table(["tier at the start / owner", "answers", "unanswered", "median", "p90"],
              [[name, v["answers"], v["unanswered"], Duration(v["median_s"]), Duration(v["p90_s"])]
               for name, v in list(speed["by_tier"].items()) + list(speed["by_owner"].items())]),
    ])


def _action_plan(report: dict) -> Section:
    blocks: list[str | Table] = []
    for tier, plan in report["action_plan"].items():
        blocks.append(f"{tier} ({plan['customers']:,}): {plan['action']}; cadence {plan['cadence']}.")
        if plan["list"]:
            blocks.append(Table(["customer", "owner", "last contact", "last signals", "orders"],
                                [[row["name"] or row["key"], row["owner"], Instant(row["last_contact"]),
                                  ", ".join(row["last_signals"]) or None, row["orders"]] for row in plan["list"]]))
    return Section("Action plan", blocks)
