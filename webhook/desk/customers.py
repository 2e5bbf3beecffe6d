"""My customers (the board) and the customer page. A rep sees only the customers they own: another
rep's customer is 403 and says nothing about them; a manager sees everyone."""

from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, url_for

from scoring.customer import CustomerState
from scoring.signals import STRUCTURAL_SIGNALS
from scoring.tiers import Tier
from store import desk as store
from store import followups, queries
from webhook.desk import engine, guarded, may_see_customer, settings, signed_in, viewed_rep

blueprint = guarded(Blueprint("customers", __name__))
FIGURE_NOTES = {
    "rfm": "Recency, frequency and money, each 1 to 5 against all customers (5 is best).",
    "lifecycle": "Where they are: acquisition (no order yet), onboarding, expansion, retention, or churn risk.",
    "churn_risk": "1 to 10: how likely they are to drift away, from their activity falling against their own "
                  "usual rate, time since their last order, negative words and failed deliveries.",
    "intent": "0 to 100: buying signals of the last 30 days (price, samples, specs, orders), each counting half as much for every week of its age.",
    "frequency_band": "How often they interact: high (3 or more a week), medium (1 to 3) or low.",
    "value": "What they ordered so far, the chance they are still active, and the value to expect in 90 days.",
}


@blueprint.get("/customers")
@signed_in
def board():
    query = store.BoardQuery(
        owner=viewed_rep(), tier=_choice(request.args.get("tier"), {tier.value for tier in Tier}),
        number=request.args.get("number") or None, country=request.args.get("country") or None,
        campaign=request.args.get("campaign") or None, signal=request.args.get("signal") or None,
        search=(request.args.get("q") or "").strip()[:100] or None,
        sort=_choice(request.args.get("sort"), set(store.SORTS)) or "last_contact",
        page=_page(request.args.get("page")),
    )
    with engine().connect() as connection:
        rows, total, counts = store.board(connection, query)
        offered = store.choices(connection, query.owner)
        backfills = [backfill for backfill in queries.backfills(connection) if not backfill["done"]]
    pages = max(1, -(-total // store.BOARD_PAGE))
    if query.page > pages:  # a page past the end (the board shrank, or a typed URL): its last page
        return redirect(url_for("customers.board", **{**request.args, "page": pages}))
    return render_template("desk/customers.html", rows=rows, total=total, counts=counts, query=query, pages=pages,
                           offered=offered, signals=sorted(settings().signal_matcher.signal_names | STRUCTURAL_SIGNALS), sorts=store.SORTS,
                           tiers=[tier.value for tier in Tier], board_url=board_url, backfills=backfills)


@blueprint.get("/customers/<path:key>")
@signed_in
def customer(key: str):
    with engine().connect() as connection:
        row = store.customer_row(connection, key)
        if row is None:
            abort(404)
        if not may_see_customer(row.owner):
            abort(403)
        before = _page(request.args.get("before"), default=None)
        moments = store.timeline(connection, row.id, before, {rep.id: rep.name for rep in settings().reps.values()})
        current = followups.of_customer(connection, row.id)
    state = CustomerState.from_json(row.state)
    base = _base()
    figures = base.figures(state, row.unreachable) if base is not None else None
    return render_template("desk/customer.html", customer=row, state=state, figures=figures, notes=FIGURE_NOTES,
                           moments=moments, current=current, newer=before is not None,
                           older=moments[-1].at if len(moments) >= store.TIMELINE_PAGE else None)


def board_url(**changes) -> str:
    """This board's URL with some of its filters changed (an empty value drops one)."""
    wanted = {**request.args.to_dict(), **{name: str(value) for name, value in changes.items()}}
    return url_for("customers.board", **{name: value for name, value in wanted.items() if value})


_kept_base: dict[int, object] = {}  # computed_at -> Base: a process reads the kept base once


def _base():
    """The base a customer is ranked against, as workers.figures keeps it (None before it first
    runs: the page then shows no RFM and no value)."""
    from store.figure_base import base_computed_at, load_base

    with engine().connect() as connection:
        computed_at = base_computed_at(connection)
        if computed_at is not None and computed_at not in _kept_base:
            _kept_base.clear()
            _kept_base[computed_at] = load_base(connection, settings().figure_rules)
    base = _kept_base.get(computed_at)
    return base.at(settings().now_ts()) if base is not None else None


def _choice(value: str | None, allowed: set[str]) -> str | None:
    return value if value in allowed else None


def _page(value: str | None, default: int | None = 1) -> int | None:
    return max(1, int(value)) if value and value.isdigit() and len(value) < 12 else default
