"""The API for the systems around wapulse (a CRM, a script): read a customer, set who owns them,
erase them, fetch the activity report.

Every route needs `Authorization: Bearer <WAPULSE_API_TOKEN>`; without the variable the API is
off. Answers are JSON; a bad request changes nothing and says why.
"""

from __future__ import annotations

import hmac

import msgspec
from flask import Blueprint, Flask, Response, g, request

from workers.context import Context
from workers.settings import Settings

MAX_OWNERS_PER_REQUEST = 10_000
_json = msgspec.json.Encoder(decimal_format="number")


def register(app: Flask, settings: Settings) -> None:
    if settings.api_token:
        settings.reps  # a wapulse.toml the API cannot use stops start-up, not a request
    api = Blueprint("api", __name__, url_prefix="/api")
    context = Context(settings)  # for the use cases the API runs (its engine is made at first use)

    @api.before_request
    def authenticate():
        if refused := refusal(settings.api_token):
            return refused
        from store.db import engine_for  # imported here: a webhook-only process never loads the store

        g.engine = engine_for(settings.database_url)

    @api.get("/customers/<path:customer>")
    def read_customer(customer: str):
        from store import queries

        if not _fits(customer):
            return _answer({"error": BAD_NAME}, 400)
        view = queries.find_customer(g.engine, customer, settings.now_ts(), settings.figure_rules)
        if view is None:
            return _answer({"error": "no customer is known by that key, wa_id, BSUID or username"}, 404)
        return _answer(view)

    @api.delete("/customers/<path:customer>")
    def erase_customer(customer: str):
        """Erasure (GDPR Art. 17 and the like), as `wapulse erase`: everything about them, for good."""
        from workers.erasure import erase_customer as erase

        if not _fits(customer):
            return _answer({"error": BAD_NAME}, 400)
        if not settings.secret_key:
            return _answer({"error": "erasure needs WAPULSE_SECRET_KEY on the server"}, 503)
        erased = erase(context, customer)
        if erased is None:
            return _answer({"error": "no customer is known by that key, wa_id, BSUID or username"}, 404)
        return _answer({"erased": True, **vars(erased)})

    @api.put("/customers/<path:customer>/owner")
    def set_owner(customer: str):
        body = _json_body()
        if not isinstance(body, dict) or not isinstance(body.get("owner"), str):
            return _answer({"error": 'the body must be JSON like {"owner": "<rep id>"}'}, 400)
        return _assign([(customer.strip(), body["owner"].strip())], single=True)

    @api.post("/owners")
    def set_owners():
        body = _json_body()
        rows = body.get("owners") if isinstance(body, dict) else None
        if (not isinstance(rows, list) or not rows or len(rows) > MAX_OWNERS_PER_REQUEST
                or not all(isinstance(row, dict) and isinstance(row.get("customer"), str)
                           and isinstance(row.get("owner"), str) for row in rows)):
            return _answer({"error": 'the body must be JSON like {"owners": [{"customer": "...", "owner": "<rep id>"}]}'
                                     f" with 1 to {MAX_OWNERS_PER_REQUEST:,} rows"}, 400)
        return _assign([(row["customer"].strip(), row["owner"].strip()) for row in rows], single=False)

    def _assign(pairs: list[tuple[str, str]], single: bool) -> Response:
        """All or nothing, as `wapulse owners import`."""
        from store.db import write_transaction
        from store.reminders import assign_owners

        if not all(_fits(customer) and _fits(rep) for customer, rep in pairs):
            return _answer({"error": BAD_NAME}, 400)
        if strangers := sorted({rep for _, rep in pairs} - settings.owner_ids):
            return _answer({"error": "not reps who own customers ([[reps]] ids of wapulse.toml, managers "
                                     "excepted); no owner was changed", "unknown_reps": strangers}, 400)
        with write_transaction(g.engine) as connection:
            unknown = assign_owners(connection, pairs)
        if unknown:
            error = {"error": "no customer is known by that key, wa_id, BSUID or username"}
            return _answer(error, 404) if single else _answer({**error, "unknown_customers": unknown}, 404)
        return _answer({"customer": pairs[0][0], "owner": pairs[0][1]} if single else {"updated": len(pairs)})

    @api.get("/report")
    def read_report():
        """The activity report: the query parameters are `wapulse report`'s options."""
        from report.build import OPTIONS, produce, request_of
        from report.load import StoredNumbers
        from report.render import FORMS

        if unknown := sorted(set(request.args) - set(OPTIONS)):
            return _answer({"error": f"unknown parameters: {', '.join(unknown)} (known: {', '.join(OPTIONS)})"}, 400)
        try:
            asked = request_of(request.args, settings.now_ts(), settings.reps, StoredNumbers(g.engine),
                               settings.reminder_setup.rep_numbers)
        except ValueError as error:
            return _answer({"error": str(error)}, 400)
        response = Response(produce(g.engine, asked, settings.tier_rules), 200, content_type=FORMS[asked.form].media_type)
        if asked.form in ("csv", "xlsx"):
            response.headers["Content-Disposition"] = f'attachment; filename="{asked.file_name}"'
        return response

    app.register_blueprint(api)


BAD_NAME = "customers and reps are named by 1 to 255 printable characters"


def refusal(expected: str | None, variable: str = "WAPULSE_API_TOKEN") -> Response | None:
    """The answer to a request without the bearer token `expected` (None: it has it); `variable`
    names where the token is set."""
    if not expected:
        what = "API" if variable == "WAPULSE_API_TOKEN" else "scrape"
        return _answer({"error": f"the {what} is off: set {variable}"}, 403)
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected.encode()):
        response = _answer({"error": "a valid Authorization: Bearer token is required"}, 401)
        response.headers["WWW-Authenticate"] = 'Bearer realm="wapulse"'
        return response
    return None


def _json_body():
    """The request's JSON, or None when it is none (or nested deeper than Python can decode)."""
    try:
        return request.get_json(silent=True)
    except RecursionError:
        return None


def _fits(name: str) -> bool:
    """A name the store can look up and an answer can repeat (PostgreSQL refuses NUL characters,
    and no encoder writes a lone surrogate: neither is printable)."""
    return 0 < len(name) <= 255 and name.isprintable()


def _answer(payload: dict, status: int = 200) -> Response:
    return Response(_json.encode(payload), status, mimetype="application/json")
