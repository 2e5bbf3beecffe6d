"""The activity report in the desk: `wapulse report`'s options as a form, the HTML form of the
report on the page (the same markup as `wapulse report --format html`), and downloads in every
form. A manager reports on anyone; a rep on their own customers only."""

from __future__ import annotations

from flask import Blueprint, Response, abort, render_template, request
from markupsafe import Markup

from store import desk as store
from webhook.desk import engine, guarded, person, settings, signed_in

blueprint = guarded(Blueprint("report", __name__))
ASKED = ("from", "to", "compare", "number", "owner")


@blueprint.get("/report")
@signed_in
def page():
    from report.build import report_of  # the report loads numpy and scipy: only when asked for
    from report.render import FORMS, html_parts

    options = _options()
    with engine().connect() as connection:
        numbers = store.choices(connection, None if person().is_manager else person().id)["numbers"]
    shown = {"options": options, "numbers": numbers, "forms": list(FORMS), "query": _query(options)}
    try:
        asked = _request({**options, "format": "html"})
    except ValueError as error:
        return render_template("desk/report.html", error=str(error), **shown), 400
    style, body = html_parts(report_of(engine(), asked, settings().tier_rules))
    return render_template("desk/report.html", error=None, report_style=Markup(style), report_body=Markup(body),
                           **shown)


@blueprint.get("/report/download")
@signed_in
def download():
    from report.build import produce
    from report.render import FORMS

    try:
        asked = _request({**_options(), "format": request.args.get("format") or "html"})
    except ValueError as error:
        return render_template("desk/message.html", title="Cannot make that report", text=str(error)), 400
    response = Response(produce(engine(), asked, settings().tier_rules), 200, content_type=FORMS[asked.form].media_type)
    response.headers["Content-Disposition"] = f'attachment; filename="{asked.file_name}"'
    return response


def _request(options: dict[str, str | None]):
    """The report asked for, checked as `wapulse report` checks its options (ValueError says what is wrong)."""
    from report.build import request_of
    from report.load import StoredNumbers

    return request_of(options, settings().now_ts(), settings().reps, StoredNumbers(engine()),
                      settings().reminder_setup.rep_numbers, prefix="")


def _options() -> dict[str, str | None]:
    """The report's options as asked (a manager's View menu choosing the rep when no rep is
    asked); a rep's report is of their own customers, and asking for another rep's is refused."""
    options = {name: (request.args.get(name) or "").strip() or None for name in ASKED}
    me = person()
    if me.is_manager:
        options["owner"] = options["owner"] or request.args.get("rep") or None  # the View menu's rep
    else:
        if options["owner"] not in (None, me.id):
            abort(403)
        options["owner"] = me.id
    return options


def _query(options: dict[str, str | None]) -> dict[str, str]:
    """The options as a download link's query."""
    return {name: value for name, value in options.items() if value}


def not_theirs(error):
    return render_template("desk/message.html", title="Not yours",
                           text="A rep's report covers their own customers only; a manager can see anyone's."), 403


blueprint.register_error_handler(403, not_theirs)
