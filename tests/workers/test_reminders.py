"""Reminders through the real worker, sweep and delivery job, with time moving forward.

Reps' endpoints are third parties: a real local HTTP server records what reaches them in the
end-to-end replay, `responses` stands in for them where a test scripts their answers."""

from __future__ import annotations

import importlib
import json
import socket
import threading
from email import message_from_bytes

import pytest
import responses
from rq import cron as rq_cron
from aiosmtpd.controller import Controller
from sqlalchemy import select

from scoring.events import iso
from store.db import write_transaction
from store import queries
from store.models import Customer, Reminder, ReminderDelivery
from store.reminders import retry_delivery
from tests.conftest import FIXTURES, reread_environment
from tests.peers import answer, hang, peer, read_request, reset, trickle
from tests.workers.test_tiers import DAY, JOAO, JOAO_LAST, PRIYA, PRIYA_BACK, PRIYA_LAST, TIMELINE, process, set_now
from workers import channels, cron_config
from workers.context import Context, installed
from workers.jobs import deliver_due, sweep_tiers
from workers.rebuild import rebuild
from workers.reminders import BACKOFF_S, DELIVERY_BUDGET_S, DELIVERY_JOB_TIMEOUT_S, MAX_ATTEMPTS, STUCK_AFTER_S
from workers.settings import MAX_DELIVERY_DEADLINE_S, ConfigError, Settings

SECRET = "rep-endpoint-secret"
HOOK = "https://crm.example.test/hooks/wapulse"
SLACK = "https://hooks.slack.example.test/services/T0/B0/x"
SHEENA_AT = 1794328383  # fixtures/cloudapi/messages__text.json
SHEENA_COLD = SHEENA_AT + 30 * DAY


def configure(monkeypatch, tmp_path, channels_toml: str, extra: str = "", rep: str = "") -> None:
    """Ana, the owner of every customer, with these channels (and `rep` lines: quiet hours...)."""
    config = tmp_path / "wapulse.toml"
    config.write_text(f'[[reps]]\nid = "ana"\nname = "Ana Ruiz"\ntimezone = "Europe/Madrid"\n{rep}'
                      f'channels = [{channels_toml}]\n\n[owners]\ndefault = "ana"\n{extra}')
    monkeypatch.setenv("WAPULSE_CONFIG", str(config))
    reread_environment()


def webhook(url: str) -> str:
    return f'{{ type = "webhook", url = "{url}", secret = "{SECRET}" }}'


def sheena_goes_cold(redis, drain, monkeypatch) -> None:
    """One message from Sheena, then the sweep an hour after she crossed into cold."""
    set_now(monkeypatch, SHEENA_AT + 60)
    process(redis, drain, [(FIXTURES / "cloudapi" / "messages__text.json").read_bytes()])
    set_now(monkeypatch, SHEENA_COLD + 3600)
    sweep_tiers()


def deliveries(engine) -> list:
    with engine.connect() as connection:
        return connection.execute(select(ReminderDelivery).order_by(ReminderDelivery.id)).all()


def test_a_replayed_timeline_reminds_the_owner_once_per_crossing_and_a_second_replay_not_at_all(
    redis, engine, drain, monkeypatch, tmp_path, endpoint
):
    url, received = endpoint
    configure(monkeypatch, tmp_path, webhook(url))
    bodies = TIMELINE.read_bytes().splitlines()
    week, comeback = bodies[:-1], bodies[-1:]

    def live_through(first_day: int, last_day: int) -> None:
        for day in range(first_day, last_day + 1):  # the cron: a sweep, then the deliveries
            set_now(monkeypatch, PRIYA_LAST + day * DAY)
            sweep_tiers()
            deliver_due()

    set_now(monkeypatch, PRIYA_LAST + 3600)
    process(redis, drain, week)
    live_through(1, 95)
    set_now(monkeypatch, PRIYA_BACK + 60)
    process(redis, drain, comeback)
    deliver_due()

    sent = [json.loads(body) for _, body in received]
    assert sorted((r["customer"]["wa_id"], r["rule"], r["at"]) for r in sent) == sorted([
        (PRIYA, "window_closing", iso(PRIYA_LAST + 22 * 3600)),  # her last message of the week waited on us
        (PRIYA, "cooling", iso(PRIYA_LAST + 7 * DAY)),
        (PRIYA, "went_cold", iso(PRIYA_LAST + 30 * DAY)),
        (PRIYA, "heating", iso(PRIYA_BACK)),
        (PRIYA, "reactivated", iso(PRIYA_BACK)),
        (JOAO, "went_cold", iso(JOAO_LAST + 30 * DAY)),
    ])  # the first heating (day 4) was noticed more than a day late: old news, no reminder
    for headers, body in received:
        assert headers[channels.SIGNATURE_HEADER] == channels.signature(SECRET, body)
        assert headers["Idempotency-Key"] == json.loads(body)["id"]
    assert all(r["rep"] == "ana" for r in sent)
    with engine.connect() as connection:
        assert set(connection.execute(select(Customer.owner)).scalars()) == {"ana"}

    process(redis, drain, bodies)  # the same timeline again, and time again
    live_through(95, 96)
    assert len(received) == 6
    assert {row.status for row in deliveries(engine)} == {"sent"}


