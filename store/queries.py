"""Read side: customers as the CLI and the API show them, dead letters."""

from __future__ import annotations

from decimal import Decimal


from sqlalchemy import Connection, Engine, func, select

from scoring import figures
from scoring.customer import CustomerState
from scoring.events import EventKind, iso
from store.figure_base import Base, current_base, load_base
from store.history import tier_changes
from store.reminders import delivery_rows
from store.models import Customer, CustomerAlias, EventRow, RawBody

customers, aliases, raw_bodies = Customer.__table__, CustomerAlias.__table__, RawBody.__table__


def customer_view(row, state: CustomerState, base: Base) -> dict:
    """One customer as JSON-ready data, in the shape the README documents."""
    return {
        "key": row.key,
        "wa_id": row.wa_id,
        "user_id": row.user_id,
        "parent_user_id": row.parent_user_id,
        "username": row.username,
        "name": row.name,
        "country": row.country,
        "timezone": row.timezone,
        "phone_number_id": row.phone_number_id,
        "first_seen_at": iso(row.first_seen_at),
        "last_inbound_at": iso(row.last_inbound_at),
        "last_outbound_at": iso(row.last_outbound_at),
        "tier": row.tier,
        "owner": row.owner,
        "tier_since": iso(row.tier_since),
        "next_tier_at": iso(row.next_tier_at),
        **base.figures(state, row.unreachable),
        "counters": {
            "inbound": state.inbound,
            "outbound": state.outbound,
            "delivered": state.delivered,
            "read": state.read,
            "played": state.played,
            "failed": state.failed,
            "replies": state.replies,
            "inbound_by_type": dict(sorted(state.inbound_by_type.items())),
            "active_days": state.active_days,
            "interactions_by_week": state.interactions_by_week(),
            "reply_latency_avg_s": _average(state.reply_latency_total, state.replies),
            "our_response_time_avg_s": _average(state.response_time_total, state.our_responses),
            "opt_outs": state.opt_outs,
            "opt_ins": state.opt_ins,
        },
        "signals": dict(sorted(state.signals.items())),
        "last_signals": state.last_signals,
        "last_signals_at": iso(state.last_signals_at),
        "ad_ids": state.ad_ids,
        "orders": {
            "count": state.orders,
            "items": state.order_items,
            "value": {currency: Decimal(amount) for currency, amount in sorted(state.order_value.items())},
        },
        "errors": dict(sorted(state.errors.items())),
        "awaiting_reply_since": iso(state.awaiting_reply_since),
        "opted_out": row.opted_out,
        "unreachable": row.unreachable,
    }


def _average(total: int, count: int) -> float | None:
    return round(total / count, 1) if count else None


def list_customers(engine: Engine, now: int, rules: figures.FigureRules, tier: str | None = None) -> list[dict]:
    """Every customer (or those of one tier), most recently active first, with figures as of `now`."""
    query = select(customers).order_by(customers.c.last_inbound_at.desc().nulls_last(), customers.c.key)
    with engine.connect() as connection:
        rows = connection.execute(query).all()
        kept = load_base(connection, rules)
    states = [CustomerState.from_json(row.state) for row in rows]
    base = kept.at(now) if kept is not None else Base.of(states, now, rules)
    return [customer_view(row, state, base) for row, state in zip(rows, states) if tier is None or row.tier == tier]


def find_customer(engine: Engine, key_or_alias: str, now: int, rules: figures.FigureRules) -> dict | None:
    """A customer by key or by any identifier it has had (wa_id with or without +, BSUID,
    username), with their tier history, oldest first."""
    with engine.connect() as connection:
        customer_id = customer_id_for(connection, key_or_alias)
        if customer_id is None:
            return None
        row = connection.execute(select(customers).where(customers.c.id == customer_id)).one()
        view = customer_view(row, CustomerState.from_json(row.state), current_base(connection, now, rules))
        view["tier_history"] = tier_history(connection, row.id)
        view["reminders"] = [reminder_view(delivery) for delivery in delivery_rows(connection, customer_id=row.id)]
    return view


def customer_id_for(connection: Connection, key_or_alias: str) -> int | None:
    """Whom a key, or any identifier a customer has had (wa_id with or without +, BSUID,
    username), names."""
    value = key_or_alias.strip()
    found = connection.execute(select(customers.c.id).where(customers.c.key == value)).scalar()
    if found is None:
        found = connection.execute(select(aliases.c.customer_id)
                                   .where(aliases.c.value.in_({value, value.lstrip("+")})).limit(1)).scalar()
    return found


