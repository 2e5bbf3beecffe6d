"""A customer's counters and signals as a fold over their events, in event-time order.

Meta guarantees no ordering, so the fold is only ever fed events sorted by (at, key). The worker
applies new events incrementally when they all sort after the last one applied, and refolds the
customer from every stored event otherwise; both paths give the same state.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Iterable

import msgspec

from scoring.events import (
    MARKETING_OPT_OUT_ERROR,
    UNREACHABLE_ERROR,
    Event,
    EventKind,
    OutboundMessage,
    Status,
)

DELIVERED_RANK, READ_RANK, PLAYED_RANK = 2, 3, 4
OUTBOUND_ECHO_TYPES_THAT_ARE_NOT_MESSAGES = frozenset({"revoke", "edit"})


QUESTION_SIGNALS = frozenset({"question", "price_inquiry", "spec_question", "sample_request", "order_intent"})
"""Signals of a message that asks us something: left unanswered, it owes the rep a reminder."""
SIGNAL_LOG_LENGTH = 100  # the latest signal-bearing messages kept with their instants


def utc_day(at: int) -> str:
    """The UTC calendar day of a Unix time, as "2026-11-22"."""
    return datetime.fromtimestamp(at, UTC).date().isoformat()


def iso_week(day: str) -> str:
    """The ISO week label ("2026-W47") of a day written as utc_day writes it."""
    year, week, _ = date.fromisoformat(day).isocalendar()
    return f"{year}-W{week:02d}"


IDENTIFIER_KINDS = ("wa_id", "user_id", "parent_user_id")


def current_identifiers(aliases: list[tuple[str, str, int]], changed_to: dict[str, list]) -> dict[str, str]:
    """The identifier of each kind a customer goes by now, from their aliases (kind, value, first
    seen at): the one seen last, unless an identity change named another at that instant or
    later (a BSUID update brings the previous and the current BSUID at the same instant)."""
    current = {kind: (at, value) for kind, value, at in sorted(aliases, key=lambda alias: (alias[2], alias[1]))}
    known = {(kind, value) for kind, value, _ in aliases}
    for kind, (at, value) in changed_to.items():
        if (kind, value) in known and kind in current and at >= current[kind][0]:
            current[kind] = (at, value)
    return {kind: value for kind, (_, value) in current.items()}


def event_order(event: Event) -> tuple[int, str]:
    """The one order every fold uses: event time, then key to break ties deterministically."""
    return (event.at, event.key)


class CustomerState(msgspec.Struct, kw_only=True):
    """Everything derived from one customer's events. Stored as JSON, which the worker decodes
    straight into this struct and encodes straight from it (no dict in between)."""

    last_event_at: int | None = None
    last_event_key: str | None = None
    first_seen_at: int | None = None
    # who they are, as their latest events say
    name: str | None = None
    username: str | None = None
    phone_number_id: str | None = None  # the business number they last dealt with
    # what the customer did
    inbound: int = 0
    inbound_by_type: dict[str, int] = {}
    signals: dict[str, int] = {}
    days: dict[str, int] = {}  # UTC day -> interactions that day
    first_inbound_at: int | None = None
    last_inbound_at: int | None = None
    last_type: str | None = None  # the type of their last message (text, image, order...)
    last_signals: list[str] = []
    last_signals_at: int | None = None
    signal_log: list[list] = []  # [[at, [signals]], ...], latest SIGNAL_LOG_LENGTH
    ad_ids: list[str] = []
    # what we sent and how far it got
    outbound: int = 0
    delivered: int = 0
    read: int = 0
    played: int = 0
    failed: int = 0
    errors: dict[str, int] = {}
    first_outbound_at: int | None = None
    last_outbound_at: int | None = None
    last_outbound_campaign: str | None = None
    # the conversation's turns
    last_turn: str | None = None  # "in" or "out"
    awaiting_reply_since: int | None = None  # first customer message we have not answered
    question_since: int | None = None  # first unanswered message asking something (QUESTION_SIGNALS)
    replies: int = 0
    reply_latency_total: int = 0
    our_responses: int = 0
    response_time_total: int = 0
    # commerce
    orders: int = 0
    order_value: dict[str, str] = {}  # currency -> decimal string
    order_items: int = 0
    order_log: list[list] = []  # [[at, {currency: decimal string}], ...]
    # consent and reachability
    opt_outs: int = 0
    opt_ins: int = 0
    opted_out: bool = False
    consent_at: int | None = None
    last_unreachable_at: int | None = None
    # who they became: kind -> [at, value] of the identifier the latest identity change named
    changed_to: dict[str, list] = {}

    # ---- derived views -------------------------------------------------------------------

    @property
    def active_days(self) -> int:
        return len(self.days)

    def interactions_by_week(self) -> dict[str, int]:
        weeks: dict[str, int] = {}
        for day, count in sorted(self.days.items()):
            week = iso_week(day)
            weeks[week] = weeks.get(week, 0) + count
        return weeks

    @property
    def unreachable(self) -> bool:
        """Delivery failed with 131026 and the customer has not written since."""
        if self.last_unreachable_at is None:
            return False
        return self.last_inbound_at is None or self.last_unreachable_at > self.last_inbound_at

    def comes_after(self, event: Event) -> bool:
        """Whether `event` can be applied incrementally (it sorts after everything applied)."""
        if self.last_event_at is None:
            return True
        return event_order(event) > (self.last_event_at, self.last_event_key or "")

    # ---- serialisation -------------------------------------------------------------------

    def to_json(self) -> dict:
        return msgspec.to_builtins(self)

    @classmethod
    def from_json(cls, data: dict | None) -> CustomerState:
        return msgspec.convert(data, cls) if data else cls()

    def encode(self) -> str:
        return _encoder.encode(self).decode()

    @classmethod
    def decode(cls, text: str | bytes | None) -> CustomerState:
        return _decoder.decode(text) if text else cls()

    # ---- the fold ------------------------------------------------------------------------

    def apply(self, event: Event, outbound: dict[str, OutboundMessage]) -> None:
        """Apply one event that sorts after every event applied so far.

        `outbound` holds the outbound messages this event may refer to (the worker loads them
        from the store, a refold starts with none); it is updated in place.
        """
        self.last_event_at, self.last_event_key = event.at, event.key
        if self.first_seen_at is None or event.at < self.first_seen_at:
            self.first_seen_at = event.at
        self.name = event.name or self.name
        self.username = event.username or self.username
        self.phone_number_id = event.phone_number_id or self.phone_number_id
        handler = _HANDLERS.get(event.kind)
        if handler is not None:
            handler(self, event, outbound)

    def _on_identity(self, event: Event, outbound: dict[str, OutboundMessage]) -> None:
        """A number or BSUID change names what the customer is known as from now on."""
        for kind in IDENTIFIER_KINDS:
            if event.new_identity is not None and (value := getattr(event.new_identity, kind)):
                self.changed_to[kind] = [event.at, value]

    def _on_message(self, event: Event, outbound: dict[str, OutboundMessage]) -> None:
        self.inbound += 1
        self.last_type = event.type
        _bump(self.inbound_by_type, event.type)
        for signal in event.signals:
            _bump(self.signals, signal)
        if event.signals:
            self.last_signals, self.last_signals_at = list(event.signals), event.at
            self.signal_log = [*self.signal_log[1 - SIGNAL_LOG_LENGTH :], [event.at, list(event.signals)]]
        _bump(self.days, utc_day(event.at))
        if self.first_inbound_at is None:
            self.first_inbound_at = event.at
        self.last_inbound_at = event.at
        if event.ad_id and event.ad_id not in self.ad_ids:
            self.ad_ids.append(event.ad_id)
        if event.order_value or event.type == "order":
            self.orders += 1
            self.order_items += event.order_items
            for currency, amount in event.order_value:
                total = Decimal(self.order_value.get(currency, "0")) + amount
                self.order_value[currency] = str(total)
            self.order_log.append([event.at, {currency: str(amount) for currency, amount in event.order_value}])
        if self.last_turn == "out":
            self.replies += 1
            self.reply_latency_total += event.at - (self.last_outbound_at or event.at)
        if self.awaiting_reply_since is None:
            self.awaiting_reply_since = event.at
        if self.question_since is None and QUESTION_SIGNALS.intersection(event.signals):
            self.question_since = event.at
        self.last_turn = "in"

    def _on_outbound_seen(self, event: Event, outbound: dict[str, OutboundMessage]) -> OutboundMessage:
        """Register our message on its first sighting: a new outbound turn of the conversation."""
        message = outbound.get(event.message_id)
        if message is not None:
            message.phone_number_id = message.phone_number_id or event.phone_number_id
            return message
        message = OutboundMessage(message_id=event.message_id, at=event.at, campaign=event.campaign,
                                  phone_number_id=event.phone_number_id)
        outbound[event.message_id] = message
        self.outbound += 1
        if self.first_outbound_at is None:
            self.first_outbound_at = event.at
        self.last_outbound_at = event.at
        self.last_outbound_campaign = event.campaign
        if self.last_turn == "in" and self.awaiting_reply_since is not None:
            self.our_responses += 1
            self.response_time_total += event.at - self.awaiting_reply_since
        self.awaiting_reply_since = self.question_since = None
        self.last_turn = "out"
        return message

    def _on_echo(self, event: Event, outbound: dict[str, OutboundMessage]) -> None:
        if event.type in OUTBOUND_ECHO_TYPES_THAT_ARE_NOT_MESSAGES or not event.message_id:
            return
        message = self._on_outbound_seen(event, outbound)
        self._raise_rank(message, 1)

    def _on_status(self, event: Event, outbound: dict[str, OutboundMessage]) -> None:
        if not event.message_id:
            return
        message = self._on_outbound_seen(event, outbound)
        if message.campaign is None and event.campaign is not None:
            message.campaign = event.campaign
        if event.type == Status.FAILED:
            self._on_failure(message, event)
        elif event.rank:
            self._raise_rank(message, event.rank)

    def _raise_rank(self, message: OutboundMessage, rank: int) -> None:
        if rank <= message.rank:
            return
        for level in range(message.rank + 1, rank + 1):
            if level == DELIVERED_RANK:
                self.delivered += 1
            elif level == READ_RANK:
                self.read += 1
            elif level == PLAYED_RANK:
                self.played += 1
        message.rank = rank

    def _on_failure(self, message: OutboundMessage, event: Event) -> None:
        if message.failed:
            return
        message.failed = True
        self.failed += 1
        code = event.error_codes[0] if event.error_codes else None
        message.error_code = code
        _bump(self.errors, str(code) if code is not None else "unknown")
        if UNREACHABLE_ERROR in event.error_codes:
            self.last_unreachable_at = max(self.last_unreachable_at or 0, event.at)
        if MARKETING_OPT_OUT_ERROR in event.error_codes:
            self._set_consent(opted_out=True, at=event.at)

    def _on_preference(self, event: Event, outbound: dict[str, OutboundMessage]) -> None:
        if event.type == "stop":
            self.opt_outs += 1
            self._set_consent(opted_out=True, at=event.at)
        elif event.type in ("resume", "signup"):
            self.opt_ins += 1
            self._set_consent(opted_out=False, at=event.at)

    def _set_consent(self, *, opted_out: bool, at: int) -> None:
        """`consent_at` is when the current choice was made: a second opt-out (another 131050
        bounce) does not move it, so it owes no second `unreachable` reminder."""
        if self.consent_at is None or (at >= self.consent_at and opted_out != self.opted_out):
            self.opted_out, self.consent_at = opted_out, at


_HANDLERS = {
    EventKind.IDENTITY: CustomerState._on_identity,
    EventKind.MESSAGE: CustomerState._on_message,
    EventKind.ECHO: CustomerState._on_echo,
    EventKind.STATUS: CustomerState._on_status,
    EventKind.PREFERENCE: CustomerState._on_preference,
}


_encoder, _decoder = msgspec.json.Encoder(), msgspec.json.Decoder(CustomerState)


def _bump(counter: dict[str, int], name: str) -> None:
    counter[name] = counter.get(name, 0) + 1


def fold(events: Iterable[Event]) -> tuple[CustomerState, dict[str, OutboundMessage]]:
    """A customer's state from scratch: every one of their events, in event order."""
    state, outbound = CustomerState(), {}
    for event in sorted(events, key=event_order):
        state.apply(event, outbound)
    return state, outbound