def test_the_webhook_reminder_carries_the_promised_fields(redis, engine, drain, monkeypatch, tmp_path, endpoint):
    url, received = endpoint
    configure(monkeypatch, tmp_path, webhook(url))
    sheena_goes_cold(redis, drain, monkeypatch)
    deliver_due()
    (headers, body), = received
    reminder = json.loads(body)
    assert reminder["rule"] == "went_cold" and reminder["rep"] == "ana"
    assert reminder["customer"] == {"key": "16505551234", "wa_id": "16505551234",
                                    "user_id": "US.13491208655302741918", "name": "Sheena Nelson"}
    assert (reminder["from"], reminder["to"], reminder["at"]) == ("warm", "cold", iso(SHEENA_COLD))
    assert reminder["days_silent"] == 30
    assert reminder["template_required"] is True  # 30 days: far outside the 24-hour window
    assert reminder["suggested_action"].startswith("Send something of value")
    assert reminder["customer_local_time"] == "2026-12-10T09:33:03-08:00"  # now, in America/Los_Angeles
    assert isinstance(reminder["signals"], list)
    assert reminder["id"].startswith("rem_") and "credited_to" not in reminder


@responses.activate
def test_slack_gets_text_and_blocks(redis, engine, drain, monkeypatch, tmp_path):
    responses.post(SLACK, status=200)
    configure(monkeypatch, tmp_path, f'{{ type = "slack", url = "{SLACK}" }}')
    sheena_goes_cold(redis, drain, monkeypatch)
    deliver_due()
    (call,) = responses.calls
    payload = json.loads(call.request.body)
    assert payload["text"].startswith("Went cold: Sheena Nelson (+16505551234), 30 days silent.")
    assert "a template is needed" in payload["text"] and "Next: Send something of value" in payload["text"]
    assert payload["blocks"][0]["text"]["text"] == payload["text"]


@responses.activate
def test_a_channel_that_fails_three_times_then_recovers_gets_the_reminder_once(redis, engine, drain, monkeypatch, tmp_path):
    for status in (500, 429, 503, 200):
        responses.post(HOOK, status=status)
    configure(monkeypatch, tmp_path, webhook(HOOK))
    sheena_goes_cold(redis, drain, monkeypatch)
    now = SHEENA_COLD + 3600
    deliver_due()
    for attempt in range(3):
        assert deliveries(engine)[0].status == "pending"
        deliver_due()  # not due yet: the backoff holds it
        assert len(responses.calls) == attempt + 1
        now += BACKOFF_S[attempt]
        set_now(monkeypatch, now)
        deliver_due()
    assert len(responses.calls) == 4
    (row,) = deliveries(engine)
    assert (row.status, row.attempts) == ("sent", 4)
    set_now(monkeypatch, now + 7 * DAY)
    deliver_due()
    assert len(responses.calls) == 4


@responses.activate
def test_a_4xx_is_not_retried_and_retry_puts_it_back(redis, engine, drain, monkeypatch, tmp_path):
    responses.post(HOOK, status=410)
    responses.post(HOOK, status=200)
    configure(monkeypatch, tmp_path, webhook(HOOK))
    sheena_goes_cold(redis, drain, monkeypatch)
    deliver_due()
    set_now(monkeypatch, SHEENA_COLD + 5 * 3600)
    deliver_due()
    (row,) = deliveries(engine)
    assert (row.status, row.last_error, len(responses.calls)) == ("failed", "HTTP 410", 1)
    with write_transaction(engine) as connection:
        assert retry_delivery(connection, row.id, SHEENA_COLD + 5 * 3600)
    deliver_due()
    assert deliveries(engine)[0].status == "sent" and len(responses.calls) == 2