def reminder_view(row) -> dict:
    """One delivery of a reminder, as `wapulse reminders` and the customer card show it."""
    return {
        "delivery": row.id, "reminder": row.reminder_id, "rule": row.rule, "at": iso(row.at), "rep": row.rep,
        "channel": row.channel, "status": row.status, "attempts": row.attempts, "last_error": row.last_error,
        "due_at": iso(row.due_at), "held": row.held, "sent_at": iso(row.sent_at),
        "customer": row.content["customer"]["key"],
    }


def tier_history(connection: Connection, customer_id: int) -> list[dict]:
    query = (
        select(tier_changes)
        .where(tier_changes.c.customer_id == customer_id)
        .order_by(tier_changes.c.at, tier_changes.c.id)
    )
    return [
        {"from": row.from_tier, "to": row.to_tier, "at": iso(row.at), "cause": row.cause}
        for row in connection.execute(query)
    ]


def dead_letters(engine: Engine) -> list[dict]:
    """Archived bodies that produced no events: not JSON, or failing to process (with the reason)."""
    query = (
        select(raw_bodies.c.id, raw_bodies.c.delivery_id, raw_bodies.c.received_at, raw_bodies.c.sha256,
               raw_bodies.c.valid_json, raw_bodies.c.error)
        .where((raw_bodies.c.valid_json.is_(False)) | (raw_bodies.c.error.is_not(None)))
        .order_by(raw_bodies.c.id)
    )
    with engine.connect() as connection:
        return [
            {
                "id": row.id,
                "delivery_id": row.delivery_id,
                "received_at": iso(row.received_at // 1000),
                "sha256": row.sha256,
                "reason": row.error or "not JSON",
            }
            for row in connection.execute(query)
        ]


def backfills(connection: Connection) -> list[dict]:
    """How far each business number's history back-fill has come, from the progress reports of
    its chunks (Meta's `history` field): the furthest phase and progress, the chunks received and
    when the last one arrived. Empty for numbers that never had one."""
    events = EventRow.__table__
    found: dict[str, dict] = {}
    for number, at, data in connection.execute(select(events.c.phone_number_id, events.c.at, events.c.data)
                                               .where(events.c.kind == EventKind.BACKFILL.value)):
        phase, _, progress = data.get("bf", (0, 0, 0))
        seen = found.setdefault(number or "", {"number": number, "phase": 0, "progress": 0, "chunks": 0, "last_at": at})
        seen.update(phase=max(seen["phase"], phase), progress=max(seen["progress"], progress),
                    chunks=seen["chunks"] + 1, last_at=max(seen["last_at"], at))
    return [{**seen, "last_at": iso(seen["last_at"]), "last_at_ts": seen["last_at"], "done": seen["progress"] >= 100}
            for _, seen in sorted(found.items())]


def archived_bodies(connection: Connection, since_ms: int, until_ms: int | None, only: set[int] | None = None):
    """The archived bodies that are JSON, received in [since_ms, until_ms) (Unix ms), in the order
    they arrived, as bytes; only those whose ids are in `only` when given. Read in chunks."""
    last_id = 0
    while True:
        query = (select(raw_bodies.c.id, raw_bodies.c.body)
                 .where(raw_bodies.c.id > last_id, raw_bodies.c.valid_json.is_(True),
                        raw_bodies.c.received_at >= since_ms,
                        *([raw_bodies.c.received_at < until_ms] if until_ms is not None else []))
                 .order_by(raw_bodies.c.id).limit(500))
        rows = connection.execute(query).all()
        if not rows:
            return
        last_id = rows[-1].id
        yield from (bytes(row.body) for row in rows if only is None or row.id in only)


def bodies_of(connection: Connection, customer_id: int) -> set[int]:
    """The ids of the archived bodies that hold a customer's events."""
    events = EventRow.__table__
    return set(connection.execute(select(events.c.raw_body_id).where(
        events.c.customer_id == customer_id, events.c.raw_body_id.is_not(None)).distinct()).scalars())


def first_live_at(connection: Connection, wa_id: str, phone_number_id: str) -> int | None:
    """When the customer known by `wa_id` first had a message (theirs or ours) come live through
    this business number, rather than from a chat export or Meta's history back-fill (whose keys
    start `h:` and `o:h.`); None if never."""
    events = EventRow.__table__
    customer = select(aliases.c.customer_id).where(aliases.c.kind == "wa_id", aliases.c.value == wa_id)
    return connection.execute(select(func.min(events.c.at)).where(
        events.c.customer_id.in_(customer), events.c.phone_number_id == phone_number_id,
        events.c.kind.in_([EventKind.MESSAGE.value, EventKind.ECHO.value]),
        events.c.key.not_like("h:%"), events.c.key.not_like("o:h.%"))).scalar()
