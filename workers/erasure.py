"""Erasure of one customer (GDPR Art. 17, LGPD Art. 18, PIPL Art. 47): `wapulse erase KEY` and
`DELETE /api/customers/KEY`.

In one write transaction: their events, aliases, outbound messages, tier history, follow-ups,
reminder deliveries and customer row are deleted; the archived bodies that hold only them are
deleted, and those that also hold others lose every element of theirs (`cloudapi.redact`), so a
rebuild brings nothing of them back; the report's day counts keep their messages as numbers with
no one behind them (`RetiredActivity`); and the erasure log keeps salted hashes of their
identifiers with the instant. Other customers' rows are not touched.

Bodies still waiting in the inbox, or delivered again later, are not searched now: as they are
processed, what they hold of them from before the erasure is left out (`without_the_erased`);
what they send after it makes a new customer.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections import Counter
from dataclasses import replace

from cloudapi.body import decode
from cloudapi.parse import parse_body
from cloudapi.redact import MIN_IDENTIFIER_LENGTH, naming, redact
from store import erasure as store
from store.batch import Delivery
from store.db import retry_on_conflict, write_transaction
from store.retention import keep_day_counts
from workers.context import Context
from workers.retention import DAY_S, message_counts
from workers.settings import ConfigError, Settings


def erase_customer(context: Context, key_or_alias: str) -> store.Removed | None:
    """Erase the customer known by `key_or_alias`; None when no one is known by it."""
    secret, now = erasure_key(context.settings), context.now_ts()

    def run() -> store.Removed | None:  # identifiers are searched as written too: Meta escapes non-ASCII (\u00e9)
        with write_transaction(context.engine) as connection:
            who = store.person(connection, key_or_alias)
            if who is None:
                return None
            keep_day_counts(connection, _day_counts(connection, who))
            written = who.identifiers | {json.dumps(value)[1:-1] for value in who.identifiers if not value.isascii()}
            searched = [value for value in written if len(value) >= MIN_IDENTIFIER_LENGTH]  # short: by events
            bodies = {row.id: kept for row in store.bodies_naming(connection, who, searched)
                      if (kept := _without(row.body, row.valid_json, written)) is not UNCHANGED}
            removed = store.remove(connection, who, bodies)
            store.log(connection, {identifier_hash(secret, value) for value in who.identifiers}, now)
            return removed

    return retry_on_conflict(run)


def erasure_key(settings: Settings) -> str:
    """The key the erasure log's hashes are made with; ConfigError without one."""
    if not settings.secret_key:
        raise ConfigError("erasure needs WAPULSE_SECRET_KEY (make run writes one into .env): the erasure log keeps "
                          "the identifiers only as hashes salted with it")
    return settings.secret_key


def identifier_hash(secret: str, identifier: str) -> str:
    """How the erasure log names an identifier: HMAC-SHA256 keyed with the deployment's secret,
    so the log alone (a backup, a leak) cannot be matched against a list of numbers."""
    return hmac.new(secret.encode(), identifier.strip().lstrip("+").encode(), hashlib.sha256).hexdigest()


def _day_counts(connection, who: store.Person) -> Counter:
    """Their messages and ours to them, per UTC day, business number and content kind: what the
    report's day counts keep of them."""
    owner = who.owner or ""
    counts = message_counts((owner, at, signals, number)
                            for at, signals, number in store.messages_of(connection, who.id))
    for at, number in store.sent_to(connection, who.id):
        counts[(at - at % DAY_S, number or "", owner, "out", "sent")] += 1
    return counts


def without_the_erased(connection, deliveries: list[Delivery], secret: str | None) -> list[Delivery]:
    """The deliveries without the items of anyone erased after the item's instant: a body Meta
    delivers again (it retries for up to 7 days), or an old recording replayed, must not make
    them a customer again, nor be archived with them in it; what they send after the erasure
    starts a new customer. Items are matched by the erasure log's hashes."""
    if not secret or not store.any_erased(connection):
        return deliveries
    hashes = {delivery.delivery_id: [[identifier_hash(secret, value) for value in _identifiers(item)]
                                     for item in delivery.items] for delivery in deliveries}
    erased = store.erased_at(connection, {h for per_item in hashes.values() for item in per_item for h in item})
    if not erased:
        return deliveries
    kept = []
    for delivery in deliveries:
        theirs, items = set(), []
        for item, item_hashes in zip(delivery.items, hashes[delivery.delivery_id]):
            if any(erased.get(h, -1) >= item.event.at for h in item_hashes):
                theirs.update(_identifiers(item))
            else:
                items.append(item)
        if not theirs:
            kept.append(delivery)
            continue
        theirs |= {f"+{value}" for value in theirs if value.isdigit()}
        body = _without(delivery.body, delivery.valid_json, frozenset(theirs))
        if body is None:
            continue  # nothing in it but them: acknowledged, and not archived again
        if body is UNCHANGED:
            body = delivery.body
        kept.append(replace(delivery, body=body, sha256=hashlib.sha256(body).hexdigest(), items=tuple(items)))
    return kept


def _identifiers(item) -> list[str]:
    identity = item.identity
    if identity is None:
        return []
    return [value for value in (identity.wa_id, identity.user_id, identity.parent_user_id, identity.username) if value]


UNCHANGED = object()  # a body found by the archive's byte search that does not name them after all


def _without(body: bytes, valid_json: bool, identifiers: frozenset[str]) -> bytes | object | None:
    """A body without them; None when nothing of anyone else is left in it, or when it is a dead
    letter naming them (it cannot be taken apart, so it goes); UNCHANGED when it does not name
    them (a number of theirs inside someone else's longer number, say)."""
    if not valid_json:
        pattern = naming(identifiers)
        return None if pattern is not None and re.search(pattern.pattern.encode(), body) else UNCHANGED
    try:
        document = decode(body)
    except ValueError:
        return None
    kept = redact(document, identifiers)
    if kept == document:
        return UNCHANGED
    if not parse_body(kept, 0).items:
        return None
    return json.dumps(kept, separators=(",", ":")).encode()  # ASCII: every value JSON allows, as Meta writes it
