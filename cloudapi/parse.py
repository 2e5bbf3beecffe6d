"""Cloud API webhook bodies (already decoded JSON) into typed events.

Dispatch goes through tables keyed by `changes[].field` and by message `type`; fields we know and
do not need are listed by name, and anything unknown is acknowledged, recorded as such and never
fails the body. Each item is parsed on its own, so one malformed item costs only itself.
"""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field, replace
from functools import cached_property
from decimal import Decimal, InvalidOperation
from typing import Any, Callable

from cloudapi import OWN_REMINDER_TAG
from scoring.events import EARLIEST_INSTANT, LATEST_INSTANT, Event, EventKind, Identity, Item

log = logging.getLogger(__name__)

IGNORED_FIELDS = frozenset(
    {
        "message_template_status_update",
        "message_template_quality_update",
        "message_template_components_update",
        "template_category_update",
        "account_update",
        "account_alerts",
        "account_review_update",
        "business_capability_update",
        "phone_number_name_update",
        "phone_number_quality_update",
        "security",
        "partner_solutions",
        "payment_configuration_update",
        "automatic_events",
        "smb_app_state_sync",
        "calls",
        "messaging_handovers",
        "standby",
        "group_lifecycle_update",
        "group_participants_update",
        "group_settings_update",
        "group_status_update",
    }
)
"""Subscription fields acknowledged and deliberately not processed (admin, templates, calls)."""

SYSTEM_TYPES = frozenset(
    {"user_changed_number", "user_changed_user_id", "customer_changed_number", "customer_identity_changed"}
)

# structural signals per message type: what the customer sent says something by itself
_MEDIA_SIGNALS: dict[str, tuple[str, ...]] = {
    "image": ("image", "rapport"),
    "video": ("video",),
    "document": ("document",),
    "sticker": ("sticker", "rapport"),
    "location": ("location",),
    "contacts": ("contacts",),
    "button": ("template_button",),
    "interactive": ("interactive_reply",),
}


@dataclass
class ParsedBody:
    items: list[Item] = field(default_factory=list)
    ignored_fields: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # where and why an item was skipped; no data


def parse_body(body: Any, received_at: int) -> ParsedBody:
    """Every event of one webhook body. `received_at` stands in for missing timestamps."""
    parsed = ParsedBody()
    if not isinstance(body, dict):
        parsed.problems.append("body is not a JSON object")
        return parsed
    for entry_index, entry in enumerate(as_list(body.get("entry"))):
        entry = as_dict(entry)
        for change_index, change in enumerate(as_list(entry.get("changes"))):
            where = f"entry[{entry_index}].changes[{change_index}]"
            change = as_dict(change)
            field_name = _str(change.get("field"))
            lists = FIELD_ITEMS.get(field_name) if field_name is not None else None
            if lists is None:
                parsed.ignored_fields.append(str(field_name)[:64])
                if field_name not in IGNORED_FIELDS:
                    log.info("acknowledged unknown webhook field %r", str(field_name)[:64])
                continue
            context = _Context(as_dict(change.get("value")), received_at, where, _str(entry.get("id")))
            for list_name, parse_one in lists:
                _parse_items(context, list_name, parse_one, parsed)
    return parsed


