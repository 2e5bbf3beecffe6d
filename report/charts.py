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


SIZES = {"wide": (8, 3.6), "narrow": (3.7, 4.2)}
"""Inches, drawn 96 px each in a browser: narrow fits a 390 px phone, its text at the size it was drawn."""


def draw(report: dict, name: str, image_format: str, size: str = "wide") -> bytes:
    """One chart of the report (a name in CHARTS) as SVG or PNG bytes, in one of SIZES."""
    buffer = io.BytesIO()
    figure_of(report, name, size).savefig(buffer, format=image_format, metadata=_NO_DATES[image_format])
    return buffer.getvalue()


def figure_of(report: dict, name: str, size: str) -> Figure:
    """The chart on a figure of its own, before it is saved (the tests measure its text)."""
    figure = Figure(figsize=SIZES[size], dpi=110, layout="constrained")
    CHARTS[name](figure, report)
    return figure


_NO_DATES = {"svg": {"Date": None}, "png": {"Software": None}}  # the same report gives the same bytes


def _narrow(figure: Figure) -> bool:
    return figure.get_figwidth() < SIZES["wide"][0]


def _tiers(figure: Figure, report: dict) -> None:
    tiers = report["segmentation"]["tiers"]
    names = list(EXPECTED_SHARES)
    shares = [(tiers[tier]["share_of_four"] or 0) * 100 for tier in names]
    axes = figure.subplots()
    for row, (tier, share) in enumerate(zip(names, shares)):
        low, high = EXPECTED_SHARES[tier]
        axes.barh(row, (high - low) * 100, left=low * 100, height=0.8, color="#dddddd",
                  label="expected range" if row == 0 else None)
        axes.barh(row, share, height=0.4, color=COLOURS[tier])
    _bar_names(axes, [f"{tier}\n{share:.1f}% ({tiers[tier]['count']:,})" for tier, share in zip(names, shares)])
    axes.set_xlabel("share of the customers hot, warm, cold or dead (%)", wrap=True)
    axes.set_xlim(0, max(shares + [45]) + 5)
    figure.legend(loc="outside lower center", frameon=False)  # outside: it hides no bar
    axes.set_title("Tier shares against the ranges practitioners expect", wrap=True)


def _bar_names(axes, names: list[str]) -> None:
    """Each bar's name and figures beside the axis, top bar first: laid out with the axes, never
    over a bar or cut off at the edge, however long the bar."""
    axes.set_yticks(range(len(names)), names)
    axes.invert_yaxis()


def _funnel(figure: Figure, report: dict) -> None:
    funnel = report["funnel"]
    counts = [funnel[step]["count"] for step in FUNNEL_STEPS]
    axes = figure.subplots()
    axes.barh(range(len(counts)), counts, color=COLOURS["ours"])
    _bar_names(axes, [f"{step}\n{count:,}" for step, count in zip(FUNNEL_STEPS, counts)])
    axes.set_xlabel("customers", wrap=True)
    axes.set_xlim(0, max(counts + [1]) * 1.05)
    loss = f" (biggest loss: {listed(funnel['biggest_loss'])})" if funnel["biggest_loss"] else ""
    axes.set_title(f"Conversion funnel{loss}", wrap=True)


def _heatmap(figure: Figure, report: dict) -> None:
    local = report["local_time"]
    axes = figure.subplots()
    image = axes.imshow(local["heatmap"], aspect="auto", cmap="YlOrRd", interpolation="nearest")
    axes.set_yticks(range(len(local["weekdays"])), local["weekdays"])
    axes.set_xticks(range(0, 24, 3), [f"{hour:02d}" for hour in range(0, 24, 3)])
    axes.set_xlabel("hour on the customer's own clock", wrap=True)
    figure.colorbar(image, ax=axes, label="messages")
    axes.set_title("When customers write", wrap=True)


def _trend(figure: Figure, report: dict) -> None:
    weeks = report["trend"]
    axes = figure.subplots()
    labels = [week["from"][5:10] + ("" if week["days"] == 7 else f" ({week['days']} d)") for week in weeks]
    axes.plot(labels, [week["inbound"] for week in weeks], marker="o", label="messages from customers", color=COLOURS["cold"])
    axes.plot(labels, [week["outbound"] for week in weeks], marker="o", label="messages of ours", color=COLOURS["ours"])
    axes.plot(labels, [week["customers_writing"] for week in weeks], marker="o", label="customers writing",
              color=COLOURS["hot"])
    axes.set_ylim(bottom=0)
    axes.set_xlabel("week from (month-day)", wrap=True)
    axes.tick_params(axis="x", labelrotation=90 if _narrow(figure) else 45, labelsize=8)  # apart on a phone
    figure.legend(loc="outside lower center", ncols=1 if _narrow(figure) else 3, frameon=False, fontsize=8)
    axes.set_title("Week by week", wrap=True)


CHARTS = {"tiers": _tiers, "funnel": _funnel, "heatmap": _heatmap, "trend": _trend}
