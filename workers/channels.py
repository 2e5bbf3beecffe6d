"""The channels a reminder reaches a rep through, each a real HTTP integration with timeouts.

A send either returns (delivered), raises `RetryLater` (a timeout, a connection error, 5xx, 429:
worth another attempt after a backoff) or raises `Refused` (any other answer: retrying would get
the same one, so the delivery goes to the failed list).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

import requests

from scoring.reps import Channel

TIMEOUT_S = (3.05, 10)  # connect, read
SIGNATURE_HEADER = "X-Wapulse-Signature"


class RetryLater(Exception):
    """The channel may take it later."""


class Refused(Exception):
    """The channel will not take it as it is."""


def signature(secret: str, body: bytes) -> str:
    """`sha256=<hex HMAC-SHA256 of the exact body bytes, keyed with the channel secret>`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def send(channel: Channel, content: dict, headline: str, text: str, mail: MailSettings | None = None) -> None:
    """Deliver one reminder; `content` is its JSON form, `text` its wording for people and
    `headline` the few words that name it (an e-mail's subject)."""
    if channel.type == "email":
        _mail(mail, channel.settings["to"], headline, text, content["id"])
    elif channel.type == "webhook":
        body = json.dumps(content, separators=(",", ":"), ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: signature(channel.settings["secret"], body),
                   "Idempotency-Key": content["id"]}
        _post(channel.settings["url"], body, headers)
    else:  # slack: the only other type the configuration accepts
        payload = {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}
        _post(channel.settings["url"], json.dumps(payload).encode(), {"Content-Type": "application/json"})


@dataclass(frozen=True)
class MailSettings:
    url: str  # smtp://user:password@host:port?starttls=1, or smtps:// for TLS from the start
    sender: str


def _mail(mail: MailSettings | None, to: str, subject: str, text: str, reminder_id: str) -> None:
    if mail is None:
        raise Refused("no SMTP_URL is set")
    server = urlsplit(mail.url)
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = mail.sender, to, f"wapulse: {subject}"
    message["Message-ID"] = f"<{reminder_id}@wapulse>"  # the same reminder keeps the same id
    message.set_content(text)
    connect = smtplib.SMTP_SSL if server.scheme == "smtps" else smtplib.SMTP
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


def _post(url: str, body: bytes, headers: dict) -> None:
    try:
        response = requests.post(url, data=body, headers=headers, timeout=TIMEOUT_S)
    except (requests.Timeout, requests.ConnectionError) as error:
        raise RetryLater(type(error).__name__) from None
    if response.status_code == 429 or response.status_code >= 500:
        raise RetryLater(f"HTTP {response.status_code}")
    if response.status_code >= 300:
        raise Refused(f"HTTP {response.status_code}")