@dataclass
class _Context:
    """One `changes[].value` being parsed, with what its items share."""

    value: dict
    received_at: int
    where: str
    waba_id: str | None  # the entry's id: the WhatsApp Business Account

    @property
    def phone_number_id(self) -> str | None:
        return _str(as_dict(self.value.get("metadata")).get("phone_number_id"))

    @property
    def business_number(self) -> str | None:
        return _str(as_dict(self.value.get("metadata")).get("display_phone_number"))

    def timestamp(self, raw: Any) -> int:
        """Meta sends Unix seconds, as strings in messages and integers elsewhere. Anything that is
        no plausible instant (missing, not a number, milliseconds, before WhatsApp or after 2099)
        falls back to the arrival time rather than losing the event or storing a time no clock
        can show."""
        return self.instant(raw)[0]

    def instant(self, raw: Any) -> tuple[int, str]:
        """The instant, and how an idempotency key names it: its seconds, or, when it fell back
        to the arrival time (which differs at each redelivery), a digest of what was sent."""
        try:
            at = int(float(raw))
        except (TypeError, ValueError, OverflowError):
            at = None
        if at is not None and EARLIEST_INSTANT <= at < LATEST_INSTANT:
            return at, str(at)
        return self.received_at, "sent:" + _digest(repr(raw))[:16]

    def contact_for(self, wa_id: str | None, user_id: str | None) -> dict:
        """The `value.contacts[]` entry that describes this person.

        Matched by wa_id or BSUID; failing that, a lone contact beside a lone message or status
        is its person (Meta warns that `wa_id` and the number in `from` can differ, as with
        Brazilian and Mexican numbers)."""
        contacts, by_wa_id, by_user_id = self._contacts
        found = (by_wa_id.get(wa_id) if wa_id else None) or (by_user_id.get(user_id) if user_id else None)
        if found is not None:
            return found
        items = len(as_list(self.value.get("messages"))) + len(as_list(self.value.get("statuses")))
        return contacts[0] if len(contacts) == 1 and items == 1 else {}

    @cached_property
    def _contacts(self) -> tuple[list[dict], dict[str, dict], dict[str, dict]]:
        """The contacts, and the first of them for each wa_id and BSUID: looked up once per item,
        so a body of many messages and contacts costs their sum, not their product."""
        contacts = [as_dict(contact) for contact in as_list(self.value.get("contacts"))]
        by_wa_id: dict[str, dict] = {}
        by_user_id: dict[str, dict] = {}
        for contact in contacts:
            for index, name in ((by_wa_id, "wa_id"), (by_user_id, "user_id")):
                if isinstance(key := contact.get(name), str) and key:
                    index.setdefault(key, contact)
        return contacts, by_wa_id, by_user_id


ItemParser = Callable[[_Context, dict], list[Item]]


def _parse_items(context: _Context, list_name: str, parse_one: ItemParser, parsed: ParsedBody) -> None:
    """Parse each item of one list alone: a malformed one is reported and skipped, never fatal."""
    for index, raw in enumerate(as_list(context.value.get(list_name))):
        where = f"{context.where}.{list_name}[{index}]"
        try:
            parsed.items.extend(parse_one(context, as_dict(raw)))
        except Exception as error:  # one bad item must not fail its body
            parsed.problems.append(f"{where}: {type(error).__name__}")
            log.warning("skipped unparseable item at %s (%s)", where, type(error).__name__)


# ---- identity ---------------------------------------------------------------------------------


def _identity(context: _Context, wa_id: Any, user_id: Any, parent_user_id: Any = None) -> Identity:
    wa_id, user_id = _str(wa_id), _str(user_id)
    contact = context.contact_for(wa_id, user_id)
    profile = as_dict(contact.get("profile"))
    return Identity(
        wa_id=wa_id or _str(contact.get("wa_id")),
        user_id=user_id or _str(contact.get("user_id")),
        parent_user_id=_str(parent_user_id) or _str(contact.get("parent_user_id")),
        username=_str(profile.get("username")) or _str(contact.get("username")),
        name=_str(profile.get("name")),
    )


# ---- field: messages --------------------------------------------------------------------------


