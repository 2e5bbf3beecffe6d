"""The channels a reminder reaches a rep through: HTTP (webhook, Slack, the WhatsApp Cloud API)
and SMTP, each send under an overall deadline.

A send either returns (delivered), raises `RetryLater` (a timeout, the deadline, a connection
error, 5xx, 429: worth another attempt after a backoff) or raises `Refused` (any other answer:
retrying would get the same one, so the delivery goes to the failed list).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Mapping
from urllib.parse import unquote, urlsplit

import requests
import urllib3

from cloudapi import OWN_REMINDER_TAG
from scoring.followups import MessageTemplate
from scoring.reps import Channel
from workers.deadline import Deadline, WatchedAdapter, WatchedSMTP, WatchedSMTPSSL

TIMEOUT_S = (3.05, 10)  # connect, and each read: a silent peer; the deadline bounds a trickling one
SIGNATURE_HEADER = "X-Wapulse-Signature"
MAX_ANSWER_BYTES = 65_536  # of an endpoint's answer: we only look for an error code in it
WHATSAPP_TEXT_LIMIT = 4096  # characters in a text message body
TEMPLATE_PARAMETER_LIMIT = 1024  # characters we put in the template's one body parameter
GRAPH_RETRY_CODES = {1, 2, 4, 80007, 130429, 131000, 131056, 131057, 133004}
"""Graph API error codes worth another attempt: service hiccups, rate limits (app, WABA,
throughput, pair), unknown error, maintenance, server temporarily unavailable."""


class RetryLater(Exception):
    """The channel may take it later."""


class Refused(Exception):
    """The channel will not take it as it is."""


def signature(secret: str, body: bytes) -> str:
    """`sha256=<hex HMAC-SHA256 of the exact body bytes, keyed with the channel secret>`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Outgoing:
    """One send: a reminder, or a digest of several held for the same channel."""

    key: str  # the idempotency key: the reminder's id, or the digest's
    body: dict  # the webhook channel's JSON
    headline: str  # a few words naming it (an e-mail's subject)
    text: str  # its wording for people
    summary: str  # the same in one short line (a digest: who each reminder is about)
    business_number: str | None  # the phone number id their customer wrote to: the WhatsApp sender by default


@dataclass(frozen=True)
class Accounts:
    """The service's own accounts some channels send through."""

    mail: MailSettings | None = None
    whatsapp: WhatsAppSettings | None = None


def send(channel: Channel, outgoing: Outgoing, accounts: Accounts, deadline_s: float, free_form: bool = False) -> None:
    """Deliver one reminder or digest within `deadline_s` seconds from the first byte to the last
    of the answer. `free_form`: the rep wrote to the sending number within 24 hours, so WhatsApp
    takes a text; otherwise it takes the approved template."""
    with Deadline(deadline_s) as deadline:
        try:
            _send(channel, outgoing, accounts, free_form)
        except (RetryLater, Refused):
            if deadline.expired:
                raise RetryLater(f"no answer within {deadline_s:g} s") from None
            raise


def _send(channel: Channel, outgoing: Outgoing, accounts: Accounts, free_form: bool) -> None:
    if channel.type == "email":
        _mail(accounts.mail, channel.settings["to"], outgoing)
    elif channel.type == "whatsapp":
        _whatsapp(accounts.whatsapp, channel.settings, outgoing, free_form)
    elif channel.type == "webhook":
        body = json.dumps(outgoing.body, separators=(",", ":"), ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: signature(channel.settings["secret"], body),
                   "Idempotency-Key": outgoing.key}
        _post(channel.settings["url"], body, headers)
    else:  # slack: the only other type the configuration accepts
        payload = {"text": outgoing.text,
                   "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": part[:3000]}}
                              for part in outgoing.text.split("\n\n")[:50]]}
        _post(channel.settings["url"], json.dumps(payload).encode(), {"Content-Type": "application/json"})


@dataclass(frozen=True)
class MailSettings:
    url: str  # smtp://user:password@host:port?starttls=1, or smtps:// for TLS from the start
    sender: str


def _mail(mail: MailSettings | None, to: str, outgoing: Outgoing) -> None:
    if mail is None:
        raise Refused("no SMTP_URL is set")
    server = urlsplit(mail.url)
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = mail.sender, to, f"wapulse: {outgoing.headline}"
    message["Message-ID"] = f"<{outgoing.key}@wapulse>"  # the same reminder keeps the same id
    message.set_content(outgoing.text)
    connect = WatchedSMTPSSL if server.scheme == "smtps" else WatchedSMTP
    try:
        with connect(server.hostname or "localhost", server.port or 0, timeout=TIMEOUT_S[1]) as smtp:
            if "starttls=1" in server.query:
                smtp.starttls()
            if server.username:
                smtp.login(unquote(server.username), unquote(server.password or ""))
            smtp.send_message(message)
    except smtplib.SMTPResponseException as error:  # 4xx: try again later; 5xx: refused
        raise (RetryLater if 400 <= error.smtp_code < 500 else Refused)(f"SMTP {error.smtp_code}") from None
    except smtplib.SMTPRecipientsRefused as error:
        codes = [code for code, _ in error.recipients.values()]
        raise (RetryLater if all(400 <= code < 500 for code in codes) else Refused)(f"SMTP {codes[0]}") from None
    except (OSError, smtplib.SMTPException) as error:
        raise RetryLater(type(error).__name__) from None


