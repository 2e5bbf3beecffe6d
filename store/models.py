"""Tables. Events are the source of truth next to the raw archive; customer rows are derived."""

from __future__ import annotations

from typing import Optional

from sqlalchemy import (
    JSON, BigInteger, Boolean, Column, ForeignKey, ForeignKeyConstraint, Index, Integer, LargeBinary, UniqueConstraint, false, text,
)
from sqlmodel import Field, SQLModel

BIG_ID = BigInteger().with_variant(Integer, "sqlite")  # SQLite only autoincrements INTEGER keys


class RawBody(SQLModel, table=True):
    """Every accepted webhook body, byte for byte, one row per delivery (audit, replay, rebuild)."""

    __tablename__ = "raw_body"

    id: Optional[int] = Field(default=None, sa_column=Column(BIG_ID, primary_key=True, autoincrement=True))
    delivery_id: str = Field(unique=True, max_length=64)  # the inbox stream entry it came from
    received_at: int = Field(index=True, sa_type=BigInteger)  # Unix milliseconds
    sha256: str = Field(index=True, max_length=64)
    valid_json: bool = True  # False: dead letter, kept for inspection and never processed
    error: Optional[str] = Field(default=None, max_length=255)  # set: a dead letter that failed processing
    body: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class EventRow(SQLModel, table=True):
    """One parsed event, stored once under its natural idempotency key, without message text."""

    __tablename__ = "event"
    __table_args__ = (Index("ix_event_customer_at", "customer_id", "at"),
                      Index("ix_event_backfill", "phone_number_id", postgresql_where=text("kind = 'backfill'"),
                            sqlite_where=text("kind = 'backfill'")))

    id: Optional[int] = Field(default=None, sa_column=Column(BIG_ID, primary_key=True, autoincrement=True))
    key: str = Field(unique=True, max_length=255)
    customer_id: Optional[int] = Field(default=None, foreign_key="customer.id")
    raw_body_id: Optional[int] = Field(default=None, sa_column=Column(BigInteger))
    phone_number_id: Optional[str] = Field(default=None, max_length=64)
    kind: str = Field(max_length=16)
    type: str = Field(max_length=64)
    at: int = Field(index=True, sa_type=BigInteger)
    message_id: Optional[str] = Field(default=None, index=True, max_length=255)  # our message, for statuses and echoes
    data: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class Customer(SQLModel, table=True):
    """One person across wa_id, BSUID, parent BSUID and username, and what their events add up to."""

    __tablename__ = "customer"

    id: Optional[int] = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=255)
    wa_id: Optional[str] = Field(default=None, max_length=32)
    user_id: Optional[str] = Field(default=None, max_length=160)
    parent_user_id: Optional[str] = Field(default=None, max_length=160)
    username: Optional[str] = Field(default=None, max_length=160)
    name: Optional[str] = Field(default=None, max_length=255)
    country: Optional[str] = Field(default=None, max_length=2)
    timezone: Optional[str] = Field(default=None, max_length=64)
    phone_number_id: Optional[str] = Field(default=None, max_length=64)
    first_seen_at: Optional[int] = Field(default=None, sa_type=BigInteger)
    last_inbound_at: Optional[int] = Field(default=None, index=True, sa_type=BigInteger)
    last_outbound_at: Optional[int] = Field(default=None, sa_type=BigInteger)
    opted_out: bool = False
    unreachable: bool = False
    interactions: int = 0  # inbound messages in all: with last_inbound_at and unreachable, all a tier needs
    tier: Optional[str] = Field(default=None, index=True, max_length=16)
    tier_since: Optional[int] = Field(default=None, sa_type=BigInteger)
    next_tier_at: Optional[int] = Field(default=None, index=True, sa_type=BigInteger)  # when time alone moves the tier
    state: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    checkpoint: Optional[dict] = Field(default=None, sa_column=Column(JSON, nullable=True))  # scoring.tiers.Checkpoint
    floor: Optional[dict] = Field(default=None, sa_column=Column(JSON, nullable=True))  # scoring.tiers.Floor (retention)
    floor_through: Optional[int] = Field(default=None, sa_type=BigInteger)  # its instant: older events are past retention
    owner: Optional[str] = Field(default=None, index=True, max_length=64)  # the rep ([[reps]] id) who follows them up
    awaiting_reply_since: Optional[int] = Field(default=None, sa_type=BigInteger)  # their first message we left unanswered
    question_since: Optional[int] = Field(default=None, sa_type=BigInteger)  # ... of those, the first that asks
    next_reminder_at: Optional[int] = Field(default=None, index=True, sa_type=BigInteger)  # unanswered, window_closing
    # what the desk sorts by, kept by workers.figures (None in figures_at: to be worked out again)
    churn_risk: Optional[int] = Field(default=None, index=True)
    intent: Optional[int] = Field(default=None, index=True)
    expected_orders: Optional[float] = Field(default=None, index=True)  # in the next 90 days
    figures_at: Optional[int] = Field(default=None, index=True, sa_type=BigInteger)
    # the inbox position of the last batch that wrote them (workers.inbox.position; None: not
    # from the inbox): their reminders wait until every body up to it is committed
    written_through: Optional[int] = Field(default=None, sa_type=BigInteger)
    search_name: Optional[str] = Field(default=None, max_length=255)  # the name as the desk's search compares it
    # raised by every write of what a fold reads (state, tier, aliases, events, outbound messages,
    # tier history): a batch that folded them from an older revision plans them again
    revision: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