def combine(a: CustomerState, b: CustomerState) -> CustomerState:
    """One person's state from the folds of two disjoint sets of their events, when the events
    themselves are gone (retention keeps only a fold of the old ones: see scoring.tiers.Floor).
    Counts add up, first and last instants take the earlier and the later, and what describes the
    latest moment comes from the side whose events end later. Every count and instant is exact;
    the conversation's turns are taken within each side, so a reply whose message of ours is on
    the other side is not counted as a reply, and an open question is the earliest one either side
    left open after the later side's last message of ours."""
    later, earlier = (a, b) if _last(a) >= _last(b) else (b, a)
    last_out = _latest(a.last_outbound_at, b.last_outbound_at)
    inbound_side = a if (a.last_inbound_at or 0) >= (b.last_inbound_at or 0) else b
    signal_side = a if (a.last_signals_at or 0) >= (b.last_signals_at or 0) else b
    consent_side = a if (a.consent_at or -1) >= (b.consent_at or -1) else b
    awaiting = [since for side in (a, b) if side.last_turn == "in" and (since := _open_since(side.awaiting_reply_since,
                                                                                                 side.last_inbound_at, last_out))]
    questions = [side.question_since for side in (a, b)
                 if side.question_since is not None and (last_out is None or side.question_since > last_out)]
    order_value = {currency: str(Decimal(a.order_value.get(currency, "0")) + Decimal(b.order_value.get(currency, "0")))
                   for currency in sorted(a.order_value.keys() | b.order_value.keys())}
    return CustomerState(
        last_event_at=later.last_event_at, last_event_key=later.last_event_key,
        first_seen_at=_earliest(a.first_seen_at, b.first_seen_at),
        name=later.name or earlier.name, username=later.username or earlier.username,
        phone_number_id=later.phone_number_id or earlier.phone_number_id,
        inbound=a.inbound + b.inbound, inbound_by_type=_added(a.inbound_by_type, b.inbound_by_type),
        signals=_added(a.signals, b.signals), days=_added(a.days, b.days),
        first_inbound_at=_earliest(a.first_inbound_at, b.first_inbound_at),
        last_inbound_at=_latest(a.last_inbound_at, b.last_inbound_at), last_type=inbound_side.last_type,
        last_signals=list(signal_side.last_signals), last_signals_at=signal_side.last_signals_at,
        signal_log=sorted([*a.signal_log, *b.signal_log], key=lambda entry: entry[0])[-SIGNAL_LOG_LENGTH:],
        ad_ids=[*earlier.ad_ids, *(ad for ad in later.ad_ids if ad not in earlier.ad_ids)],
        outbound=a.outbound + b.outbound, delivered=a.delivered + b.delivered, read=a.read + b.read,
        played=a.played + b.played, failed=a.failed + b.failed, errors=_added(a.errors, b.errors),
        first_outbound_at=_earliest(a.first_outbound_at, b.first_outbound_at), last_outbound_at=last_out,
        last_outbound_campaign=(a if (a.last_outbound_at or 0) >= (b.last_outbound_at or 0) else b).last_outbound_campaign,
        last_turn="in" if awaiting else ("out" if last_out is not None else None),
        awaiting_reply_since=min(awaiting, default=None), question_since=min(questions, default=None),
        replies=a.replies + b.replies, reply_latency_total=a.reply_latency_total + b.reply_latency_total,
        our_responses=a.our_responses + b.our_responses, response_time_total=a.response_time_total + b.response_time_total,
        orders=a.orders + b.orders, order_value=order_value, order_items=a.order_items + b.order_items,
        order_log=sorted([*a.order_log, *b.order_log], key=lambda entry: entry[0]),
        opt_outs=a.opt_outs + b.opt_outs, opt_ins=a.opt_ins + b.opt_ins,
        opted_out=consent_side.opted_out, consent_at=consent_side.consent_at,
        last_unreachable_at=_latest(a.last_unreachable_at, b.last_unreachable_at),
        changed_to={kind: max(value for value in (a.changed_to.get(kind), b.changed_to.get(kind)) if value)
                    for kind in a.changed_to.keys() | b.changed_to.keys()},
    )


def _last(state: CustomerState) -> tuple[int, str]:
    return (state.last_event_at if state.last_event_at is not None else -1, state.last_event_key or "")


def _earliest(*instants: int | None) -> int | None:
    return min((at for at in instants if at is not None), default=None)


def _latest(*instants: int | None) -> int | None:
    return max((at for at in instants if at is not None), default=None)


def _added(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    return {name: a.get(name, 0) + b.get(name, 0) for name in sorted(a.keys() | b.keys())}


def _open_since(awaiting: int | None, last_inbound_at: int | None, last_out: int | None) -> int | None:
    """When one side's unanswered messages began, after the last message of ours on either side:
    its own start when that is later, else its last message (an earlier one of the run may be
    later still, but the side no longer says which)."""
    for since in (awaiting, last_inbound_at):
        if since is not None and (last_out is None or since > last_out):
            return since
    return None