@dataclass(frozen=True)
class WhatsAppSettings:
    token: str  # WHATSAPP_ACCESS_TOKEN: a system user token with whatsapp_business_messaging
    graph_url: str  # WHATSAPP_GRAPH_URL: https://graph.facebook.com/v24.0
    sender: str | None = None  # WHATSAPP_ALERT_PHONE_NUMBER_ID: the number reminders come from


def whatsapp_sender(settings: Mapping[str, str], account: WhatsAppSettings | None, outgoing: Outgoing) -> str | None:
    """The phone number id a WhatsApp reminder comes from: the channel's `from`, else
    WHATSAPP_ALERT_PHONE_NUMBER_ID, else the number the customer writes to."""
    return settings.get("from") or (account.sender if account else None) or outgoing.business_number


def _whatsapp(account: WhatsAppSettings | None, settings: Mapping[str, str], outgoing: Outgoing, free_form: bool) -> None:
    """POST /{phone_number_id}/messages to the rep's own number. The callback data marks the
    message as ours, so the statuses Meta sends back for it are not taken for customer traffic."""
    if account is None:
        raise Refused("no WHATSAPP_ACCESS_TOKEN is set")
    sender = whatsapp_sender(settings, account, outgoing)
    if not sender:
        raise Refused("no business number to send from: set from = <phone number id> on the channel")
    message = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": settings["to"],
               "biz_opaque_callback_data": f"{OWN_REMINDER_TAG}{outgoing.key}"}
    if free_form:
        text = outgoing.text if len(outgoing.text) <= WHATSAPP_TEXT_LIMIT else outgoing.text[:WHATSAPP_TEXT_LIMIT - 1] + "…"
        message.update(type="text", text={"preview_url": False, "body": text})
    else:  # template parameters may hold no newline, tab or run of more than four spaces
        line = " ".join(outgoing.text.split())
        line = line if len(line) <= TEMPLATE_PARAMETER_LIMIT else " ".join(outgoing.summary.split())
        line = line if len(line) <= TEMPLATE_PARAMETER_LIMIT else line[:TEMPLATE_PARAMETER_LIMIT - 1] + "…"
        message.update(type="template", template={
            "name": settings["template"], "language": {"code": settings["language"]},
            "components": [{"type": "body", "parameters": [{"type": "text", "text": line}]}],
        })
    headers = {"Authorization": f"Bearer {account.token}", "Content-Type": "application/json"}
    _post(f"{account.graph_url.rstrip('/')}/{sender}/messages", json.dumps(message).encode(), headers, graph=True)


def send_template(account: WhatsAppSettings | None, sender: str, to: str, template: MessageTemplate,
                  parameters: list[str], deadline_s: float) -> str:
    """Send an approved template to a customer from the business number `sender`: POST
    /{phone_number_id}/messages with the template's campaign as `biz_opaque_callback_data`, so its
    statuses come back through the webhook credited to the campaign. Returns Meta's message id;
    raises Refused or RetryLater (nothing was sent) as reminder sends do."""
    if account is None:
        raise Refused("no WHATSAPP_ACCESS_TOKEN is set: wapulse cannot send WhatsApp messages")
    component = [{"type": "body", "parameters": [{"type": "text", "text": " ".join(value.split())[:TEMPLATE_PARAMETER_LIMIT]}
                                                 for value in parameters]}] if parameters else []
    message = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to, "type": "template",
               "template": {"name": template.name, "language": {"code": template.language}, "components": component}}
    if template.campaign:
        message["biz_opaque_callback_data"] = template.campaign
    headers = {"Authorization": f"Bearer {account.token}", "Content-Type": "application/json"}
    with Deadline(deadline_s) as deadline:
        try:
            answer = _post(f"{account.graph_url.rstrip('/')}/{sender}/messages", json.dumps(message).encode(), headers,
                           graph=True)
        except RetryLater:
            if deadline.expired:
                raise RetryLater(f"no answer from the Graph API within {deadline_s:g} s") from None
            raise
    try:
        return json.loads(answer)["messages"][0]["id"]
    except (ValueError, KeyError, IndexError, TypeError):
        return ""


def _post(url: str, body: bytes, headers: dict, graph: bool = False) -> bytes:
    """POST through the transport alone: no session, so no redirect is followed or even read (a
    3xx is refused like any other answer that is not a success). Returns the answer's first
    MAX_ANSWER_BYTES."""
    transport = WatchedAdapter()
    try:
        response = transport.send(requests.Request("POST", url, data=body, headers=headers).prepare(),
                                  stream=True, timeout=TIMEOUT_S)
        with response:
            answer = response.raw.read(MAX_ANSWER_BYTES, decode_content=True)  # enough for any error body
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError, ValueError) as error:
        raise RetryLater(type(error).__name__) from None  # ValueError: an answer that cannot be read
    finally:
        transport.close()
    code = _graph_error_code(answer) if graph and response.status_code >= 300 else None
    what = f"HTTP {response.status_code}" + (f", Graph API error {code}" if code is not None else "")
    if response.status_code == 429 or response.status_code >= 500 or code in GRAPH_RETRY_CODES:
        raise RetryLater(what)
    if response.status_code >= 300:
        raise Refused(what)
    return answer


def _graph_error_code(answer: bytes) -> int | None:
    """`error.code` of a Graph API error body (its message may name the recipient: not kept)."""
    try:
        code = json.loads(answer)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None
    return code if isinstance(code, int) else None
