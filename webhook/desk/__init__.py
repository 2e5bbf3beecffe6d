"""The follow-up desk: pages where reps act on their reminders and see their customers, and
managers see everyone's, served by the same Flask app as the webhook.

Reps and managers are wapulse.toml's `[[reps]]`; they sign in with a one-time link or a password
(webhook.desk.auth). Sessions live in a cookie signed with WAPULSE_SECRET_KEY; every form carries
a CSRF token (Flask-WTF); sign-in attempts are limited per address and per rep (Flask-Limiter,
counted in Redis). Pages are Jinja templates with one stylesheet and htmx, served from the
package: nothing is fetched from elsewhere, so the desk works offline.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import wraps
from zoneinfo import ZoneInfo

from flask import Flask, abort, current_app, g, redirect, render_template, request, session, url_for
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFError, CSRFProtect
from redis import Redis

from scoring.followups import RULE_TITLES
from scoring.reps import Rep
from workers.settings import Settings

csrf = CSRFProtect()

limiter = Limiter(key_func=get_remote_address)
SESSION_DAYS = 7


def init_app(app: Flask, settings: Settings, redis: Redis) -> None:
    from webhook.desk import auth, customers, followups, report, team

    app.extensions["wapulse.settings"] = settings
    app.extensions["wapulse.redis"] = redis  # where a reassignment asks for its reminders' delivery
    app.secret_key = settings.secret_key
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.desk_url().startswith("https://"),
        PERMANENT_SESSION_LIFETIME=timedelta(days=SESSION_DAYS),
        WTF_CSRF_CHECK_DEFAULT=False,  # checked by the desk's own pages only (desk_guard): the API has tokens
        WTF_CSRF_TIME_LIMIT=None,  # a token lives as long as its session
        RATELIMIT_STORAGE_URI=settings.redis_url, RATELIMIT_HEADERS_ENABLED=True,
        RATELIMIT_SWALLOW_ERRORS=True,  # a Redis hiccup must not lock everyone out
    )
    csrf.init_app(app)
    limiter.init_app(app)
    for blueprint in (auth.blueprint, followups.blueprint, customers.blueprint, team.blueprint, report.blueprint):
        app.register_blueprint(blueprint)
    app.add_template_filter(number)
    app.add_template_filter(money)
    app.add_template_filter(message_type)
    app.add_template_global(back_here, "back_here")
    app.add_template_global(since, "since")
    app.add_template_global(until, "until")
    app.add_template_global(local_time, "local_time")
    app.add_template_global(duration, "duration")
    app.add_template_global(percent, "percent")
    app.add_template_global(points, "points")
    app.add_template_global({rule.value: title for rule, title in RULE_TITLES.items()}, "titles")
    app.add_template_global(name_of, "name_of")
    app.context_processor(_page_context)

    @app.errorhandler(CSRFError)
    def csrf_refused(error: CSRFError):
        return render_template("desk/message.html", title="Refused",
                               text="This form was out of date or not ours (CSRF check). Go back, reload the page "
                                    "and try again."), 400

    @app.errorhandler(429)
    def too_many(error):
        return render_template("desk/message.html", title="Too many attempts",
                               text="Too many sign-in attempts. Wait a quarter of an hour, then try again."), 429


def not_yours(error):
    return render_template("desk/message.html", title="Not yours",
                           text="This customer is not yours: another rep's, or nobody's yet. A manager can reassign "
                                "them."), 403


def not_found(error):
    return render_template("desk/message.html", title="Not found",
                           text="There is no such page, or no customer by that name."), 404


def guarded(blueprint):
    """A desk blueprint: its requests pass desk_guard, and its refusals are pages."""
    blueprint.before_request(desk_guard)
    blueprint.register_error_handler(403, not_yours)
    blueprint.register_error_handler(404, not_found)
    return blueprint


DESK_BLUEPRINTS = ("auth", "followups", "customers", "team", "report")


def _page_context() -> dict:
    """What every desk page's frame shows: who is signed in, the reps a manager may view, whose
    view it is, and now."""
    if request.blueprint not in DESK_BLUEPRINTS or not settings().secret_key:
        return {}
    me = person()
    viewed = request.args.get("rep") if me is not None and me.is_manager else None
    return {"me": me, "reps": settings().reps, "workers": reps_to_work(),
            "viewed": viewed if viewed in settings().reps else None, "now_ts": settings().now_ts()}


def settings() -> Settings:
    return current_app.extensions["wapulse.settings"]


def desk_guard():
    """Before every desk request: the desk needs its secret key; forms need their CSRF token."""
    if not settings().secret_key:
        return render_template("desk/message.html", title="The desk is off",
                               text="Set WAPULSE_SECRET_KEY (32 characters or more; make run writes one into "
                                    ".env) and restart wapulse web."), 503
    if request.method == "POST":
        csrf.protect()
    return None


def person() -> Rep | None:
    """Who is signed in, if anyone; a session from before their password was last set is over."""
    if "person" not in g:
        g.person = _signed_in()
    return g.person


def _signed_in() -> Rep | None:
    from store.accounts import password_set_at

    rep = settings().reps.get(session.get("rep", ""))
    if rep is None:
        return None
    with engine().connect() as connection:
        changed = password_set_at(connection, rep.id)
    return rep if changed is None or session.get("since", 0) >= changed else None


def signed_in(view):
    """A page for signed-in people only: others go to sign in, and come back after."""

    @wraps(view)
    def guarded(*args, **kwargs):
        if person() is None:
            return redirect(url_for("auth.sign_in", next=request.full_path if request.method == "GET" else None))
        return view(*args, **kwargs)

    return guarded


def engine():
    from store.db import engine_for  # a webhook-only process never loads the store

    return engine_for(settings().database_url)


def viewed_rep() -> str | None:
    """Whose view this is: a rep's own; a manager's choice of rep (`?rep=`), or everyone's (None)."""
    me = person()
    if not me.is_manager:
        return me.id
    chosen = request.args.get("rep") or None
    if chosen is not None and chosen not in settings().reps:
        abort(404)
    return chosen


