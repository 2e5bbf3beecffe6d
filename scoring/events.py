"""Typed customer events: what happened, to whom, when. They know nothing of Meta's JSON.

The Cloud API parser produces them, the store persists them (without message text) and the
customer fold consumes them, so one record format serves live processing, refolds and rebuilds.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum


EARLIEST_INSTANT = 1_230_768_000  # 2009-01-01T00:00:00Z: WhatsApp did not exist before
LATEST_INSTANT = 4_102_444_800  # 2100-01-01T00:00:00Z: past any date a report can ask for
"""Event instants outside [EARLIEST_INSTANT, LATEST_INSTANT) are no instants: a sender's
milliseconds, a zero, 2**63. Parsers put the arrival time in their place."""


def iso(at: int | None) -> str | None:
    """An event instant (Unix seconds) as ISO-8601 UTC with a Z, as every JSON form shows it; None
    stays None, and so does a stored value no calendar can show (a read never fails on one)."""
    if at is None:
        return None
    try:
        return datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")
    except (ValueError, OverflowError, OSError):
        return None


class EventKind(StrEnum):
    """Where an event comes from; decides how the customer fold treats it."""

    MESSAGE = "message"  # the customer wrote, reacted, ordered...: an interaction
    STATUS = "status"  # a delivery status of a message we sent
    ECHO = "echo"  # a message we sent, seen from the business app or history back-fill
    PREFERENCE = "preference"  # marketing opt-out / opt-in
    IDENTITY = "identity"  # number or BSUID change
    ERROR = "error"  # a problem Meta reports for the business number, not for a customer
    BACKFILL = "backfill"  # how far the history back-fill of a business number has come (no customer)


class Status(StrEnum):
    """Delivery statuses of our outbound messages, in the order they can only move forward."""

    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    PLAYED = "played"
    FAILED = "failed"


STATUS_RANK = {Status.SENT: 1, Status.DELIVERED: 2, Status.READ: 3, Status.PLAYED: 4}
"""Rank of each non-failed status; `failed` is tracked apart because it can follow any of them."""

UNREACHABLE_ERROR = 131026
MARKETING_OPT_OUT_ERROR = 131050


@dataclass(frozen=True, slots=True)
class Identity:
    """Every identifier Meta gave for one person in one place of a body."""

    wa_id: str | None = None
    user_id: str | None = None
    parent_user_id: str | None = None
    username: str | None = None
    name: str | None = None

    def is_empty(self) -> bool:
        return not (self.wa_id or self.user_id or self.parent_user_id or self.username)


@dataclass(frozen=True, slots=True)
class Event:
    """One customer-level fact, keyed for idempotency.

    `key` is the natural idempotency key (message id, (status id, status), ...); `at` is Unix
    seconds from Meta's own timestamp. `message_id` is the message itself for inbound messages and
    our outbound message for statuses and echoes.
    """

    key: str
    kind: EventKind
    type: str
    at: int
    phone_number_id: str | None = None
    message_id: str | None = None
    waba_id: str | None = None
    signals: tuple[str, ...] = ()
    error_codes: tuple[int, ...] = ()
    order_value: tuple[tuple[str, Decimal], ...] = ()
    order_items: int = 0
    campaign: str | None = None
    ad_id: str | None = None
    new_identity: Identity | None = None  # identity events: what the customer is now known as
    name: str | None = None  # the profile name and username Meta sent with this event
    username: str | None = None
    imported: bool = False  # from a chat export (`wapulse import-chat`), not from Meta
    backfill: tuple[int, int, int] | None = None  # a history chunk's (phase, chunk order, progress in %)

    @property
    def rank(self) -> int:
        """Rank of a status event (0 for failed or unknown statuses and for other kinds)."""
        return STATUS_RANK.get(self.type, 0) if self.kind is EventKind.STATUS else 0

    def with_signals(self, extra: frozenset[str] | set[str]) -> Event:
        """The same event with text signals added (sorted, so records are stable)."""
        if not extra:
            return self
        merged = tuple(sorted(set(self.signals) | set(extra)))
        return Event(**{**self.as_fields(), "signals": merged})

    def as_fields(self) -> dict:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    def to_record(self) -> dict:
        """JSON-ready attributes beyond the indexed columns (key, kind, type, at, number)."""
        record: dict = {}
        if self.message_id:
            record["mid"] = self.message_id
        if self.waba_id:
            record["waba"] = self.waba_id
        if self.signals:
            record["sig"] = list(self.signals)
        if self.error_codes:
            record["err"] = list(self.error_codes)
        if self.order_value:
            record["ov"] = [[currency, str(amount)] for currency, amount in self.order_value]
            record["oi"] = self.order_items
        if self.campaign is not None:
            record["cmp"] = self.campaign
        if self.ad_id:
            record["ad"] = self.ad_id
        if self.name:
            record["name"] = self.name
        if self.username:
            record["user"] = self.username
        if self.imported:
            record["imp"] = 1
        if self.backfill is not None:
            record["bf"] = list(self.backfill)
        if self.new_identity is not None:
            record["nid"] = {
                name: value
                for name in ("wa_id", "user_id", "parent_user_id", "username")
                if (value := getattr(self.new_identity, name))
            }
        return record

    @classmethod
    def from_record(
        cls, key: str, kind: str, type_: str, at: int, phone_number_id: str | None, record: dict
    ) -> Event:
        new_identity = record.get("nid")
        return cls(
            key=key,
            kind=EventKind(kind),
            type=type_,
            at=at,
            phone_number_id=phone_number_id,
            message_id=record.get("mid"),
            waba_id=record.get("waba"),
            signals=tuple(record.get("sig", ())),
            error_codes=tuple(record.get("err", ())),
            order_value=tuple((c, Decimal(a)) for c, a in record.get("ov", ())),
            order_items=record.get("oi", 0),
            campaign=record.get("cmp"),
            ad_id=record.get("ad"),
            new_identity=Identity(**new_identity) if new_identity is not None else None,
            name=record.get("name"),
            username=record.get("user"),
            imported=bool(record.get("imp")),
            backfill=tuple(record["bf"]) if "bf" in record else None,
        )


@dataclass(slots=True)
class OutboundMessage:
    """What we know of one message we sent: how far it got, and when we first saw it."""

    message_id: str
    at: int
    rank: int = 0
    failed: bool = False
    campaign: str | None = None
    error_code: int | None = None
    phone_number_id: str | None = None  # the business number it went from


@dataclass(frozen=True, slots=True)
class Item:
    """One parsed event with the person it concerns and, transiently, the text to scan for signals."""

    identity: Identity | None
    event: Event
    text: str | None = None

    @classmethod
    def of(cls, identity: Identity | None, event: Event, text: str | None = None) -> Item:
        """An item whose event carries the profile name and username that came with it."""
        if identity is not None and (identity.name or identity.username):
            event = replace(event, name=identity.name, username=identity.username)
        return cls(identity, event, text)
