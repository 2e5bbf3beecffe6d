"""The desk over real HTTP against SQLite and PostgreSQL: signing in, who sees what, CSRF, the
follow-up actions and what they change in the store, the board and the customer page."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from click.testing import CliRunner
from sqlalchemy import select

from store.models import Customer, Reminder, ReminderAction
from tests.webhook.conftest import GRAPH, NOW, PASSWORDS
from wapulse.cli import main


def signin_link(rep: str) -> str:
    result = CliRunner().invoke(main, ["reps", "link", rep], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output.strip()


def followups_of(engine, rep: str) -> list[tuple]:
    table = Reminder.__table__
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(
            select(table.c.id, table.c.rule, table.c.state, table.c.customer_id).where(table.c.rep == rep)
            .order_by(table.c.at))]


def test_a_page_asks_to_sign_in_and_comes_back_after(desk):
    browser = desk.session()
    answer = browser.get(f"{desk.url}/customers?tier=warm")
    assert answer.url.startswith(f"{desk.url}/signin?next=")
    token = re.search(r'name="csrf_token" value="([^"]+)"', answer.text).group(1)
    signed_in = browser.post(f"{desk.url}/signin", data={"rep": "ana", "password": PASSWORDS["ana"],
                                                          "csrf_token": token, "next": "/customers?tier=warm"})
    assert signed_in.url == f"{desk.url}/customers?tier=warm" and "My customers" in signed_in.text


def test_a_wrong_password_or_an_unknown_rep_is_refused_alike(desk):
    browser = desk.session()
    for rep, password in (("ana", "not-her-password"), ("zoe", PASSWORDS["ana"])):
        answer = browser.post(f"{desk.url}/signin", data={"rep": rep, "password": password,
                                                           "csrf_token": desk.csrf(browser, "/signin")})
        assert answer.status_code == 401 and "do not match" in answer.text
    assert browser.get(f"{desk.url}/followups").url.startswith(f"{desk.url}/signin")


def test_a_sign_in_link_works_once_and_a_forged_one_not_at_all(desk):
    link = signin_link("ben")
    browser = desk.session()
    confirm = browser.get(link)
    assert "Sign in as Ben Okafor" in confirm.text  # a preview bot fetching the link does not use it up
    token = parse_qs(urlsplit(link).query)["token"][0]
    post = {"token": token, "csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', confirm.text).group(1)}
    assert browser.post(f"{desk.url}/signin/link", data=post).url.endswith("/followups")
    again = desk.session()
    post["csrf_token"] = desk.csrf(again, "/signin")
    reused = again.post(f"{desk.url}/signin/link", data=post)
    assert reused.status_code == 400 and "used already" in reused.text
    forged = again.get(f"{desk.url}/signin/link", params={"token": token[:-2] + "xx"})
    assert forged.status_code == 400


def test_a_form_without_its_csrf_token_changes_nothing(desk, engine):
    ana = desk.session("ana")
    (followup,) = [row for row in followups_of(engine, "ana") if row[1] == "unanswered"]
    refused = ana.post(f"{desk.url}/followups/{followup[0]}/ana/done", data={})
    assert refused.status_code == 400 and "CSRF" in refused.text
    assert followups_of(engine, "ana")[0][2] == "open"


def test_a_rep_cannot_open_or_work_another_reps_customer(desk, engine):
    ben = desk.session("ben")
    (sheena, *_) = [row for row in followups_of(engine, "ana")]
    with engine.connect() as connection:
        key = connection.execute(select(Customer.key).where(Customer.id == sheena[3])).scalar_one()
    page = ben.get(f"{desk.url}/customers/{key}")
    assert page.status_code == 403 and "Sheena" not in page.text and key not in page.text
    token = desk.csrf(ben, "/followups")
    for action, data in (("done", {}), ("snooze", {"until": "hour"}), ("reassign", {"to": "ben"})):
        answer = ben.post(f"{desk.url}/followups/{sheena[0]}/ana/{action}", data={"csrf_token": token, **data})
        assert answer.status_code == 403, action
    assert [row[2] for row in followups_of(engine, "ana")] == ["open"]
    assert "Sheena" not in ben.get(f"{desk.url}/followups").text
    assert "Sheena Nelson" not in ben.get(f"{desk.url}/customers", params={"q": "Sheena"}).text


def test_done_snooze_and_reassign_round_trip_through_the_store(desk, engine):
    ana = desk.session("ana")
    token = desk.csrf(ana, "/followups")
    (followup,) = [row for row in followups_of(engine, "ana") if row[1] == "unanswered"]
    snoozed = ana.post(f"{desk.url}/followups/{followup[0]}/ana/snooze", data={"csrf_token": token, "until": "tomorrow"})
    assert snoozed.url.endswith("/followups") and "Snoozed (1)" in snoozed.text
    with engine.connect() as connection:
        until = connection.execute(select(Reminder.snoozed_until).where(Reminder.id == followup[0])).scalar_one()
    assert until > NOW and until % 3600 == 0  # 9:00 in Madrid tomorrow
    ana.post(f"{desk.url}/followups/{followup[0]}/ana/reassign", data={"csrf_token": token, "to": "ben"})
    assert [row[2] for row in followups_of(engine, "ana") if row[0] == followup[0]] == ["closed"]
    assert [row[2] for row in followups_of(engine, "ben") if row[0] == followup[0]] == ["open"]
    with engine.connect() as connection:
        assert connection.execute(select(Customer.owner).where(Customer.id == followup[3])).scalar_one() == "ben"
        done_by = connection.execute(select(ReminderAction.actor, ReminderAction.action)
                                     .order_by(ReminderAction.id)).all()
    assert [tuple(row) for row in done_by] == [("ana", "snooze"), ("ana", "reassign"), ("ana", "reassign")]
    ben = desk.session("ben")
    ben.post(f"{desk.url}/followups/{followup[0]}/ben/done", data={"csrf_token": desk.csrf(ben, "/followups")})
    assert [row[2] for row in followups_of(engine, "ben") if row[0] == followup[0]] == ["closed"]


def test_a_manager_sees_everyone_and_any_reps_view(desk):
    maria = desk.session("maria")
    everyone = maria.get(f"{desk.url}/followups").text
    assert "Everyone's follow-ups" in everyone and "Sheena Nelson" in everyone and "Bob" in everyone
    bens = maria.get(f"{desk.url}/followups", params={"rep": "ben"}).text
    assert "Ben Okafor's follow-ups" in bens and "Sheena Nelson" not in bens
    assert maria.get(f"{desk.url}/customers", params={"rep": "nobody"}).status_code == 404


def test_what_customers_wrote_in_their_names_is_shown_as_text(desk):
    page = desk.session("ben").get(f"{desk.url}/followups").text
    assert "<script>alert(1)</script>" not in page and "Bob &lt;script&gt;alert(1)&lt;/script&gt;" in page


@pytest.mark.parametrize("query, shown, hidden", [
    ({"q": "sheena"}, "Sheena Nelson", "Bob"),
    ({"q": "SHÉENA"}, "Sheena Nelson", "Bob"),  # accents and case as people happen to type them
    ({"q": "+34600000002"}, "Bob", "Sheena"),
    ({"q": "+34 600 00 00 02"}, "Bob", "Sheena"),  # spaced as written down
    ({"q": "600000002"}, "Bob", "Sheena"),  # without the country code
    ({"tier": "warm"}, "Sheena Nelson", "zzz"),
    ({"country": "ES"}, "Bob", "Sheena"),
    ({"signal": "price_inquiry"}, "Bob", "Sheena"),
])
def test_the_board_filters_and_searches(desk, query, shown, hidden):
    page = desk.session("maria").get(f"{desk.url}/customers", params=query).text
    assert shown in page and hidden not in page


def test_the_customer_page_shows_who_they_are_their_figures_and_their_timeline(desk):
    page = desk.session("maria").get(f"{desk.url}/customers/34600000002").text
    for text in ("Bob &lt;script&gt;", "+34600000002", "Churn risk", "They sent a text", "price inquiry",
                 "Question unanswered", "Question unanswered: a follow-up for Ben Okafor"):
        assert text in page, text


def test_the_desk_is_off_without_a_secret_key(desk, monkeypatch):
    from webhook import create_app
    from workers.settings import Settings

    monkeypatch.delenv("WAPULSE_SECRET_KEY")
    answer = create_app(Settings.from_env()).test_client().get("/signin")
    assert answer.status_code == 503 and b"WAPULSE_SECRET_KEY" in answer.data


@responses.activate
def test_send_template_goes_through_the_cloud_api_with_its_campaign_and_is_kept(desk, engine):
    responses.add_passthru(desk.url)
    graph = responses.post(f"{GRAPH}/106540352242922/messages",
                           json={"messaging_product": "whatsapp", "messages": [{"id": "wamid.sent-template"}]})
    ana = desk.session("ana")
    (followup,) = [row for row in followups_of(engine, "ana") if row[1] == "unanswered"]
    page = ana.post(f"{desk.url}/followups/{followup[0]}/ana/template",
                    data={"csrf_token": desk.csrf(ana, "/followups"), "template": "spring_offer"})
    assert "Sent “Spring offer” to Sheena Nelson." in page.text
    (call,) = graph.calls
    assert call.request.headers["Authorization"] == "Bearer graph-token"
    assert json.loads(call.request.body) == {
        "messaging_product": "whatsapp", "recipient_type": "individual", "to": "16505551234", "type": "template",
        "template": {"name": "spring_offer", "language": {"code": "es"}, "components": [
            {"type": "body", "parameters": [{"type": "text", "text": "Sheena"}, {"type": "text", "text": "Ana Ruiz"}]}]},
        "biz_opaque_callback_data": "spring_reactivation"}
    with engine.connect() as connection:
        (action,) = connection.execute(select(ReminderAction.actor, ReminderAction.action, ReminderAction.detail)
                                       .where(ReminderAction.action == "template")).all()
    assert tuple(action) == ("ana", "template", {"template": "spring_offer", "campaign": "spring_reactivation",
                                                 "message": "wamid.sent-template"})


@responses.activate
def test_send_template_is_refused_for_an_opted_out_customer_and_when_meta_refuses(desk, engine, redis, drain, monkeypatch):
    responses.add_passthru(desk.url)
    graph = responses.post(f"{GRAPH}/106540352242922/messages", status=400,
                           json={"error": {"code": 132001, "message": "Template name does not exist"}})
    ben = desk.session("ben")
    (bob,) = followups_of(engine, "ben")
    token = desk.csrf(ben, "/followups")
    refused = ben.post(f"{desk.url}/followups/{bob[0]}/ben/template", data={"csrf_token": token, "template": "spring_offer"})
    assert "Not sent: Meta did not take it (HTTP 400, Graph API error 132001)." in refused.text and len(graph.calls) == 1
    with engine.begin() as connection:
        connection.execute(Customer.__table__.update().where(Customer.id == bob[3]).values(opted_out=True))
    opted_out = ben.post(f"{desk.url}/followups/{bob[0]}/ben/template", data={"csrf_token": token, "template": "spring_offer"})
    assert "Not sent: they opted out of marketing messages." in opted_out.text and len(graph.calls) == 1
    with engine.connect() as connection:
        assert connection.execute(select(ReminderAction.id).where(ReminderAction.action == "template")).all() == []


def test_send_template_without_a_token_says_so_and_sends_nothing(desk, engine, monkeypatch):
    from webhook import create_app
    from workers.settings import Settings

    monkeypatch.delenv("WHATSAPP_ACCESS_TOKEN")
    client = create_app(Settings.from_env()).test_client()

    def token_of(path: str) -> str:
        return re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).get_data(as_text=True)).group(1)

    client.post("/signin", data={"rep": "ana", "password": PASSWORDS["ana"], "csrf_token": token_of("/signin")})
    (followup,) = [row for row in followups_of(engine, "ana") if row[1] == "unanswered"]
    page = client.post(f"/followups/{followup[0]}/ana/template", follow_redirects=True,
                       data={"csrf_token": token_of("/followups"), "template": "spring_offer"}).get_data(as_text=True)
    assert "Not sent: no WHATSAPP_ACCESS_TOKEN is set, so wapulse cannot send WhatsApp messages." in page


def test_the_board_sorts_by_the_kept_figures(desk):
    maria = desk.session("maria")
    page = maria.get(f"{desk.url}/customers", params={"sort": "intent"}).text
    assert page.index("Bob &lt;script&gt;") < page.index("Sheena Nelson")  # a price inquiry weighs more than a question
    assert "intent 40" in page and "churn risk" in page
    page = maria.get(f"{desk.url}/customers", params={"sort": "name"}).text
    assert page.index("Bob &lt;script&gt;") < page.index("Sheena Nelson")


def test_the_timeline_names_who_did_what_to_a_follow_up(desk, engine):
    ana = desk.session("ana")
    token = desk.csrf(ana, "/followups")
    (followup,) = [row for row in followups_of(engine, "ana") if row[1] == "unanswered"]
    done = ana.post(f"{desk.url}/followups/{followup[0]}/ana/reassign", data={"csrf_token": token, "to": "ben"})
    assert "Sheena Nelson is now Ben Okafor&#39;s, with the follow-ups that were open about them." in done.text
    page = desk.session("maria").get(f"{desk.url}/customers/16505551234").text
    assert "Question unanswered: Ana Ruiz gave the customer to Ben Okafor" in page
    assert "took it over" not in page and "María López" not in ana.get(f"{desk.url}/followups").text  # no manager to give to
    assert desk.session("ben").get(f"{desk.url}/customers/nobody-at-all").status_code == 404


def test_a_manager_working_one_reps_follow_ups_stays_in_that_view_on_that_reps_clock(desk, engine):
    maria = desk.session("maria")
    for page in (maria.get(f"{desk.url}/followups", params={"rep": "ben"}),
                 maria.get(f"{desk.url}/followups/list", params={"rep": "ben"})):  # as the list refreshes itself
        backs = set(re.findall(r'name="back" value="([^"]*)"', page.text))
        assert backs == {"/followups?rep=ben"}, backs
        assert page.text.count("hx-preserve") >= 2  # a choice half made survives the refresh
    (followup,) = [row for row in followups_of(engine, "ben")][:1]
    snoozed = maria.post(f"{desk.url}/followups/{followup[0]}/ben/snooze",
                         data={"csrf_token": desk.csrf(maria, "/followups"), "until": "hour", "back": "/followups?rep=ben"})
    assert snoozed.url.endswith("/followups?rep=ben")
    assert "Ben Okafor&#39;s time, Africa/Lagos" in snoozed.text


@pytest.mark.parametrize("page", ["0", "999"])
def test_a_board_page_out_of_range_shows_one_in_range(desk, page):
    board = desk.session("ana").get(f"{desk.url}/customers", params={"page": page})
    assert board.status_code == 200 and "Sheena Nelson" in board.text  # the one page there is


def test_the_team_page_is_for_managers_and_refuses_a_bad_period(desk):
    assert desk.session("ana").get(desk.url + "/team").status_code == 403
    manager = desk.session("maria")
    page = manager.get(desk.url + "/team")
    assert page.status_code == 200
    assert "Ana Ruiz" in page.text and "Ben Okafor" in page.text and "Do reminders bring customers back?" in page.text
    assert "<script>alert(1)</script>" not in page.text
    refused = manager.get(desk.url + "/team", params={"from": "2026-13-01"})
    assert refused.status_code == 400 and "is not a date" in refused.text


def test_the_report_page_shows_what_wapulse_report_makes_and_a_rep_only_their_own(desk):
    asked = ["--from", "2026-11-01", "--to", "2026-11-10", "--compare", "none"]
    made = CliRunner().invoke(main, ["report", *asked, "--owner", "ana", "--format", "html"], catch_exceptions=False)
    assert made.exit_code == 0, made.output
    expected = made.output[made.output.index('<div class="report">'):made.output.rindex("</body>")].strip()
    ana = desk.session("ana")
    page = ana.get(desk.url + "/report", params={"from": "2026-11-01", "to": "2026-11-10", "compare": "none"})
    assert page.status_code == 200 and expected in page.text  # the same markup, byte for byte
    assert ana.get(desk.url + "/report", params={"owner": "ben"}).status_code == 403
    assert ana.get(desk.url + "/report/download", params={"owner": "ben", "format": "csv"}).status_code == 403
    download = ana.get(desk.url + "/report/download", params={"from": "2026-11-01", "to": "2026-11-10", "format": "csv"})
    assert download.status_code == 200 and download.headers["Content-Disposition"].startswith("attachment;")
    assert "16505551234" in download.text and "34600000002" not in download.text  # Sheena is Ana's, Bob is Ben's
    everyone = desk.session("maria").get(desk.url + "/report/download",
                                         params={"from": "2026-11-01", "to": "2026-11-10", "format": "csv"})
    assert "16505551234" in everyone.text and "34600000002" in everyone.text
    managers = desk.session("maria").get(desk.url + "/report", params={"from": "2026-11-01", "to": "2026-11-10"})
    assert "Bob &lt;script&gt;alert(1)&lt;/script&gt;" in managers.text and "<script>alert(1)" not in managers.text
    refused = ana.get(desk.url + "/report", params={"from": "2026-11-10", "to": "2026-11-01"})
    assert refused.status_code == 400 and "is after" in refused.text


def test_the_board_says_how_far_a_history_back_fill_has_come(desk, redis, drain):
    from tests.workers.test_import_chat import CHUNKS
    from tests.workers.test_tiers import process

    process(redis, drain, [CHUNKS[0]])
    board = desk.session("maria").get(desk.url + "/customers")
    assert "Chat history of 106540352242922 still arriving from WhatsApp: 40%" in board.text
    process(redis, drain, [CHUNKS[1], CHUNKS[2]])
    assert "still arriving" not in desk.session("maria").get(desk.url + "/customers").text