class CustomerAlias(SQLModel, table=True):
    """Every identifier a customer has been seen with; any of them finds the customer."""

    __tablename__ = "customer_alias"

    kind: str = Field(primary_key=True, max_length=16)  # wa_id, user_id, parent_user_id, username
    value: str = Field(primary_key=True, max_length=160)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    first_at: int = Field(sa_type=BigInteger)  # earliest event time it was seen at: decides the customer's key


class OutboundMessageRow(SQLModel, table=True):
    """Our messages as their statuses reported them: rank only ever rises; failed is apart."""

    __tablename__ = "outbound_message"

    message_id: str = Field(primary_key=True, max_length=255)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    at: int = Field(sa_type=BigInteger)
    rank: int = 0
    failed: bool = False
    error_code: Optional[int] = None
    campaign: Optional[str] = Field(default=None, max_length=512)
    phone_number_id: Optional[str] = Field(default=None, max_length=64)  # the business number it went from


class TierChangeRow(SQLModel, table=True):
    """A customer's tier history: derived from their events and the clock, kept for reports and
    reminders; `at` is when the threshold was crossed, whoever noticed it."""

    __tablename__ = "tier_change"
    __table_args__ = (Index("ix_tier_change_customer_at", "customer_id", "at"),
                      Index("ix_tier_change_unplanned", "customer_id", postgresql_where=text("NOT planned"),
                            sqlite_where=text("NOT planned")))

    id: Optional[int] = Field(default=None, sa_column=Column(BIG_ID, primary_key=True, autoincrement=True))
    customer_id: int = Field(foreign_key="customer.id")
    from_tier: Optional[str] = Field(default=None, max_length=16)
    to_tier: str = Field(max_length=16)
    at: int = Field(index=True, sa_type=BigInteger)
    cause: str = Field(max_length=16)
    planned: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, server_default=false()))


class Reminder(SQLModel, table=True):
    """One reminder owed to one rep for one crossing; the id is the crossing's idempotency key
    (scoring.reminders.reminder_id), so a crossing derived twice is owed once. In the desk it is a
    follow-up: open until its rep is done with it (or the customer's behaviour settles it),
    snoozed until a given instant."""

    __tablename__ = "reminder"
    __table_args__ = (Index("ix_reminder_rep_state", "rep", "state"),)

    id: str = Field(primary_key=True, max_length=32)
    rep: str = Field(primary_key=True, max_length=64)
    # deferrable: a rebuild deletes customers and points their follow-ups at the new rows (0012)
    customer_id: int = Field(sa_column=Column(Integer, ForeignKey("customer.id", deferrable=True, initially="IMMEDIATE"),
                                              nullable=False, index=True))
    rule: str = Field(max_length=32)
    at: int = Field(index=True, sa_type=BigInteger)  # the crossing's instant
    created_at: int = Field(sa_type=BigInteger)
    content: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))  # what the rep is told
    state: str = Field(default="open", max_length=16)  # open, snoozed, closed (scoring.followups.State)
    snoozed_until: Optional[int] = Field(default=None, index=True, sa_type=BigInteger)
    closed_at: Optional[int] = Field(default=None, sa_type=BigInteger)
    closed_by: Optional[str] = Field(default=None, max_length=64)  # the rep who closed it; None: wapulse
    close_reason: Optional[str] = Field(default=None, max_length=16)  # done, replied, came_back, reassigned...