def _inbound_message(context: _Context, message: dict, key: str | None = None) -> list[Item]:
    identity = _identity(
        context, message.get("from"), message.get("from_user_id"), message.get("from_parent_user_id")
    )
    message_type = _str(message.get("type")) or "unknown"
    at, when = context.instant(message.get("timestamp"))
    key = key or "m:" + (_str(message.get("id")) or _fallback_key(identity, message_type, when, message))
    if message_type == "system":
        return [_system_change(context, message, identity, key, at)]
    content, text, signals, extra = _content(message_type, message)
    message_context = as_dict(message.get("context"))
    if message_context.get("referred_product"):
        signals.append("product_inquiry")
    if message_context.get("forwarded") or message_context.get("frequently_forwarded"):
        signals.append("forwarded")
    referral = as_dict(message.get("referral"))
    ad_id = _str(referral.get("source_id")) if referral else None
    if referral:
        signals.append("ad_referral")
    errors = _error_codes(message.get("errors")) + _error_codes(content.get("errors"))
    event = Event(
        key=key,
        kind=EventKind.MESSAGE,
        type=message_type,
        at=at,
        phone_number_id=context.phone_number_id,
        waba_id=context.waba_id,
        message_id=_str(message.get("id")),
        signals=tuple(sorted(set(signals))),
        error_codes=errors,
        ad_id=ad_id,
        **extra,
    )
    return [Item.of(identity, event, text)]


def _content(message_type: str, message: dict) -> tuple[dict, str | None, list[str], dict]:
    """The type-specific object, its text (for keyword signals), structural signals, extras."""
    content = as_dict(message.get(message_type))
    signals = list(_MEDIA_SIGNALS.get(message_type, ()))
    extra: dict = {}
    text: str | None = None
    if message_type == "text":
        text = _str(content.get("body"))
    elif message_type in ("image", "video", "document"):
        text = _str(content.get("caption"))
    elif message_type == "audio":
        signals = ["voice", "rapport"] if content.get("voice") is True else ["audio"]
    elif message_type == "button":
        text = _str(content.get("text"))
    elif message_type == "interactive":
        reply = as_dict(content.get(_str(content.get("type")) or ""))
        text = " ".join(filter(None, (_str(reply.get("title")), _str(reply.get("description"))))) or None
    elif message_type == "reaction":
        emoji = _str(content.get("emoji"))
        signals = ["reaction", "rapport"] if emoji else ["reaction_removed"]
    elif message_type == "order":
        text = _str(content.get("text"))
        signals = ["order"]
        extra["order_value"], extra["order_items"] = _order_totals(content.get("product_items"))
    elif message_type == "edit":
        edited = as_dict(content.get("message"))
        edited_type = _str(edited.get("type")) or ""
        inner = as_dict(edited.get(edited_type))
        text = _str(inner.get("body")) or _str(inner.get("caption"))
    return content, text, signals, extra


MAX_QUANTITY = Decimal(10) ** 9
MAX_PRICE = Decimal(10) ** 15


def _order_totals(product_items: Any) -> tuple[tuple[tuple[str, Decimal], ...], int]:
    """Σ quantity × item_price per currency, with the decimals Meta sent (7.99 stays 7.99). A
    product line whose quantity or price no order can have (not a number, infinite, negative,
    beyond a billion units or 10¹⁵ a unit) is left out; the order still counts."""
    totals: dict[str, Decimal] = {}
    quantity_total = 0
    for item in as_list(product_items):
        item = as_dict(item)
        quantity, price = _amount(item.get("quantity", 0), MAX_QUANTITY), _amount(item.get("item_price", 0), MAX_PRICE)
        if quantity is None or price is None:
            continue
        currency = _str(item.get("currency")) or "UNKNOWN"
        totals[currency] = totals.get(currency, Decimal(0)) + quantity * price
        quantity_total += int(quantity)
    return tuple(sorted(totals.items())), quantity_total


def _amount(raw: Any, limit: Decimal) -> Decimal | None:
    """A finite amount from 0 up to `limit`, or None."""
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)) or (isinstance(raw, str) and len(raw) > 40):
        return None
    try:
        amount = Decimal(str(raw) if isinstance(raw, float) else raw)
    except (InvalidOperation, ValueError):
        return None
    return amount if amount.is_finite() and 0 <= amount <= limit else None


