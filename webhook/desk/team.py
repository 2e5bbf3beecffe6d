"""The team page (managers only): per rep and per business number, where their customers stand
and moved, how their follow-ups are kept, how fast questions are answered, and whether the
reminders acted on bring customers back, each beside the same figure for the whole team."""

from __future__ import annotations

from dataclasses import asdict

from flask import Blueprint, abort, render_template, request

from scoring.customer import utc_day
from webhook.desk import engine, guarded, person, settings, signed_in

blueprint = guarded(Blueprint("team", __name__))


@blueprint.get("/team")
@signed_in
def page():
    if not person().is_manager:
        abort(403)
    from report.build import period_of  # the report's modules load numpy and scipy: only when a manager asks
    from report.figures import TIERS
    from report.team import Slas, team
    from report.team_load import team_facts
    from store import db

    now, config = settings().now_ts(), settings()
    try:
        period = period_of(request.args.get("from") or None, request.args.get("to") or None, now, prefix="")
    except ValueError as error:
        return render_template("desk/team.html", error=str(error), figures=None, asked=request.args), 400
    rules = config.reminder_setup.rules
    with db.read_snapshot(engine()) as connection:
        facts = team_facts(connection, period, now, config.reminder_setup.rep_numbers,
                           answers_within_s=max(rules.sla_hot_s, rules.sla_other_s))
    figures = team(facts, period, now, asdict(config.tier_rules), Slas(rules.sla_hot_s, rules.sla_other_s))
    names = {customer.id: customer.name or customer.key for customer in facts.activity.people}
    keys = {customer.id: customer.key for customer in facts.activity.people}
    return render_template("desk/team.html", figures=figures, first_day=utc_day(period.start),
                           last_day=utc_day(period.end - 1), names=names, keys=keys, error=None, asked=request.args,
                           tiers=TIERS, slas=rules, hold_back=rules.hold_back_percent)


def managers_only(error):
    return render_template("desk/message.html", title="Managers only",
                           text="The team page is for managers ([managers] in wapulse.toml)."), 403


blueprint.register_error_handler(403, managers_only)
