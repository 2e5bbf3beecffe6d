"""`wapulse import-chat`: a chat exported from the WhatsApp or WhatsApp Business app, taken in as
the history it is.

The export's messages become one back-fill chunk, in the shape of Meta's `history` field and
marked `wapulse_import`, committed through the path every webhook body takes: archived (so a
rebuild replays it and an erasure finds it), parsed into the same typed events, each keyed by
what it is (`cloudapi.parse._history_key`: who wrote, the minute, the words or the kind), so
that importing the file again, or Meta's back-fill of the same messages, changes nothing; and
the customer folded as if the messages had arrived live (their tiers, history and figures).
Nothing is written when a line of the export cannot be read.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from sqlalchemy import select

from chatexport.parse import ChatMessage, ExportError, read_export
from store import queries
from store.identity import locate
from store.models import RawBody
from workers.context import Context
from workers.ingest import commit_here
from workers.settings import ConfigError

BUSINESS_SIDE = "business"
"""Our side's `from` in the chunk: an export does not show the business's own number."""
MEDIA_TYPES = {"image", "video", "audio", "document", "sticker"}
_NUMBER = re.compile(r"^\+?[\d\s\-().\u00a0\u202f]{7,}$")


@dataclass(frozen=True)
class Imported:
    customer: str  # their wa_id
    theirs: int  # messages of theirs (calls included)
    ours: int
    live: int  # messages left out: from when the customer's messages on this number came live (webhooks)
    new_events: int  # events the store did not hold yet (0 when the file was imported before)
    first_at: int | None
    last_at: int | None


def import_chat(context: Context, path: Path, number: str, customer: str | None = None, me: str | None = None,
                timezone: str | None = None) -> Imported:
    """Import one export (.txt or .zip) for the business number `number` (a phone number id).
    Raises ConfigError saying what is wrong, with nothing written."""
    if not number.isdigit():
        raise ConfigError(f"--number {number!r} is not a business phone number id (digits)")
    try:
        export = read_export(path)
    except ExportError as error:
        raise ConfigError(f"{path.name}: {error}; nothing was imported") from None
    said = [message for message in export.messages if message.author is not None]
    wa_id = _customer(customer, path, said)
    ours = _our_side(me, wa_id, path, said)
    zone = _zone(timezone, wa_id)
    with context.engine.connect() as connection:
        live_from = queries.first_live_at(connection, wa_id, number)
    shaped = [shape for message, at in zip(said, _instants(said, zone))
              if (shape := _history_message(message, at, wa_id, message.author in ours))]
    chunk = [message for message in shaped if live_from is None or int(message["timestamp"]) < live_from - 59]
    body = _body(number, wa_id, chunk, path.name)
    with context.engine.connect() as connection:
        already = connection.execute(select(RawBody.id).where(
            RawBody.sha256 == hashlib.sha256(body).hexdigest()).limit(1)).first() is not None
    totals = None if already or not chunk else commit_here(context, [body], context.settings.batch_size)
    instants = [int(message["timestamp"]) for message in chunk]
    return Imported(wa_id, sum(message["from"] != BUSINESS_SIDE for message in chunk),
                    sum(message["from"] == BUSINESS_SIDE for message in chunk), len(shaped) - len(chunk),
                    totals.events if totals is not None else 0, min(instants, default=None), max(instants, default=None))


def _customer(given: str | None, path: Path, said: list[ChatMessage]) -> str:
    """Their wa_id: as given, else the number the export names them by (the file's name, "WhatsApp
    Chat with +34 612 34 56 78", or an author shown as a number)."""
    candidates = [given] if given else [_file_title(path), *sorted({m.author for m in said if m.author})]
    for candidate in candidates:
        if candidate and _NUMBER.match(candidate.strip()) and _valid(digits := re.sub(r"\D", "", candidate)):
            return digits
    if given:
        raise ConfigError(f"--customer {given!r} is not a WhatsApp number (digits, with or without +)")
    raise ConfigError("cannot tell the customer's number from this export: give --customer WA_ID")


def _valid(digits: str) -> bool:
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse("+" + digits))
    except phonenumbers.NumberParseException:
        return False