def name_of(rep: str | None) -> str:
    """A rep's name as wapulse.toml gives it (their id if they are no longer there)."""
    if rep is None:
        return "nobody"
    known = settings().reps.get(rep)
    return known.name if known is not None else rep


def reps_to_work() -> list[Rep]:
    """The reps who own customers and take follow-ups: the View menu's and Reassign's choices."""
    return [rep for rep in settings().reps.values() if rep.id in settings().owner_ids]


def may_see_customer(owner: str | None) -> bool:
    me = person()
    return me.is_manager or (owner is not None and owner == me.id)


def back_here() -> str:
    """Where an action on this page returns to: the page itself, or for the follow-ups that the
    list refreshes in place, the list in the view it was in (a manager looking at one rep's)."""
    if request.endpoint == "followups.fragment":
        return url_for("followups.page", **({"rep": request.args["rep"]} if request.args.get("rep") else {}))
    return request.full_path


# ---- how people read numbers, times and durations ----------------------------------------------


def number(value) -> str:
    """12,345 (and 1,234.5): thousands separated."""
    if value is None:
        return "–"
    return f"{value:,}" if isinstance(value, int) else f"{value:,.1f}"


MESSAGE_TYPES = {"media_placeholder": "media (its file follows later)", "revoke": "a message they deleted",
                 "unsupported": "a kind WhatsApp does not pass on", "unknown": "a kind WhatsApp does not pass on",
                 "interactive": "a button or list reply", "button": "a template button", "edit": "an edit"}
"""Message types as a rep reads them; the others (text, image, order...) read as they are."""


def message_type(type_: str | None) -> str:
    return MESSAGE_TYPES.get(type_ or "unknown", (type_ or "").replace("_", " "))


def money(amount) -> str:
    """15,430.00: an amount in a currency, as an invoice shows it."""
    return f"{amount:,.2f}"


def duration(seconds: int) -> str:
    """"just now", "12 min", "2 h 10 min", "3 days": as precise as a person needs."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return "under a minute"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes and hours < 10 else f"{hours} h"
    days = hours // 24
    return f"{days} days" if days < 60 else f"{days // 30} months"


def percent(value: float | None) -> str:
    """A share as the report shows it (imported when a page needs it: the report loads numpy)."""
    from report.figures import percent as shown

    return shown(value)


def points(difference: float | None) -> str:
    """A difference of two shares: "+12.5 points"."""
    return "–" if difference is None else f"{difference * 100:+.1f} points"


def since(at: int | None) -> str:
    """"3 days ago"."""
    if at is None:
        return "never"
    elapsed = settings().now_ts() - at
    return "just now" if elapsed < 60 else f"{duration(elapsed)} ago"


def until(at: int | None) -> str:
    """"in 2 h 10 min", or how long ago it passed."""
    if at is None:
        return "–"
    left = at - settings().now_ts()
    return f"in {duration(left)}" if left >= 0 else f"{duration(-left)} ago"


def local_time(at: int | None, timezone: str | None, with_date: bool = True) -> str:
    """An instant on a given clock ("Mon 30 Nov, 14:05"); UTC when the zone is unknown."""
    if at is None:
        return "–"
    moment = datetime.fromtimestamp(at, UTC).astimezone(ZoneInfo(timezone) if timezone else UTC)
    return moment.strftime("%a %d %b %Y, %H:%M" if with_date else "%H:%M") + ("" if timezone else " UTC")
