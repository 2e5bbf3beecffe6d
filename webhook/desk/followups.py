"""My follow-ups: a rep's open reminders, most urgent first, and what they do about each (done,
snooze, reassign, open the chat). The list refreshes itself every few seconds (htmx polling a
fragment that answers 204 while nothing changed), so a new reminder shows up without a reload."""

from __future__ import annotations

import hashlib

from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, request, url_for

from scoring.followups import (
    RULE_TITLES, SNOOZE_LABELS, Action, Snooze, State, may_reassign, may_work, snooze_until,
)
from scoring.reminders import Rule
from store import followups as store
from store.db import write_transaction
from workers import channels
from webhook.desk import (
    engine, guarded, local_time, name_of, person, reps_to_work, settings, signed_in, viewed_rep,
)
from webhook.desk.auth import safe_next

blueprint = guarded(Blueprint("followups", __name__))
POLL_SECONDS = 5


@blueprint.get("/followups")
@signed_in
def page():
    return render_template("desk/followups.html", **_lists(viewed_rep()), poll_seconds=POLL_SECONDS)


@blueprint.get("/followups/list")
@signed_in
def fragment():
    """The list alone, for the page's polling: 204 (htmx keeps what it shows) while it is unchanged."""
    lists = _lists(viewed_rep())
    if request.args.get("version") == lists["version"]:
        return Response(status=204)
    return render_template("desk/_followup_list.html", **lists, poll_seconds=POLL_SECONDS)


def _lists(rep: str | None) -> dict:
    with engine().connect() as connection:
        open_ones = store.followups(connection, rep, State.OPEN)
        snoozed = store.followups(connection, rep, State.SNOOZED)
        total = store.count_open(connection, rep)
    version = hashlib.sha256(repr([(row.id, row.rep, row.state) for row in open_ones + snoozed]).encode()).hexdigest()[:16]
    return {"open_ones": open_ones, "snoozed": snoozed, "total": total, "version": version,
            "snoozes": SNOOZE_LABELS, "chat_link": chat_link, "may_reassign": may_reassign,
            "templates": settings().templates}


def chat_link(row) -> str | None:
    """Where "Open chat" goes: `[desk] chat_url` filled with the customer's fields (wa.me by
    default); none when the template needs a field the customer lacks (a BSUID-only customer
    has no number)."""
    fields = {"wa_id": row.wa_id, "user_id": row.user_id, "key": row.key, "phone_number_id": row.phone_number_id}
    try:
        return settings().chat_url.format_map({name: value for name, value in fields.items() if value})
    except KeyError:
        return None


# ---- actions --------------------------------------------------------------------------------------


@blueprint.post("/followups/<reminder>/<rep>/done")
@signed_in
def done(reminder: str, rep: str):
    row = _workable(reminder, rep)
    with write_transaction(engine()) as connection:
        store.close(connection, reminder, rep, Action.DONE, person().id, settings().now_ts())
    flash(f"Done: {_about(row)}.", "done")
    return _back()


@blueprint.post("/followups/<reminder>/<rep>/snooze")
@signed_in
def snooze(reminder: str, rep: str):
    row = _workable(reminder, rep)
    try:
        choice = Snooze(request.form.get("until", ""))
    except ValueError:
        abort(400, "choose how long to snooze")
    now, zone = settings().now_ts(), settings().reps[rep].timezone if rep in settings().reps else "UTC"
    until = snooze_until(choice, now, zone)
    with write_transaction(engine()) as connection:
        store.snooze(connection, reminder, rep, person().id, until, now)
    whose = f"{name_of(rep)}'s time, " if rep != person().id else ""
    flash(f"Snoozed until {local_time(until, zone)} ({whose}{zone}): {_about(row)}.", "done")
    return _back()


@blueprint.post("/followups/<reminder>/<rep>/reassign")
@signed_in
def reassign(reminder: str, rep: str):
    with engine().connect() as connection:
        row = store.followup(connection, reminder, rep)
    if row is None:
        abort(404)
    if not may_reassign(person(), row.owner):
        abort(403)
    to_rep = request.form.get("to", "")
    if to_rep not in {rep.id for rep in reps_to_work()} or to_rep == row.owner:
        abort(400, "choose another rep")
    with write_transaction(engine()) as connection:
        queued = store.reassign(connection, settings().reminder_setup, row.customer_id, to_rep, person().id,
                                settings().now_ts())
    if queued:
        from workers.reminders import request_delivery

        request_delivery(current_app.extensions["wapulse.redis"])
    flash(f"{row.name or row.key} is now {name_of(to_rep)}'s, with the follow-ups that were open about them.", "done")
    return _back()


@blueprint.post("/followups/<reminder>/<rep>/template")
@signed_in
def send_template(reminder: str, rep: str):
    """Send the customer one of the approved templates of wapulse.toml through the Cloud API."""
    row = _workable(reminder, rep)
    template = settings().templates.get(request.form.get("template", ""))
    if template is None:
        abort(400, "choose one of the templates")
    refusal = template_refusal(row)
    if refusal is not None:
        flash(f"Not sent: {refusal}", "error")
        return _back()
    fields = {"name": row.name, "first_name": (row.name or "").split(" ")[0], "wa_id": row.wa_id,
              "country": row.country, "rep": settings().reps[rep].name if rep in settings().reps else rep}
    account = channels.WhatsAppSettings(settings().whatsapp_token, settings().graph_url)
    try:
        message_id = channels.send_template(account, row.phone_number_id, row.wa_id, template, template.fill(fields),
                                            settings().delivery_deadline_s)
    except (channels.Refused, channels.RetryLater) as error:
        flash(f"Not sent: Meta did not take it ({error}).", "error")
        return _back()
    with write_transaction(engine()) as connection:
        store.record(connection, reminder, rep, person().id, Action.TEMPLATE, settings().now_ts(),
                     {"template": template.name, "campaign": template.campaign, "message": message_id})
    flash(f"Sent “{template.label}” to {row.name or row.key}.", "done")
    return _back()


def template_refusal(row) -> str | None:
    """Why a template cannot go to this customer, or None."""
    if not settings().whatsapp_token:
        return "no WHATSAPP_ACCESS_TOKEN is set, so wapulse cannot send WhatsApp messages."
    if row.opted_out:
        return "they opted out of marketing messages."
    if row.unreachable:
        return "our messages no longer reach them (Meta answered 131026)."
    if not row.wa_id:
        return "they have no phone number on record (BSUID only)."
    if not row.phone_number_id:
        return "they never wrote to one of our numbers, so there is none to send from."
    return None


def _about(row) -> str:
    return f"{RULE_TITLES[Rule(row.rule)].lower()}, {row.name or row.key}"


def _workable(reminder: str, rep: str):
    """The follow-up, if it exists and the person signed in may work it (else 404 or 403)."""
    with engine().connect() as connection:
        row = store.followup(connection, reminder, rep)
    if row is None:
        abort(404)
    if not may_work(person(), rep):
        abort(403)
    return row


def _back():
    return redirect(safe_next(request.form.get("back")) or url_for("followups.page"))