def test_two_delivery_jobs_at_once_send_each_reminder_once(redis, engine, drain, monkeypatch, tmp_path, endpoint):
    url, received = endpoint
    configure(monkeypatch, tmp_path, f"{webhook(url)}, {webhook(url)}, {webhook(url)}")
    sheena_goes_cold(redis, drain, monkeypatch)
    racers = [threading.Thread(target=deliver_due) for _ in range(4)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join()
    assert len(received) == 3  # one per channel
    assert [row.channel for row in deliveries(engine)] == ["webhook", "webhook#2", "webhook#3"]
    assert {row.status for row in deliveries(engine)} == {"sent"}


def test_quiet_hours_hold_a_reminder_until_they_end(redis, engine, drain, monkeypatch, tmp_path, endpoint):
    url, received = endpoint
    configure(monkeypatch, tmp_path, webhook(url), rep='quiet_hours = "00:00-23:59"\n')
    sheena_goes_cold(redis, drain, monkeypatch)
    deliver_due()
    assert received == []
    (row,) = deliveries(engine)
    set_now(monkeypatch, row.due_at)
    deliver_due()
    assert len(received) == 1


def our_reply_to_sheena(at: int) -> bytes:
    """A `sent` status of a message of ours to Sheena: our answer, as the webhook reports it."""
    body = json.loads((FIXTURES / "cloudapi" / "messages__status-sent.json").read_bytes())
    value = body["entry"][0]["changes"][0]["value"]
    value.pop("contacts", None)
    status = value["statuses"][0]
    status.update(recipient_id="16505551234", timestamp=str(at), id="wamid.reply-to-sheena")
    status.pop("recipient_user_id", None)
    return json.dumps(body, separators=(",", ":")).encode()


def test_an_unanswered_question_and_a_closing_window_remind_at_their_instants(
    redis, engine, drain, monkeypatch, tmp_path, endpoint
):
    url, received = endpoint
    configure(monkeypatch, tmp_path, webhook(url))
    set_now(monkeypatch, SHEENA_AT + 60)
    process(redis, drain, [(FIXTURES / "cloudapi" / "messages__text.json").read_bytes()])  # "Does it come in ...?"
    deliver_due()
    assert received == []
    for now in (SHEENA_AT + 3599, SHEENA_AT + 3600, SHEENA_AT + 22 * 3600 - 1, SHEENA_AT + 22 * 3600, SHEENA_AT + DAY):
        set_now(monkeypatch, now)
        sweep_tiers()
        deliver_due()
    assert [(r["rule"], r["at"], r["template_required"]) for r in (json.loads(body) for _, body in received)] == [
        ("unanswered", iso(SHEENA_AT + 3600), False),  # warm: the 60-minute SLA
        ("window_closing", iso(SHEENA_AT + 22 * 3600), False),  # two hours before the window closes
    ]


def test_our_reply_within_the_sla_owes_no_reminder(redis, engine, drain, monkeypatch, tmp_path, endpoint):
    url, received = endpoint
    configure(monkeypatch, tmp_path, webhook(url))
    set_now(monkeypatch, SHEENA_AT + 60)
    process(redis, drain, [(FIXTURES / "cloudapi" / "messages__text.json").read_bytes()])
    set_now(monkeypatch, SHEENA_AT + 1800)
    process(redis, drain, [our_reply_to_sheena(SHEENA_AT + 1700)])
    for now in (SHEENA_AT + 3600, SHEENA_AT + DAY):
        set_now(monkeypatch, now)
        sweep_tiers()
        deliver_due()
    assert received == []
    with engine.connect() as connection:
        assert connection.execute(select(Customer.next_reminder_at)).scalar() is None


class Mailbox:
    """A real SMTP server's handler (aiosmtpd): answers the scripted codes, then 250 and keeps the mail."""

    def __init__(self, refusals: list[str]):
        self.refusals, self.mails = list(refusals), []

    async def handle_DATA(self, server, session, envelope):
        if self.refusals:
            return self.refusals.pop(0)
        self.mails.append(message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def smtp():
    boxes = []

    def start(refusals: list[str]) -> tuple[str, Mailbox]:
        box = Mailbox(refusals)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        controller = Controller(box, hostname="127.0.0.1", port=port)
        controller.start()
        boxes.append(controller)
        return f"smtp://127.0.0.1:{port}", box

    yield start
    for controller in boxes:
        controller.stop()


def test_e_mail_reaches_the_rep_through_a_real_smtp_server_after_a_temporary_refusal(
    redis, engine, drain, monkeypatch, tmp_path, smtp
):
    url, box = smtp(["451 4.3.0 try again later"])
    monkeypatch.setenv("SMTP_URL", url)
    monkeypatch.setenv("WAPULSE_MAIL_FROM", "wapulse@example.test")
    configure(monkeypatch, tmp_path, '{ type = "email", to = "ana@example.test" }')
    sheena_goes_cold(redis, drain, monkeypatch)
    deliver_due()
    (row,) = deliveries(engine)
    assert (row.status, row.last_error, box.mails) == ("pending", "SMTP 451", [])
    set_now(monkeypatch, row.due_at)
    deliver_due()
    (mail,) = box.mails
    assert (mail["To"], mail["From"], mail["Subject"]) == ("ana@example.test", "wapulse@example.test", "wapulse: Went cold")
    assert mail.get_payload().startswith("Went cold: Sheena Nelson (+16505551234), 30 days silent.")
    assert deliveries(engine)[0].status == "sent"


def test_a_permanent_smtp_refusal_fails_at_once_and_no_smtp_url_is_a_clear_error(
    redis, engine, drain, monkeypatch, tmp_path, smtp
):
    url, box = smtp(["550 5.1.1 no such mailbox"])
    monkeypatch.setenv("SMTP_URL", url)
    configure(monkeypatch, tmp_path, '{ type = "email", to = "ana@example.test" }')
    sheena_goes_cold(redis, drain, monkeypatch)
    deliver_due()
    (row,) = deliveries(engine)
    assert (row.status, row.last_error) == ("failed", "SMTP 550")
    monkeypatch.delenv("SMTP_URL")
    with pytest.raises(ConfigError, match="its email channel needs SMTP_URL"):
        Context.from_env()


@pytest.mark.parametrize("fixture, customer, at, reason", [
    ("user_preferences__stop.json", "16505551234", 1794600001, "opted_out"),  # they asked to stop marketing
    ("messages__status-failed__marketing_opt_out.json", "5511991234567", 1795867201, "opted_out"),  # 131050
    ("messages__status-failed__unreachable.json", "33698765432", 1795856403, "undeliverable"),  # 131026
])
def test_an_opt_out_or_an_undeliverable_message_reminds_the_owner_once_as_unreachable(
    redis, engine, drain, monkeypatch, tmp_path, endpoint, fixture, customer, at, reason
):
    url, received = endpoint
    configure(monkeypatch, tmp_path, webhook(url))
    body = (FIXTURES / "cloudapi" / fixture).read_bytes()
    set_now(monkeypatch, at + 60)
    process(redis, drain, [body])
    deliver_due()
    process(redis, drain, [body.replace(b'"whatsapp"', b'"whatsapp" ')])  # a redelivery of the same opt-out
    deliver_due()
    (reminder,) = [json.loads(body) for _, body in received]
    assert (reminder["rule"], reminder["reason"], reminder["at"]) == ("unreachable", reason, iso(at))
    assert reminder["customer"]["wa_id"] == customer


def test_an_opt_out_noticed_days_later_is_old_news(redis, engine, drain, monkeypatch, tmp_path, endpoint):
    url, received = endpoint
    configure(monkeypatch, tmp_path, webhook(url))
    set_now(monkeypatch, 1794600001 + 2 * DAY)  # a replay of old traffic
    process(redis, drain, [(FIXTURES / "cloudapi" / "user_preferences__stop.json").read_bytes()])
    deliver_due()
    assert received == [] and deliveries(engine) == []


GRAPH = "https://graph.example.test/v24.0"
ANA_PHONE = "34600000000"
BUSINESS = "106540352242922"  # the number Sheena writes to (fixtures/cloudapi/messages__text.json)
SENT_ANSWER = {"messaging_product": "whatsapp", "contacts": [{"input": ANA_PHONE, "wa_id": ANA_PHONE}],
               "messages": [{"id": "wamid.reminder"}]}


def whatsapp(monkeypatch, tmp_path, **extra) -> None:
    monkeypatch.setenv("WHATSAPP_ACCESS_TOKEN", "system-user-token")
    monkeypatch.setenv("WHATSAPP_GRAPH_URL", GRAPH)
    settings = "".join(f', {key} = "{value}"' for key, value in extra.items())
    configure(monkeypatch, tmp_path, f'{{ type = "whatsapp", to = "+{ANA_PHONE}"{settings} }}')


def ana_writes_to_the_business_number(redis, drain, at: int) -> None:
    """Ana herself messages the business number (which opens her own 24-hour window)."""
    body = (FIXTURES / "cloudapi" / "messages__text.json").read_text()
    body = body.replace("16505551234", ANA_PHONE).replace("US.13491208655302741918", "ES.ana").replace(
        "Sheena Nelson", "Ana Ruiz").replace("1794328383", str(at)).replace("wamid.HBg", "wamid.ANA")
    process(redis, drain, [body.encode()])


@responses.activate
def test_whatsapp_reaches_the_rep_with_a_template_outside_her_window_and_text_inside_it(
    redis, engine, drain, monkeypatch, tmp_path
):
    messages = responses.post(f"{GRAPH}/{BUSINESS}/messages", json=SENT_ANSWER)
    whatsapp(monkeypatch, tmp_path)
    sheena_goes_cold(redis, drain, monkeypatch)
    deliver_due()
    template = json.loads(messages.calls[0].request.body)
    assert messages.calls[0].request.headers["Authorization"] == "Bearer system-user-token"
    assert (template["to"], template["type"], template["template"]["name"]) == (ANA_PHONE, "template", "wapulse_reminder")
    assert template["template"]["language"] == {"code": "en"}
    (parameter,) = template["template"]["components"][0]["parameters"]
    assert parameter["text"].startswith("Went cold: Sheena Nelson (+16505551234), 30 days silent.")
    assert "\n" not in parameter["text"]
    assert template["biz_opaque_callback_data"].startswith("wapulse:reminder:rem_")

    ana_writes_to_the_business_number(redis, drain, SHEENA_COLD + 2 * DAY)  # her window opens
    set_now(monkeypatch, SHEENA_COLD + 2 * DAY + 600)
    sheena_comes_back = (FIXTURES / "cloudapi" / "messages__text.json").read_text().replace(
        "1794328383", str(SHEENA_COLD + 2 * DAY + 300)).replace("wamid.HBg", "wamid.BACK")
    process(redis, drain, [sheena_comes_back.encode()])  # cold -> warm: reactivated
    deliver_due()
    text = json.loads(messages.calls[-1].request.body)
    assert (text["type"], text["text"]["body"][:10]) == ("text", "Came back:")
    set_now(monkeypatch, SHEENA_COLD + 3 * DAY)  # Ana's window has closed again, Sheena's is closing
    sweep_tiers()
    deliver_due()
    last = json.loads(messages.calls[-1].request.body)  # Ana's own question is nobody's reminder
    assert len(messages.calls) == 3 and last["type"] == "template"
    assert last["template"]["components"][0]["parameters"][0]["text"].startswith("Window closing: Sheena Nelson")


@responses.activate
def test_whatsapp_rate_limits_are_retried_and_other_refusals_are_not(redis, engine, drain, monkeypatch, tmp_path):
    url = f"{GRAPH}/999000111/messages"
    responses.post(url, status=400, json={"error": {"code": 130429, "message": "Rate limit hit"}})
    responses.post(url, status=429, json={"error": {"code": 80007, "message": "WABA rate limit"}})
    responses.post(url, json=SENT_ANSWER)
    whatsapp(monkeypatch, tmp_path, **{"from": "999000111"})
    sheena_goes_cold(redis, drain, monkeypatch)
    now = SHEENA_COLD + 3600
    for attempt in range(3):
        deliver_due()
        now += BACKOFF_S[attempt]
        set_now(monkeypatch, now)
    (row,) = deliveries(engine)
    assert (row.status, row.attempts, len(responses.calls)) == ("sent", 3, 3)



@responses.activate
def test_a_whatsapp_refusal_that_is_not_a_rate_limit_fails_at_once(redis, engine, drain, monkeypatch, tmp_path):
    responses.post(f"{GRAPH}/777000111/messages", status=400,  # sent from WHATSAPP_ALERT_PHONE_NUMBER_ID
                   json={"error": {"code": 131030, "message": "Recipient phone number not in allowed list"}})
    monkeypatch.setenv("WHATSAPP_ALERT_PHONE_NUMBER_ID", "777000111")
    whatsapp(monkeypatch, tmp_path)
    sheena_goes_cold(redis, drain, monkeypatch)
    deliver_due()
    (row,) = deliveries(engine)
    assert (row.status, row.last_error, len(responses.calls)) == ("failed", "HTTP 400, Graph API error 131030", 1)


def test_statuses_of_our_own_whatsapp_reminders_are_not_customer_activity(redis, engine, drain, monkeypatch):
    body = json.loads((FIXTURES / "cloudapi" / "messages__status-sent.json").read_bytes())
    body["entry"][0]["changes"][0]["value"]["statuses"][0]["biz_opaque_callback_data"] = "wapulse:reminder:rem_0"
    set_now(monkeypatch, SHEENA_AT)
    process(redis, drain, [json.dumps(body).encode()])
    with engine.connect() as connection:
        assert connection.execute(select(Customer)).all() == []


def test_reminders_held_by_quiet_hours_go_out_as_one_digest_per_channel(
    redis, engine, drain, monkeypatch, tmp_path, endpoint
):
    url, received = endpoint
    configure(monkeypatch, tmp_path, webhook(url), rep='quiet_hours = "18:00-16:00"\n')
    set_now(monkeypatch, SHEENA_AT + 60)
    process(redis, drain, [(FIXTURES / "cloudapi" / "messages__text.json").read_bytes()])
    for now in (SHEENA_AT + 3600, SHEENA_AT + 22 * 3600):  # 18:33 and 15:33 the next day in Madrid: both held
        set_now(monkeypatch, now)
        sweep_tiers()
        deliver_due()
    assert received == []
    held = deliveries(engine)
    assert [row.held for row in held] == [True, True]
    set_now(monkeypatch, max(row.due_at for row in held))
    deliver_due()
    (headers, body), = received
    digest = json.loads(body)
    assert (digest["type"], digest["rep"], digest["count"]) == ("digest", "ana", 2)
    assert [r["rule"] for r in digest["reminders"]] == ["unanswered", "window_closing"]
    assert headers["Idempotency-Key"] == digest["id"] and digest["id"].startswith("dig_")
    assert headers[channels.SIGNATURE_HEADER] == channels.signature(SECRET, body)
    assert {row.status for row in deliveries(engine)} == {"sent"}
    deliver_due()
    assert len(received) == 1


@responses.activate
def test_a_daily_digest_gathers_the_day_on_slack_and_lets_immediate_rules_through(
    redis, engine, drain, monkeypatch, tmp_path
):
    responses.post(SLACK, status=200)
    configure(monkeypatch, tmp_path, f'{{ type = "slack", url = "{SLACK}" }}',
              rep='daily_digest = "18:00"\nimmediate = ["unanswered"]\n')
    set_now(monkeypatch, SHEENA_AT + 60)
    process(redis, drain, [(FIXTURES / "cloudapi" / "messages__text.json").read_bytes()])
    for now in (SHEENA_AT + 3600, SHEENA_AT + 22 * 3600):
        set_now(monkeypatch, now)
        sweep_tiers()
        deliver_due()
    (unanswered,) = responses.calls  # immediate; window_closing waits for 18:00 in Madrid
    assert json.loads(unanswered.request.body)["text"].startswith("Question unanswered: Sheena Nelson")
    (_, waiting) = deliveries(engine)
    assert waiting.held and iso(waiting.due_at).endswith("T17:00:00Z")  # 18:00 in Madrid (UTC+1 in December)
    set_now(monkeypatch, waiting.due_at)
    deliver_due()
    assert json.loads(responses.calls[1].request.body)["text"].startswith("Window closing: Sheena Nelson")


def test_wording_comes_from_wapulse_toml_and_a_bad_template_is_named(
    redis, engine, drain, monkeypatch, tmp_path, endpoint
):
    url, received = endpoint
    configure(monkeypatch, tmp_path, f'{{ type = "slack", url = "{url}" }}',
              '\n[reminders.headlines]\nwent_cold = "Se ha enfriado"\n\n[reminders.templates]\n'
              'text = "{{ headline }} · {{ customer.name }} · {{ days_silent }} días"\n')
    sheena_goes_cold(redis, drain, monkeypatch)
    deliver_due()
    assert json.loads(received[0][1])["text"] == "Se ha enfriado · Sheena Nelson · 30 días"
    configure(monkeypatch, tmp_path, webhook(url), '\n[reminders.templates]\ntext = "{{ customer.nmae }}"\n')
    with pytest.raises(ConfigError, match=r"\[reminders.templates\] text fails on a went_cold reminder: .*nmae"):
        Context.from_env()
    configure(monkeypatch, tmp_path, webhook(url), '\n[reminders.templates]\ntext = "{% if %}"\n')
    with pytest.raises(ConfigError, match=r"\[reminders.templates\] text is not a valid template"):
        Context.from_env()


def test_a_second_opt_out_bounce_owes_no_second_reminder(redis, engine, drain, monkeypatch, tmp_path, endpoint):
    url, received = endpoint
    configure(monkeypatch, tmp_path, webhook(url))
    first = (FIXTURES / "cloudapi" / "messages__status-failed__marketing_opt_out.json").read_bytes()
    second = first.replace(b"wamid.HBgN", b"wamid.NEXT").replace(b"1795867201", b"1795870801")  # an hour later
    set_now(monkeypatch, 1795870801 + 60)
    process(redis, drain, [first, second])
    deliver_due()
    assert [json.loads(body)["at"] for _, body in received] == [iso(1795867201)]


def test_a_template_that_fails_on_a_real_reminder_fails_that_delivery_not_the_job(
    redis, engine, drain, monkeypatch, tmp_path, endpoint
):
    url, received = endpoint
    configure(monkeypatch, tmp_path, f'{{ type = "slack", url = "{url}" }}',
              '\n[reminders.templates]\ntext = "{{ customer.name.upper() }}"\n')  # she has no profile name
    set_now(monkeypatch, 1795867201 + 60)
    process(redis, drain, [(FIXTURES / "cloudapi" / "messages__status-failed__marketing_opt_out.json").read_bytes()])
    deliver_due()
    (row,) = deliveries(engine)
    assert row.status == "failed" and row.last_error.startswith("the wording fails on this reminder:")


def test_a_template_that_raises_what_no_template_should_costs_an_attempt_not_the_job(
    redis, engine, drain, monkeypatch, tmp_path, endpoint
):
    url, received = endpoint
    configure(monkeypatch, tmp_path, f'{{ type = "slack", url = "{url}" }}',
              '\n[reminders.templates]\ntext = "{{ 1 // (customer.name | length - 13) }}"\n')  # "Sheena Nelson"
    sheena_goes_cold(redis, drain, monkeypatch)
    assert deliver_due() == {"sent": 0, "pending": 1, "failed": 0}
    assert [(row.status, row.last_error) for row in deliveries(engine)] == [("pending", "ZeroDivisionError")]


@responses.activate
def test_a_digest_that_fails_backs_off_each_reminder_by_its_own_attempts(redis, engine, drain, monkeypatch, tmp_path):
    responses.post(HOOK, status=503)
    configure(monkeypatch, tmp_path, webhook(HOOK), rep='quiet_hours = "18:00-16:00"\n')
    set_now(monkeypatch, SHEENA_AT + 60)
    process(redis, drain, [(FIXTURES / "cloudapi" / "messages__text.json").read_bytes()])
    for now in (SHEENA_AT + 3600, SHEENA_AT + 22 * 3600):
        set_now(monkeypatch, now)
        sweep_tiers()
    veteran, fresh = deliveries(engine)
    with write_transaction(engine) as connection:  # the first has been tried before, up to its last attempt
        connection.execute(ReminderDelivery.__table__.update().where(ReminderDelivery.id == veteran.id)
                           .values(attempts=len(BACKOFF_S)))
    set_now(monkeypatch, fresh.due_at)
    assert deliver_due() == {"sent": 0, "pending": 1, "failed": 1}
    veteran, fresh = deliveries(engine)
    assert (veteran.status, veteran.last_error) == ("failed", f"gave up after {len(BACKOFF_S) + 1} attempts: HTTP 503")
    assert (fresh.status, fresh.attempts, fresh.due_at) == ("pending", 1, veteran.due_at + BACKOFF_S[0])


# ---- slow, failing and resetting endpoints ------------------------------------------------------


@pytest.mark.fault("slow, silent, resetting and failing reminder endpoints")
def test_slow_silent_resetting_and_failing_endpoints_are_sent_side_by_side_and_bounded(
    redis, engine, drain, monkeypatch, tmp_path, endpoint
):
    """Ten channels that never answer, one that trickles, one that resets, one that fails and a
    good one: at most WAPULSE_DELIVERIES_IN_FLIGHT at once, each cut at its deadline, and the
    good one is not kept waiting behind them."""
    url, received = endpoint
    monkeypatch.setenv("WAPULSE_DELIVERIES_IN_FLIGHT", "4")
    monkeypatch.setenv("WAPULSE_DELIVERY_DEADLINE_S", "1")
    with peer(hang) as silent, peer(trickle(every_s=0.2)) as slow, peer(reset) as resetting, peer(answer(500)) as failing:
        hooks = [silent.url] * 10 + [slow.url, resetting.url, failing.url, url]
        configure(monkeypatch, tmp_path, ", ".join(webhook(hook) for hook in hooks))
        sheena_goes_cold(redis, drain, monkeypatch)
        counts = deliver_due()
        assert silent.accepted == 10 and 2 <= silent.most_open <= 4
    assert counts == {"sent": 1, "pending": 13, "failed": 0}
    assert len(received) == 1
    errors = {row.channel: row.last_error for row in deliveries(engine)}
    assert [errors[f"webhook#{n}" if n > 1 else "webhook"] for n in range(1, 11)] == ["no answer within 1 s"] * 10
    assert (errors["webhook#11"], errors["webhook#12"], errors["webhook#13"], errors["webhook#14"]) == (
        "no answer within 1 s", "ConnectionError", "HTTP 500", None)


def test_a_retry_backs_off_from_when_the_attempt_ended_not_when_the_job_began(redis, engine, drain, monkeypatch, tmp_path):
    """Sends took 200 s: the next attempt is 10 s after the failure, not 10 s after the job
    began (which was already past, so the reminder went out again at once)."""
    clock = [0]

    def slow_failure(connection, endpoint):
        read_request(connection)
        clock[0] += 200
        connection.sendall(b"HTTP/1.1 500 X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    with peer(slow_failure) as failing:
        configure(monkeypatch, tmp_path, webhook(failing.url))
        sheena_goes_cold(redis, drain, monkeypatch)
        clock[0] = SHEENA_COLD + 3600
        monkeypatch.setattr(Settings, "now_ts", lambda self: clock[0])
        deliver_due()
        (row,) = deliveries(engine)
        assert (row.status, row.due_at) == ("pending", SHEENA_COLD + 3600 + 200 + BACKOFF_S[0])
        deliver_due()  # a job that begins at once sends nothing: the backoff has not passed
        assert failing.accepted == 1


def test_a_send_that_fails_in_a_way_no_channel_expects_is_retried_and_the_others_go_out(
    redis, engine, drain, monkeypatch, tmp_path, endpoint
):
    url, received = endpoint
    configure(monkeypatch, tmp_path, f"{webhook('http://broken.example.test/hook')}, {webhook(url)}")
    sheena_goes_cold(redis, drain, monkeypatch)
    real_send = channels.send

    def send(channel, *args, **kwargs):
        if "broken" in channel.settings["url"]:
            raise ValueError("something no channel expects")
        return real_send(channel, *args, **kwargs)

    monkeypatch.setattr(channels, "send", send)
    assert deliver_due() == {"sent": 1, "pending": 1, "failed": 0}
    assert [(row.status, row.last_error) for row in deliveries(engine)] == [("pending", "ValueError"), ("sent", None)]
    assert len(received) == 1


def test_a_delivery_left_sending_by_dead_workers_until_it_has_no_attempt_left_is_failed(redis, engine, drain, monkeypatch,
                                                                                        tmp_path, endpoint):
    url, received = endpoint
    configure(monkeypatch, tmp_path, webhook(url))
    sheena_goes_cold(redis, drain, monkeypatch)
    with engine.begin() as connection:
        connection.execute(ReminderDelivery.__table__.update().values(status="sending", attempts=MAX_ATTEMPTS,
                                                                      due_at=SHEENA_COLD + 3600 - STUCK_AFTER_S))
    deliver_due()
    (row,) = deliveries(engine)
    assert (row.status, row.last_error, len(received)) == ("failed", f"gave up after {MAX_ATTEMPTS} attempts: "
                                                                      "the worker sending it stopped", 0)


def test_every_cron_job_may_run_as_long_as_its_own_budget():
    rq_cron._job_data_registry.clear()
    importlib.reload(cron_config)
    jobs = {job["name"]: job for job in rq_cron._job_data_registry}
    rq_cron._job_data_registry.clear()
    assert jobs["deliver-reminders"]["job_timeout"] == DELIVERY_JOB_TIMEOUT_S
    assert DELIVERY_BUDGET_S + MAX_DELIVERY_DEADLINE_S < DELIVERY_JOB_TIMEOUT_S


def test_every_customer_written_gets_the_default_owner_of_their_number_at_once(redis, engine, drain, monkeypatch,
                                                                               tmp_path, endpoint):
    url, _ = endpoint
    configure(monkeypatch, tmp_path, webhook(url), extra='\n[[reps]]\nid = "ben"\nchannels = [{ type = "slack", '
                                                         'url = "http://127.0.0.1:9/" }]\n'
                                                         '\n[owners.by_number]\n"106540352242922" = ["ana", "ben"]\n')
    set_now(monkeypatch, SHEENA_AT + 60 * DAY)  # so long after that nothing they did is news: no reminder at all
    process(redis, drain, [path.read_bytes() for path in sorted((FIXTURES / "cloudapi").glob("messages__*.json"))])
    with engine.connect() as connection:
        owners = connection.execute(select(Customer.phone_number_id, Customer.owner).order_by(Customer.id)).all()
        assert connection.execute(select(ReminderDelivery.id)).all() == []
    mine = [owner for number, owner in owners if number == "106540352242922"]
    assert len(mine) > 4 and set(mine) == {"ana", "ben"} and abs(mine.count("ana") - mine.count("ben")) <= 1
    assert {owner for number, owner in owners if number != "106540352242922"} <= {"ana"}  # [owners] default


def test_a_rebuild_keeps_the_follow_ups_and_the_owners_a_store_has(redis, engine, drain, monkeypatch, tmp_path):
    configure(monkeypatch, tmp_path, webhook("http://127.0.0.1:9/"))
    sheena_goes_cold(redis, drain, monkeypatch)
    with write_transaction(engine) as connection:
        connection.execute(Customer.__table__.update().values(owner="ben"))  # given by hand to someone else
        before = connection.execute(select(Reminder.__table__.c.id, Reminder.__table__.c.rule)).all()
    assert before  # she went cold: a follow-up
    result = rebuild(installed())
    assert result.failed_bodies == 0
    with engine.connect() as connection:
        assert connection.execute(select(Reminder.__table__.c.id, Reminder.__table__.c.rule)).all() == before
        sheena = connection.execute(select(Customer.__table__)).one()
        assert sheena.owner == "ben"
        assert connection.execute(select(Reminder.__table__.c.customer_id)).scalars().all() == [sheena.id] * len(before)


def test_customers_merged_keep_the_follow_ups_of_both(redis, engine, drain, monkeypatch, tmp_path):
    """Sheena wrote once by BSUID alone and once by number alone, two customers who both went
    cold; then a message names both: they become one, with both follow-ups."""
    configure(monkeypatch, tmp_path, webhook("http://127.0.0.1:9/"))

    def sheena(message_id: str, at: int, without: tuple[str, str] | None) -> bytes:
        body = json.loads((FIXTURES / "cloudapi" / "messages__text.json").read_bytes())
        value = body["entry"][0]["changes"][0]["value"]
        value["messages"][0].update({"id": message_id, "timestamp": str(at)})
        if without:
            value["contacts"][0].pop(without[0])
            value["messages"][0].pop(without[1])
        return json.dumps(body).encode()

    set_now(monkeypatch, SHEENA_AT + 120)
    process(redis, drain, [sheena("wamid.by-bsuid", SHEENA_AT, ("wa_id", "from"))])
    process(redis, drain, [sheena("wamid.by-number", SHEENA_AT + 60, ("user_id", "from_user_id"))])
    set_now(monkeypatch, SHEENA_COLD + 3600)
    sweep_tiers()
    with engine.connect() as connection:
        cold = connection.execute(select(Reminder.__table__.c.id)).scalars().all()
    assert len(cold) == 2
    process(redis, drain, [sheena("wamid.both", SHEENA_COLD + 200, None)])
    assert queries.dead_letters(engine) == []
    with engine.connect() as connection:
        customer_id = connection.execute(select(Customer.__table__.c.id)).scalar_one()  # one customer now
        owed = dict(connection.execute(select(Reminder.__table__.c.id, Reminder.__table__.c.customer_id)).all())
    assert set(cold) <= set(owed) and set(owed.values()) == {customer_id}
