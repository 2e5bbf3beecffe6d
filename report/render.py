"""The report's forms: JSON (every figure, stable keys) and Markdown (readable as plain text)."""

from __future__ import annotations

from datetime import date, timedelta

import msgspec

from report.figures import TIERS

_json = msgspec.json.Encoder()


def as_json(report: dict) -> str:
    return msgspec.json.format(_json.encode(report), indent=2).decode()


def as_markdown(report: dict) -> str:
    lines: list[str] = [f"# WhatsApp customer activity, {_period(report)}", ""]
    scope = ", ".join(f"{name} {value}" for name, value in report["scope"].items() if value)
    if scope:
        lines += [f"Scope: {scope}.", ""]
    lines += ["## 1. Executive summary", ""] + [f"- {sentence}" for sentence in report["summary"]] + [""]

    source = report["source"]
    lines += ["## 2. Data source and period", "",
              f"- Period: {source['period']['from']} to {source['period']['to']} (end excluded)",
              f"- Business numbers: {', '.join(source['numbers']) or 'none'}",
              f"- Customers active: {source['customers']:,}",
              f"- Events counted: {source['events']['inbound']:,} from customers, {source['events']['outbound']:,} of ours"]
    lines += [f"- Excluded: {count:,} {reason}" for reason, count in source["excluded"].items()] or ["- Excluded: none"]

    segmentation = report["segmentation"]
    lines += ["", "## 3. Segmentation", "", f"{segmentation['customers']:,} customers with a tier at the end of the period.", ""]
    rows = []
    for tier, entry in segmentation["tiers"].items():
        expected = entry.get("expected")
        flag = " (outside)" if entry.get("outside_expected") else ""
        rows.append([tier, entry["rule"], f"{entry['count']:,}", _pct(entry["share"]),
                     f"{expected[0] * 100:.0f}-{expected[1] * 100:.0f}%{flag}" if expected else "-"])
    lines += _table(["tier", "rule", "customers", "share", "expected"], rows)
    for title, key in (("By country", "by_country"), ("By owner", "by_owner")):
        lines += ["", f"{title}:", ""]
        lines += _table([key[3:]] + TIERS + ["total"],
                        [[name] + [str(row[t]) for t in TIERS + ["total"]] for name, row in segmentation[key].items()])

    reply = report["reply_rate"]
    messages = reply["messages"]
    lines += ["", "## 4. Reply rate", "",
              f"{reply['replied']:,} of {reply['messaged']:,} customers we messaged replied: {_pct(reply['rate'])}.", ""]
    lines += _table(["tier", "messaged", "replied", "rate"],
                    [[t, str(v["messaged"]), str(v["replied"]), _pct(v["rate"])] for t, v in reply["by_tier"].items()])
    lines += ["", "After our 1st, 2nd and 3rd message in a row:", ""]
    lines += _table(["touch", "touches", "replied", "rate"],
                    [[n, str(v["touches"]), str(v["replied"]), _pct(v["rate"])] for n, v in reply["touches"].items()])
    lines += ["", f"Messages: {messages['sent']:,} sent, {messages['delivered']:,} delivered ({_pct(messages['delivered_rate'])}), "
              f"read rate {_pct(messages['read_rate'])} over {messages['read_rate_base']:,} delivered messages to customers who send "
              f"read receipts ({messages['customers_without_read_receipts']:,} customers excluded: they never do)."]

    lines += ["", "## 5. Interaction frequency", "", "high: 3 or more a week; medium: 1 to 3; low: under 1.", ""]
    lines += _table(["band", "customers", "share", "by tier"],
                    [[band, str(v["count"]), _pct(v["share"]), ", ".join(f"{t} {n}" for t, n in v["by_tier"].items()) or "-"]
                     for band, v in report["frequency"].items()])

    lines += ["", "## 6. Content interaction types", ""]
    lines += _table(["type", "messages", "share", "customers"],
                    [[kind, str(v["messages"]), _pct(v["share"]), str(v["customers"])] for kind, v in report["content"].items()])

    funnel = report["funnel"]
    lines += ["", "## 7. Conversion funnel", ""] + _funnel_table(funnel)
    lines += ["", f"The step that loses the most: {funnel['biggest_loss'] or 'n/a'}."]
    for title, key in (("Per business number", "by_number"), ("Per owner", "by_owner")):
        for name, steps in funnel[key].items():
            lines += ["", f"{title} {name}:", ""] + _funnel_table(steps)

    back = report["reactivation"]
    lines += ["", "## 8. Dormant reactivation", "",
              f"{back['came_back']:,} of {back['dormant_at_start']:,} customers cold or dead at the start came back "
              f"({_pct(back['rate'])}); median time from our last message to their comeback "
              f"{_duration(back['time_to_come_back_median_s'])}.", ""]
    lines += _table(["campaign tag", "messaged", "replied", "reply rate", "reactivated", "reactivation rate"],
                    [[tag, str(v["messaged"]), str(v["replied"]), _pct(v["reply_rate"]), str(v["reactivated"]),
                      _pct(v["reactivation_rate"])] for tag, v in back["by_campaign"].items()])
    lines += ["", f"Significance: {back['significance']}."]

    local = report["local_time"]
    lines += ["", "## 9. Activity by customer local time", "",
              "Messages by weekday and hour on the customer's own clock:", ""]
    lines += _table(["day"] + [f"{h:02d}" for h in range(24)],
                    [[day] + [str(n) for n in counts] for day, counts in zip(local["weekdays"], local["heatmap"])])
    lines += ["", "Best hours to write, per region: "
              + ("; ".join(f"{region} {', '.join(f'{h:02d}:00' for h in hours)}" for region, hours in local["best_hours"].items())
                 or "n/a") + "."]

    speed = report["reply_speed"]
    lines += ["", "## 10. Speed of our replies", "",
              f"Median {_duration(speed['median_s'])}, p90 {_duration(speed['p90_s'])} over {speed['answers']:,} answers; "
              f"hot customers answered within 5 minutes: {_pct(speed['hot_within_5_min'])}.", ""]
    lines += _table(["tier / owner", "answers", "median", "p90"],
                    [[name, str(v["answers"]), _duration(v["median_s"]), _duration(v["p90_s"])]
                     for name, v in list(speed["by_tier"].items()) + list(speed["by_owner"].items())])

    lines += ["", "## 11. Action plan", ""]
    for tier, plan in report["action_plan"].items():
        lines += [f"**{tier}** ({plan['customers']:,}): {plan['action']}; cadence {plan['cadence']}.", ""]
        if plan["list"]:
            lines += _table(["customer", "owner", "last contact", "last signals", "orders"],
                            [[row["name"] or row["key"], row["owner"] or "-", row["last_contact"] or "-",
                              ", ".join(row["last_signals"]) or "-", str(row["orders"])] for row in plan["list"]]) + [""]
    return "\n".join(lines).rstrip() + "\n"


def _period(report: dict) -> str:
    period = report["source"]["period"]
    last = date.fromisoformat(period["to"][:10]) - timedelta(days=1)
    return f"{period['from'][:10]} to {last.isoformat()}"


def _funnel_table(steps: dict) -> list[str]:
    return _table(["step", "customers", "from the step before"],
                  [[name, str(steps[name]["count"]), _pct(steps[name]["conversion"]) if steps[name]["conversion"] is not None
                    else "-"] for name in ("reached", "replied", "inquired", "ordered")])


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(str(cell).ljust(width) for cell, width in zip(cells, widths)) + " |"

    return [line(header), "|" + "|".join("-" * (width + 2) for width in widths) + "|"] + [line(row) for row in rows]


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
