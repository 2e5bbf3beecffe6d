"""Signing in and out: with a one-time link that `wapulse reps link REP` prints, or with a
password set by `wapulse reps password REP`.

A link is the rep's id and a random nonce, signed with WAPULSE_SECRET_KEY (itsdangerous) so that
a forged or altered one is refused at once; it expires after a day and is good once (the store
keeps the nonce's hash and when it was used). Opening a link shows a button: a preview bot that
fetches the page (Slack, a mail scanner) does not use it up. Attempts are limited per address
and per rep.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, redirect, render_template, request, session, url_for
from itsdangerous import BadSignature, URLSafeTimedSerializer

from store.db import write_transaction
from webhook.desk import engine, guarded, limiter, person, settings

blueprint = guarded(Blueprint("auth", __name__, template_folder="templates", static_folder="static",
                              static_url_path="/desk-static"))
ATTEMPTS_PER_ADDRESS = "20 per 15 minutes"
ATTEMPTS_PER_REP = "10 per 15 minutes"
_LINK_SALT = "wapulse sign-in link"


def link_for(rep: str, nonce: str) -> str:
    """The sign-in URL for a nonce the store issued (store.accounts.create_link)."""
    token = URLSafeTimedSerializer(settings().secret_key, salt=_LINK_SALT).dumps({"rep": rep, "nonce": nonce})
    return f"{settings().desk_url()}{url_for('auth.link')}?token={token}"


def _attempted_rep() -> str:
    return "rep:" + (request.form.get("rep") or _link_contents(request.form.get("token", "")).get("rep", ""))[:64]


@blueprint.route("/signin", methods=["GET", "POST"])
@limiter.limit(ATTEMPTS_PER_ADDRESS, methods=["POST"])
@limiter.limit(ATTEMPTS_PER_REP, key_func=_attempted_rep, methods=["POST"])
def sign_in():
    next_page = safe_next(request.values.get("next"))
    if request.method == "GET":
        return render_template("desk/signin.html", next_page=next_page, error=None)
    from store.accounts import check_password

    rep_id, password = request.form.get("rep", "").strip(), request.form.get("password", "")
    rep = settings().reps.get(rep_id)
    with engine().connect() as connection:
        valid = check_password(connection, rep_id, password)
    if rep is None or not valid:
        return render_template("desk/signin.html", next_page=next_page, rep=rep_id,
                               error="That rep id and password do not match."), 401
    _start_session(rep.id)
    return redirect(next_page or url_for("followups.page"))


@blueprint.route("/signin/link", methods=["GET", "POST"])
@limiter.limit(ATTEMPTS_PER_ADDRESS, methods=["POST"])
def link():
    token = request.values.get("token", "")
    contents = _link_contents(token)
    rep = settings().reps.get(contents.get("rep", ""))
    if rep is None:
        return _bad_link()
    if request.method == "GET":
        return render_template("desk/link.html", rep=rep, token=token)
    from store.accounts import redeem_link

    with write_transaction(engine()) as connection:
        redeemed = redeem_link(connection, contents.get("nonce", ""), rep.id, settings().now_ts())
    if not redeemed:
        return _bad_link()
    _start_session(rep.id)
    return redirect(url_for("followups.page"))


@blueprint.post("/signout")
def sign_out():
    session.clear()
    return redirect(url_for("auth.sign_in"))


def _link_contents(token: str) -> dict:
    from store.accounts import LINK_LIFETIME_S

    try:
        contents = URLSafeTimedSerializer(settings().secret_key, salt=_LINK_SALT).loads(token, max_age=LINK_LIFETIME_S)
    except BadSignature:  # also expired ones (SignatureExpired)
        return {}
    return contents if isinstance(contents, dict) else {}


def _bad_link():
    return render_template("desk/message.html", title="This link does not work",
                           text="It is not a sign-in link of ours, it has expired (links last a day), or it was "
                                "used already (each works once). Ask for a new one: wapulse reps link YOUR-ID."), 400


def _start_session(rep: str) -> None:
    session.clear()  # a new session for a new sign-in, so nothing of an earlier one carries over
    session.permanent = True
    session.update(rep=rep, since=settings().now_ts())


def safe_next(target: str | None) -> str | None:
    """Where to go after signing in: a path of this site only (no open redirect)."""
    if not target:
        return None
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc and target.startswith("/") and "\\" not in target else None


@blueprint.get("/")
def home():
    return redirect(url_for("followups.page") if person() else url_for("auth.sign_in"))
