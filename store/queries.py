"""Read side: customers as the CLI and the API show them (PRODUCT.md §6); archive retention."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Iterator

from sqlalchemy import Engine, delete, select

from scoring.customer import CustomerState
from store.db import write_transaction
from store.models import Customer, CustomerAlias, RawBody

customers, aliases = Customer.__table__, CustomerAlias.__table__


def iso(at: int | None) -> str | None:
    """Unix seconds as ISO-8601 UTC with a Z, or None."""
    if at is None:
        return None
    return datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")


def customer_view(row) -> dict:
    """One customer as JSON-ready data, in the shape PRODUCT.md §6 promises."""
    state = CustomerState.from_json(row.state)
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
            "interactions_by_week": {week: count for week, (count, _) in sorted(state.weeks.items())},
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


def list_customers(engine: Engine) -> Iterator[dict]:
    """Every customer, most recently active first."""
    query = select(customers).order_by(customers.c.last_inbound_at.desc().nulls_last(), customers.c.key)
    with engine.connect() as connection:
        for row in connection.execute(query):
            yield customer_view(row)


def find_customer(engine: Engine, key_or_alias: str) -> dict | None:
    """A customer by key or by any identifier it has had (wa_id with or without +, BSUID, username)."""
    value = key_or_alias.strip()
    with engine.connect() as connection:
        row = connection.execute(select(customers).where(customers.c.key == value)).first()
        if row is None:
            owner = connection.execute(
                select(aliases.c.customer_id).where(aliases.c.value.in_({value, value.lstrip("+")})).limit(1)
            ).scalar()
            if owner is not None:
                row = connection.execute(select(customers).where(customers.c.id == owner)).first()
    return customer_view(row) if row is not None else None


def purge_raw_bodies(engine: Engine, received_before_ms: int) -> int:
    """Delete archived bodies received before the instant; events and customers stay as they are."""
    raw_bodies = RawBody.__table__
    with write_transaction(engine) as connection:
        return connection.execute(delete(raw_bodies).where(raw_bodies.c.received_at < received_before_ms)).rowcount


def dead_letters(engine: Engine) -> list[dict]:
    """Archived bodies that produced no events: not JSON, or failing to process (with the reason)."""
    raw_bodies = RawBody.__table__
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
