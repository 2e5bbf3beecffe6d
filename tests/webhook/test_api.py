"""The API over real HTTP (a werkzeug server in a thread) against the test's database."""

from __future__ import annotations

import threading

import pytest
import requests
from werkzeug.serving import make_server

from tests.conftest import FIXTURES
from sqlalchemy import select

from store.models import Reminder
from tests.workers.test_reminders import SHEENA_AT, SHEENA_COLD
from tests.workers.test_tiers import process, set_now
from webhook import create_app
from webhook.api import BAD_NAME
from workers.settings import Settings
from workers.jobs import sweep_tiers

TOKEN = "api-token-for-tests"
REPS = """
[[reps]]
id = "ana"
channels = [{ type = "slack", url = "http://127.0.0.1:9/ana" }]

[[reps]]
id = "ben"
channels = [{ type = "slack", url = "http://127.0.0.1:9/ben" }]

[[reps]]
id = "maria"
role = "manager"

[owners]
default = "ana"
"""
BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def api(env, monkeypatch, tmp_path, redis, drain):
    """The web app with two reps (Slack on the discard port: nothing leaves the machine), over
    HTTP, and Sheena and a Brazilian customer known to it."""
    config = tmp_path / "wapulse.toml"
    config.write_text(REPS)
    monkeypatch.setenv("WAPULSE_CONFIG", str(config))
    monkeypatch.setenv("WAPULSE_API_TOKEN", TOKEN)
    set_now(monkeypatch, SHEENA_AT + 60)
    process(redis, drain, [(FIXTURES / "cloudapi" / name).read_bytes()
                           for name in ("messages__text.json", "messages__status-failed__marketing_opt_out.json")])
    server = make_server("127.0.0.1", 0, create_app(Settings.from_env()), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/api"
    server.shutdown()


def test_the_api_needs_the_bearer_token(api, monkeypatch):
    assert requests.get(f"{api}/customers/16505551234", timeout=5).status_code == 401
    wrong = requests.get(f"{api}/customers/16505551234", headers={"Authorization": "Bearer nope"}, timeout=5)
    assert (wrong.status_code, wrong.headers["WWW-Authenticate"]) == (401, 'Bearer realm="wapulse"')
    monkeypatch.delenv("WAPULSE_API_TOKEN")
    app = create_app(Settings.from_env())
    off = app.test_client().get("/api/customers/16505551234", headers=BEARER)
    assert (off.status_code, off.json["error"]) == (403, "the API is off: set WAPULSE_API_TOKEN")


def test_an_owner_set_through_the_api_is_the_one_reminded(api, engine, monkeypatch):
    answer = requests.put(f"{api}/customers/+16505551234/owner", json={"owner": "ben"}, headers=BEARER, timeout=5)
    assert (answer.status_code, answer.json()) == (200, {"customer": "+16505551234", "owner": "ben"})
    card = requests.get(f"{api}/customers/US.13491208655302741918", headers=BEARER, timeout=5).json()
    assert (card["key"], card["owner"]) == ("16505551234", "ben")
    set_now(monkeypatch, SHEENA_COLD + 3600)
    sweep_tiers()
    with engine.connect() as connection:
        owed = connection.execute(select(Reminder.rule, Reminder.rep).where(Reminder.rule == "went_cold")).all()
    assert owed == [("went_cold", "ben")]


def test_bad_owner_requests_change_nothing_and_say_why(api, engine):
    def put(customer: str, body) -> requests.Response:
        return requests.put(f"{api}/customers/{customer}/owner", json=body, headers=BEARER, timeout=5)

    for stranger in ("zoe", "maria"):  # no rep, and a manager (who owns no customers)
        assert put("16505551234", {"owner": stranger}).json() == {
            "error": "not reps who own customers ([[reps]] ids of wapulse.toml, managers excepted); no owner was changed",
            "unknown_reps": [stranger]}
    assert put("19999999999", {"owner": "ben"}).status_code == 404
    assert put("16505551234", {"rep": "ben"}).status_code == 400
    assert put("16505551234", ["ben"]).status_code == 400
    assert put("16505551234%00", {"owner": "ben"}).json()["error"] == BAD_NAME
    missing = requests.get(f"{api}/customers/19999999999", headers=BEARER, timeout=5)
    assert missing.status_code == 404
    owners = {"owners": [{"customer": "16505551234", "owner": "ben"}, {"customer": "19999999999", "owner": "ben"}]}
    partly = requests.post(f"{api}/owners", json=owners, headers=BEARER, timeout=5)
    assert (partly.status_code, partly.json()["unknown_customers"]) == (404, ["19999999999"])
    assert requests.post(f"{api}/owners", json={"owners": []}, headers=BEARER, timeout=5).status_code == 400
    card = requests.get(f"{api}/customers/16505551234", headers=BEARER, timeout=5).json()
    assert card["owner"] == "ana"  # the default of her number, given when she first wrote; no request changed it


def test_owners_in_bulk_are_set_together(api):
    owners = {"owners": [{"customer": "16505551234", "owner": "ben"}, {"customer": "5511991234567", "owner": "ana"}]}
    answer = requests.post(f"{api}/owners", json=owners, headers=BEARER, timeout=5)
    assert (answer.status_code, answer.json()) == (200, {"updated": 2})
    cards = [requests.get(f"{api}/customers/{key}", headers=BEARER, timeout=5).json() for key in ("16505551234", "5511991234567")]
    assert [card["owner"] for card in cards] == ["ben", "ana"]


def test_the_report_over_the_api_takes_the_commands_options(api):
    def get(**params) -> requests.Response:
        return requests.get(f"{api}/report", params=params, headers=BEARER, timeout=60)

    report = get(**{"format": "json", "from": "2026-06-01", "to": "2026-06-30", "compare": "none"})
    assert report.headers["Content-Type"] == "application/json"
    figures = report.json()
    assert figures["source"]["period"] == {"from": "2026-06-01T00:00:00Z", "to": "2026-07-01T00:00:00Z"}
    assert figures["comparison"] is None and figures["scope"] == {"number": None, "owner": None}
    assert get(owner="ben").headers["Content-Type"] == "text/markdown; charset=utf-8"
    workbook = get(**{"format": "xlsx", "from": "2026-06-01", "to": "2026-06-30"})
    assert workbook.content.startswith(b"PK") and workbook.headers["Content-Disposition"] == (
        'attachment; filename="wapulse-report-2026-06-01-to-2026-06-30.xlsx"')
    assert get(format="pdf").json() == {"error": "format must be one of md, json, html, csv, xlsx"}
    assert get(**{"from": "2026-02-30"}).json() == {"error": "from '2026-02-30' is not a date such as 2026-07-01"}
    assert get(owner="zoe").json() == {"error": "owner 'zoe' is not a rep ([[reps]] ids in wapulse.toml)"}
    assert get(number="12; DROP").json() == {"error": "number '12; DROP' is not a business phone number id (digits)"}
    assert get(number="999").json() == {"error": "number '999' is not a business number the store knows (nothing went through it)"}
    far = get(to="9999-12-31")
    assert (far.status_code, far.json()) == (400, {"error": "to 9999-12-31 is outside 2000-01-01 to 2099-12-31"})
    unknown = get(form="csv")
    assert (unknown.status_code, unknown.json()) == (
        400, {"error": "unknown parameters: form (known: from, to, compare, number, owner, format)"})
    assert requests.get(f"{api}/report", timeout=5).status_code == 401


def test_json_nested_deeper_than_any_decoder_follows_is_a_bad_request_not_unavailable(api):
    deep = b'{"owner":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    headers = {**BEARER, "Content-Type": "application/json"}
    for answer in (requests.put(f"{api}/customers/16505551234/owner", data=deep, headers=headers, timeout=30),
                   requests.post(f"{api}/owners", data=b'{"owners":' + deep + b"}", headers=headers, timeout=30)):
        assert answer.status_code == 400 and answer.json()["error"].startswith("the body must be JSON like")


def test_names_no_text_encoding_holds_are_a_bad_request_not_unavailable(api):
    headers = {**BEARER, "Content-Type": "application/json"}
    for answer in (
        requests.put(f"{api}/customers/16505551234/owner", data=b'{"owner":"\\ud800"}', headers=headers, timeout=5),
        requests.post(f"{api}/owners", data=b'{"owners":[{"customer":"16505551234","owner":"x\\udfff"}]}',
                      headers=headers, timeout=5),
        requests.post(f"{api}/owners", data=b'{"owners":[{"customer":"1650\\udfff","owner":"ana"}]}',
                      headers=headers, timeout=5),
    ):
        assert (answer.status_code, answer.json()["error"]) == (400, BAD_NAME)


def test_a_customer_erased_through_the_api_is_gone_and_the_others_stay(api, engine, monkeypatch):
    def erase(customer: str, headers=BEARER) -> requests.Response:
        return requests.delete(f"{api}/customers/{customer}", headers=headers, timeout=5)

    assert erase("16505551234", headers={}).status_code == 401
    assert (erase("16505551234").status_code, erase("16505551234").json()["error"]) == (
        503, "erasure needs WAPULSE_SECRET_KEY on the server")  # this server has none: nothing was erased
    assert requests.get(f"{api}/customers/16505551234", headers=BEARER, timeout=5).status_code == 200
    monkeypatch.setenv("WAPULSE_SECRET_KEY", "k" * 32)
    app = create_app(Settings.from_env()).test_client()
    assert app.delete("/api/customers/19999999999", headers=BEARER).status_code == 404
    assert app.delete("/api/customers/1650%00", headers=BEARER).json["error"] == BAD_NAME
    answer = app.delete("/api/customers/+16505551234", headers=BEARER)
    assert answer.status_code == 200 and answer.json["erased"] and answer.json["events"] == 1
    assert app.get("/api/customers/16505551234", headers=BEARER).status_code == 404
    assert app.get("/api/customers/5511991234567", headers=BEARER).status_code == 200