class ReminderAction(SQLModel, table=True):
    """What was done about a follow-up, by whom (None: wapulse itself) and when: shown on the
    customer's page."""

    __tablename__ = "reminder_action"
    __table_args__ = (ForeignKeyConstraint(["reminder_id", "rep"], ["reminder.id", "reminder.rep"]),
                      Index("ix_reminder_action_reminder", "reminder_id", "rep"))

    id: Optional[int] = Field(default=None, sa_column=Column(BIG_ID, primary_key=True, autoincrement=True))
    reminder_id: str = Field(max_length=32)
    rep: str = Field(max_length=64)
    actor: Optional[str] = Field(default=None, max_length=64)
    action: str = Field(max_length=16)  # scoring.followups.Action
    at: int = Field(sa_type=BigInteger)
    detail: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class ReminderDelivery(SQLModel, table=True):
    """A reminder on one of its rep's channels: sent at most once, whatever retries or races."""

    __tablename__ = "reminder_delivery"
    __table_args__ = (
        UniqueConstraint("reminder_id", "rep", "channel", "wave", name="uq_reminder_delivery_channel"),
        ForeignKeyConstraint(["reminder_id", "rep"], ["reminder.id", "reminder.rep"]),
        Index("ix_reminder_delivery_status_due", "status", "due_at"),
    )

    id: Optional[int] = Field(default=None, sa_column=Column(BIG_ID, primary_key=True, autoincrement=True))
    reminder_id: str = Field(max_length=32)
    rep: str = Field(max_length=64)
    channel: str = Field(max_length=32)  # the rep's channel label: webhook, slack, email#2
    status: str = Field(max_length=16)  # pending, sending, sent, failed
    due_at: int = Field(sa_type=BigInteger)  # not before: quiet hours, a daily digest and backoff move it
    held: bool = False  # it waited for quiet hours or a digest: goes out with the rest held for that channel
    attempts: int = 0
    last_error: Optional[str] = Field(default=None, max_length=255)
    sent_at: Optional[int] = Field(default=None, sa_type=BigInteger)
    wave: int = 0  # 0 when first owed; one more each time a snooze ends and the reminder goes out again


class RepAccount(SQLModel, table=True):
    """A rep's password for the desk (`wapulse reps password`); who the reps are is wapulse.toml's."""

    __tablename__ = "rep_account"

    rep: str = Field(primary_key=True, max_length=64)
    password_hash: str = Field(max_length=255)
    password_set_at: int = Field(sa_type=BigInteger)  # a session from before it is no longer valid


class SignInLink(SQLModel, table=True):
    """A one-time sign-in link (`wapulse reps link`): good once, until it expires."""

    __tablename__ = "sign_in_link"

    nonce: str = Field(primary_key=True, max_length=64)
    rep: str = Field(index=True, max_length=64)
    created_at: int = Field(sa_type=BigInteger)
    expires_at: int = Field(sa_type=BigInteger)
    used_at: Optional[int] = Field(default=None, sa_type=BigInteger)


class FigureBase(SQLModel, table=True):
    """What customers are ranked against, worked out over the whole base by workers.figures and
    kept here so that pages read it instead of working it out: `rfm` (the sorted values of the
    base) and `model` (the fitted value model)."""

    __tablename__ = "figure_base"

    name: str = Field(primary_key=True, max_length=16)
    computed_at: int = Field(sa_type=BigInteger)
    data: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class Erasure(SQLModel, table=True):
    """The erasure log: that a person was erased and when. Who it was is kept only as salted
    hashes of their identifiers (HMAC-SHA256 with WAPULSE_SECRET_KEY), which answer "was this
    number erased?" for someone who has the number and the key, and nothing else."""

    __tablename__ = "erasure"

    id: Optional[int] = Field(default=None, sa_column=Column(BIG_ID, primary_key=True, autoincrement=True))
    identifier_hash: str = Field(index=True, max_length=64)
    erased_at: int = Field(sa_type=BigInteger)


class RetiredActivity(SQLModel, table=True):
    """What deleted events leave behind for the activity report (erased customers' messages, and
    events past `[retention] events_days`): how many messages were exchanged, per UTC day,
    business number, owner, direction and content kind, added up, with no identity and no time
    finer than the day."""

    __tablename__ = "retired_activity"

    day: int = Field(primary_key=True, sa_type=BigInteger)  # Unix seconds of the UTC midnight
    phone_number_id: str = Field(primary_key=True, max_length=64)  # "" when the events named none
    owner: str = Field(primary_key=True, max_length=64)  # the rep who owned them then, "" for none
    direction: str = Field(primary_key=True, max_length=8)  # "in": theirs, "out": ours
    kind: str = Field(primary_key=True, max_length=16)  # a report content kind for "in", "sent" for "out"
    messages: int = 0
