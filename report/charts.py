"""The report's charts, drawn by matplotlib without a display or a network: tier shares against
the expected ranges, the funnel, the local-time heatmap and the week-by-week trend. SVG for HTML
(embedded in the page), PNG for XLSX."""

from __future__ import annotations

import io

import matplotlib
from matplotlib.figure import Figure  # the object API: no pyplot state, safe in a web server's threads

from report.figures import EXPECTED_SHARES, FUNNEL_STEPS, listed

matplotlib.rcParams["svg.hashsalt"] = "wapulse"  # SVG ids from the chart, not from chance: one report, one file

COLOURS = {"hot": "#d62728", "warm": "#ff7f0e", "cold": "#1f77b4", "dead": "#7f7f7f", "ours": "#2ca02c"}


def draw(report: dict, name: str, image_format: str) -> bytes:
    """One chart of the report (a name in CHARTS) as SVG or PNG bytes."""
    figure = Figure(figsize=(8, 3.6), dpi=110, layout="constrained")
    CHARTS[name](figure, report)
    buffer = io.BytesIO()
    figure.savefig(buffer, format=image_format, metadata=_NO_DATES[image_format])
    return buffer.getvalue()


_NO_DATES = {"svg": {"Date": None}, "png": {"Software": None}}  # the same report gives the same bytes


def _tiers(figure: Figure, report: dict) -> None:
    tiers = report["segmentation"]["tiers"]
    names = list(EXPECTED_SHARES)
    axes = figure.subplots()
    for row, tier in enumerate(names):
        low, high = EXPECTED_SHARES[tier]
        axes.barh(row, (high - low) * 100, left=low * 100, height=0.8, color="#dddddd",
                  label="expected range" if row == 0 else None)
        share = (tiers[tier]["share_of_four"] or 0) * 100
        axes.barh(row, share, height=0.4, color=COLOURS[tier])
        axes.text(share + 0.5, row, f"{share:.1f}% ({tiers[tier]['count']:,})", va="center", fontsize=9)
    axes.set_yticks(range(len(names)), names)
    axes.invert_yaxis()
    axes.set_xlabel("share of the customers hot, warm, cold or dead (%)")
    axes.set_xlim(0, max([50] + [(tiers[t]["share_of_four"] or 0) * 100 + 15 for t in names]))  # room for the labels
    axes.legend(loc="upper right", frameon=False)
    axes.set_title("Tier shares against the ranges practitioners expect")


def _funnel(figure: Figure, report: dict) -> None:
    funnel = report["funnel"]
    counts = [funnel[step]["count"] for step in FUNNEL_STEPS]
    axes = figure.subplots()
    bars = axes.barh(range(len(counts)), counts, color=COLOURS["ours"])
    axes.bar_label(bars, [f"{count:,}" for count in counts], padding=3, fontsize=9)
    axes.set_yticks(range(len(counts)), FUNNEL_STEPS)
    axes.invert_yaxis()
    axes.set_xlabel("customers")
    axes.set_xlim(0, max(counts + [1]) * 1.15)
    axes.set_title("Conversion funnel" + (f" (biggest loss: {listed(funnel['biggest_loss'])})" if funnel["biggest_loss"] else ""))


def _heatmap(figure: Figure, report: dict) -> None:
    local = report["local_time"]
    axes = figure.subplots()
    image = axes.imshow(local["heatmap"], aspect="auto", cmap="YlOrRd", interpolation="nearest")
    axes.set_yticks(range(len(local["weekdays"])), local["weekdays"])
    axes.set_xticks(range(0, 24, 2), [f"{hour:02d}" for hour in range(0, 24, 2)])
    axes.set_xlabel("hour on the customer's own clock")
    figure.colorbar(image, ax=axes, label="messages")
    axes.set_title("When customers write")


def _trend(figure: Figure, report: dict) -> None:
    weeks = report["trend"]
    axes = figure.subplots()
    labels = [week["from"][5:10] + ("" if week["days"] == 7 else f" ({week['days']} d)") for week in weeks]
    axes.plot(labels, [week["inbound"] for week in weeks], marker="o", label="messages from customers", color=COLOURS["cold"])
    axes.plot(labels, [week["outbound"] for week in weeks], marker="o", label="messages of ours", color=COLOURS["ours"])
    axes.plot(labels, [week["customers_writing"] for week in weeks], marker="o", label="customers writing",
              color=COLOURS["hot"])
    axes.set_ylim(bottom=0)
    axes.set_xlabel("week from (month-day)")
    axes.tick_params(axis="x", labelrotation=45, labelsize=8)
    axes.legend(frameon=False, fontsize=8)
    axes.set_title("Week by week")


CHARTS = {"tiers": _tiers, "funnel": _funnel, "heatmap": _heatmap, "trend": _trend}