def _system_change(context: _Context, message: dict, identity: Identity, key: str, at: int) -> Item:
    """A number or BSUID change: `from` is the old identity, `system` carries the new one."""
    system = as_dict(message.get("system"))
    system_type = _str(system.get("type")) or "system"
    new_identity = Identity(
        wa_id=_str(system.get("wa_id")) or _str(system.get("new_wa_id")),
        user_id=_str(system.get("user_id")),
        parent_user_id=_str(system.get("parent_user_id")),
    )
    event = Event(
        key=key,
        kind=EventKind.IDENTITY,
        type=system_type,
        at=at,
        phone_number_id=context.phone_number_id,
        waba_id=context.waba_id,
        message_id=_str(message.get("id")),
        new_identity=None if new_identity.is_empty() else new_identity,
    )
    return Item.of(identity, event)


def _status(context: _Context, status: dict) -> list[Item]:
    campaign = _str(status.get("biz_opaque_callback_data"))
    if campaign is not None and campaign.startswith(OWN_REMINDER_TAG):  # a reminder we sent a rep: not
        if status.get("status") == "failed":  # customer activity, but a failure must be seen
            log.warning("WhatsApp reminder %s failed after Meta accepted it: errors %s",
                        campaign.removeprefix(OWN_REMINDER_TAG)[:40], list(_error_codes(status.get("errors"))))
        return []
    status_value = _str(status.get("status")) or "unknown"
    message_id = _str(status.get("id"))
    participant = _str(status.get("recipient_participant_id"))
    if status.get("recipient_type") == "group":
        identity = _identity(context, participant, None) if participant else None
    else:
        parent = status.get("recipient_parent_user_id") or status.get("parent_recipient_user_id")
        identity = _identity(context, status.get("recipient_id"), status.get("recipient_user_id"), parent)
    key = f"s:{message_id}:{status_value}" + (f":{participant}" if participant else "")
    event = Event(
        key=key,
        kind=EventKind.STATUS,
        type=status_value,
        at=context.timestamp(status.get("timestamp")),
        phone_number_id=context.phone_number_id,
        waba_id=context.waba_id,
        message_id=message_id,
        error_codes=_error_codes(status.get("errors")),
        campaign=campaign,
    )
    return [Item.of(identity, event)]


def _value_error(context: _Context, error: dict) -> list[Item]:
    """An error about the business number (rate limit, account...): no customer to blame."""
    code = _str(error.get("code")) or "unknown"
    fingerprint = hashlib.sha256(repr(sorted(error.items())).encode()).hexdigest()[:16]
    event = Event(
        key=f"e:{context.phone_number_id}:{code}:{fingerprint}",
        kind=EventKind.ERROR,
        type=code,
        at=context.received_at,
        phone_number_id=context.phone_number_id,
        waba_id=context.waba_id,
        error_codes=_error_codes([error]),
    )
    return [Item.of(None, event)]


# ---- field: smb_message_echoes, history ---------------------------------------------------------


def _echo(context: _Context, echo: dict) -> list[Item]:
    identity = _identity(context, echo.get("to"), echo.get("to_user_id"), echo.get("to_parent_user_id"))
    message_id = _str(echo.get("id"))
    at, when = context.instant(echo.get("timestamp"))
    echo_type = _str(echo.get("type")) or "unknown"
    event = Event(
        key="o:" + (message_id or _fallback_key(identity, echo_type, when, echo)),
        kind=EventKind.ECHO,
        type=echo_type,
        at=at,
        phone_number_id=context.phone_number_id,
        waba_id=context.waba_id,
        message_id=message_id,
    )
    return [Item.of(identity, event)]


_HISTORY_STATUS = {"SENT": "sent", "DELIVERED": "delivered", "READ": "read", "PLAYED": "played", "ERROR": "failed"}