def _file_title(path: Path) -> str:
    """Whom the export is with, from its file name as the apps write it ("WhatsApp Chat with NAME",
    " (1)" after it when the file was downloaded twice)."""
    stem = re.sub(r" \(\d+\)$", "", path.stem)
    for lead in ("WhatsApp Chat with ", "WhatsApp Chat - ", "Chat de WhatsApp con ", "WhatsApp-Chat mit "):
        if stem.startswith(lead):
            return stem[len(lead):]
    return ""


def _our_side(me: str | None, wa_id: str, path: Path, said: list[ChatMessage]) -> set[str]:
    """The author who is us: `--me`, else the one who is not the customer when the export names
    the customer (by their number, or the file's name); none when only the customer wrote (a
    lead left unanswered). A third author (a group chat, someone else on the customer's phone)
    is refused: their messages are neither side's."""
    authors = sorted({message.author for message in said if message.author})
    named = {author for author in authors if re.sub(r"\D", "", author) == wa_id} | ({_file_title(path)} & set(authors))
    if me is not None:
        if me not in authors and len(authors) != 1:
            raise ConfigError(f"--me {me!r} wrote nothing in this export (its authors: {', '.join(authors)})")
        ours = {me} & set(authors)
    elif len(authors) == 1 and named:
        ours = set()
    elif named and len(set(authors) - named) == 1:
        ours = set(authors) - named
    else:
        raise ConfigError(f"cannot tell which author is the business: give --me NAME (authors: {', '.join(authors)})")
    if len(set(authors) - ours) > 1:
        raise ConfigError(f"this export has more than two sides ({', '.join(authors)}): import a chat between the "
                          "business and one customer")
    return ours


def _zone(timezone: str | None, wa_id: str) -> ZoneInfo:
    """The clock the export was written on: as given, else the customer's from their number."""
    name = timezone or locate(wa_id, None)[1]
    if not name:
        raise ConfigError(f"cannot tell the time zone of +{wa_id}: give --tz (an IANA name such as Europe/Madrid)")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"--tz {name!r} is not an IANA time zone (such as Europe/Madrid)") from None


def _instants(said: list[ChatMessage], zone: ZoneInfo) -> list[int]:
    """The messages' instants (Unix seconds). In the hour a clock change repeats, a time earlier
    than the message before is the second time round (the export is in the order they were sent)."""
    instants, previous = [], None
    for message in said:
        first, second = (int(message.at.replace(tzinfo=zone, fold=fold).timestamp()) for fold in (0, 1))
        at = second if previous is not None and first < previous <= second else first
        instants.append(at)
        previous = at
    return instants


def _history_message(message: ChatMessage, at: int, wa_id: str, ours: bool) -> dict | None:
    """One message as Meta's back-fill writes one; None for what is not a message of either side
    (a missed call of ours, a system line)."""
    if message.kind == "call" and ours:
        return None
    shaped: dict = {"from": BUSINESS_SIDE if ours else wa_id, "timestamp": str(at)}
    if ours:
        shaped["to"] = wa_id
    kind = message.kind
    if kind == "text":
        return shaped | {"type": "text", "text": {"body": message.text}}
    if kind == "media":
        media = message.media_type if message.media_type in MEDIA_TYPES else "media_placeholder"
        return shaped | {"type": media, media: {"caption": message.text} if message.text else {}}
    if kind == "deleted":
        return shaped | {"type": "revoke", "revoke": {}}
    if kind == "call":
        return shaped | {"type": "call", "call": {"type": message.call or "voice"}}
    if kind in ("location", "contacts"):
        return shaped | {"type": kind, kind: [] if kind == "contacts" else {}}
    return None


def _body(number: str, wa_id: str, messages: list[dict], file_name: str) -> bytes:
    """The chunk as a body, byte for byte the same for the same export (so a second import is
    seen as one)."""
    value = {"messaging_product": "whatsapp",
             "metadata": {"display_phone_number": BUSINESS_SIDE, "phone_number_id": number},
             "wapulse_import": {"file": file_name},
             "history": [{"threads": [{"id": wa_id, "messages": messages}]}]}
    document = {"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "history", "value": value}]}]}
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