def _history_chunk(context: _Context, chunk: dict) -> list[Item]:
    """A back-fill chunk: threads of past messages, ours (from the business number) and theirs,
    and how far the back-fill has come. A message is keyed by what it is (`_history_key`), not by
    its id, so that the same message from a chat export (`wapulse import-chat`, which writes its
    messages as a chunk marked `wapulse_import`) and from Meta's back-fill counts once."""
    items: list[Item] = []
    business = context.business_number
    repeats: Counter = Counter()
    for thread in as_list(chunk.get("threads")):
        thread = as_dict(thread)
        for message in as_list(thread.get("messages")):
            message = as_dict(message)
            ours = bool(business) and _str(message.get("from")) == business
            key = _history_key(context, _str(thread.get("id")), ours, message, repeats)
            if ours:
                items.extend(_history_outbound(context, thread, message, key))
            else:
                items.extend(_inbound_message(context, message, "h:" + key))
    if context.value.get("wapulse_import"):
        items = [Item(item.identity, replace(item.event, imported=True), item.text) for item in items]
    if progress := as_dict(chunk.get("metadata")):
        items.append(_backfill(context, progress))
    for error in as_list(chunk.get("errors")):
        items.extend(_value_error(context, as_dict(error)))
    return items


_HISTORY_MEDIA = frozenset({"image", "video", "audio", "document", "sticker", "media_placeholder", "gif"})
_HISTORY_SAME = {"revoke": "deleted", "unsupported": "deleted"}


def _history_key(context: _Context, customer: str | None, ours: bool, message: dict, repeats: Counter) -> str:
    """What makes a past message the same whichever source tells it: the customer, who wrote,
    the minute (an export shows no seconds), what it is (a text by its words, any media as media,
    the back-fill sending media apart), and how many such came before it in that minute."""
    message_type = _str(message.get("type")) or "unknown"
    if message_type == "text":
        content = " ".join(_visible(_str(as_dict(message.get("text")).get("body")) or "").split())
    else:
        content = "media" if message_type in _HISTORY_MEDIA else _HISTORY_SAME.get(message_type, message_type)
    at, when = context.instant(message.get("timestamp"))
    minute = at // 60 if when == str(at) else when  # no usable timestamp: what it says, not when it came
    base = f"{customer}|{'out' if ours else 'in'}|{minute}|{content}"
    repeats[base] += 1
    return _digest(f"{base}|{repeats[base]}")[:32]


def _visible(text: str) -> str:
    """The text as a reader sees it: composed (NFC), without format characters (direction marks,
    joiners), which an export and the back-fill do not write alike."""
    return "".join(char for char in unicodedata.normalize("NFC", text) if unicodedata.category(char) != "Cf")


def _backfill(context: _Context, progress: dict) -> Item:
    """How far a number's back-fill has come: a chunk's phase (0 to 2), order and progress (%)."""
    figures = tuple(_whole(progress.get(name)) for name in ("phase", "chunk_order", "progress"))
    event = Event(key=f"b:{context.phone_number_id}:{figures[0]}:{figures[1]}", kind=EventKind.BACKFILL,
                  type="history", at=context.received_at, phone_number_id=context.phone_number_id,
                  waba_id=context.waba_id, backfill=figures)
    return Item.of(None, event)


def _whole(value: Any) -> int:
    try:
        return max(0, min(int(value), 10**6))
    except (TypeError, ValueError, OverflowError):
        return 0


def _history_outbound(context: _Context, thread: dict, message: dict, key: str) -> list[Item]:
    """Ours, as an echo and its status, under a message id made from its key (the same message
    from an export has no id of Meta's)."""
    echo = {**message, "to": message.get("to") or thread.get("id"), "id": "h." + key}
    items = _echo(context, echo)
    status = _HISTORY_STATUS.get(_str(as_dict(message.get("history_context")).get("status")) or "")
    if status:
        items += _status(context, {"id": echo["id"], "status": status, "timestamp": message.get("timestamp"),
                                   "recipient_id": echo["to"]})
    return items


# ---- fields: user_preferences, user_id_update ---------------------------------------------------


def _preference(context: _Context, preference: dict) -> list[Item]:
    identity = _identity(context, preference.get("wa_id"), preference.get("user_id"))
    value = _str(preference.get("value")) or "unknown"
    at, when = context.instant(preference.get("timestamp"))
    who = identity.wa_id or identity.user_id
    category = _str(preference.get("category")) or ""
    event = Event(
        key=f"p:{who}:{category}:{value}:{when}",
        kind=EventKind.PREFERENCE,
        type=value,
        at=at,
        phone_number_id=context.phone_number_id,
        waba_id=context.waba_id,
    )
    return [Item.of(identity, event)]


def _user_id_update(context: _Context, update: dict) -> list[Item]:
    user_ids, parent_ids = as_dict(update.get("user_id")), as_dict(update.get("parent_user_id"))
    identity = _identity(context, update.get("wa_id"), user_ids.get("previous"), parent_ids.get("previous"))
    new_identity = Identity(
        wa_id=identity.wa_id, user_id=_str(user_ids.get("current")), parent_user_id=_str(parent_ids.get("current"))
    )
    at, when = context.instant(update.get("timestamp"))
    event = Event(
        key=f"u:{_str(user_ids.get('previous'))}:{_str(user_ids.get('current'))}:{when}",
        kind=EventKind.IDENTITY,
        type="user_id_update",
        at=at,
        phone_number_id=context.phone_number_id,
        waba_id=context.waba_id,
        new_identity=new_identity,
    )
    return [Item.of(identity, event)]


FIELD_ITEMS: dict[str, tuple[tuple[str, ItemParser], ...]] = {
    "messages": (("messages", _inbound_message), ("statuses", _status), ("errors", _value_error)),
    "smb_message_echoes": (("message_echoes", _echo),),
    "history": (("history", _history_chunk),),
    "user_preferences": (("user_preferences", _preference),),
    "user_id_update": (("user_id_update", _user_id_update),),
}
"""Per processed field: which lists of `value` hold items, and how to parse one item of each."""


# ---- defensive accessors ----------------------------------------------------------------------


def as_dict(value: Any) -> dict:
    """A JSON object, or an empty one in its place (a body may hold anything where one belongs)."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list:
    """A JSON array, or an empty one in its place."""
    return value if isinstance(value, list) else []


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
"""NUL, which PostgreSQL text cannot hold, and lone UTF-16 surrogates (valid JSON escapes such
as `\\ud800` that are no Unicode text: no encoder can write them)."""


def _storable(match: re.Match) -> str:
    return "" if match.group() == "\x00" else "\ufffd"


def _str(value: Any) -> str | None:
    """A string as every store can hold it: NUL dropped, a lone surrogate replaced by U+FFFD.
    Numbers become their digits; objects, lists and booleans are not strings."""
    if isinstance(value, str):
        if value.isascii() and "\x00" not in value:  # nearly every string: no copy
            return value or None
        return _UNSTORABLE.sub(_storable, value) or None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value) if not isinstance(value, int) or abs(value) < 10**64 else None
    return None


MAX_ERROR_CODE = 2**31 - 1  # Meta's codes are small positive integers; anything else is no code


def _error_codes(errors: Any) -> tuple[int, ...]:
    codes = []
    for error in as_list(errors):
        code = as_dict(error).get("code")
        try:
            code = int(code) if isinstance(code, (int, str)) and not isinstance(code, bool) else None
        except ValueError:
            continue
        if code is not None and 0 <= code <= MAX_ERROR_CODE:
            codes.append(code)
    return tuple(codes)


def _fallback_key(identity: Identity, kind: str, when: str, item: dict) -> str:
    """A stable key for the rare item without an id: who, what, when, and all it says (two such
    messages in one second differ; a redelivery of one does not)."""
    who = identity.wa_id or identity.user_id or identity.username or "?"
    return f"noid:{_digest(f'{who}|{kind}|{when}|{item!r}')[:24]}"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
