"""Erasure of one customer (GDPR Art. 17, LGPD Art. 18, PIPL Art. 47): `wapulse erase KEY` and
`DELETE /api/customers/KEY`.

In one write transaction: their events, aliases, outbound messages, tier history, follow-ups,
reminder deliveries and customer row are deleted; the archived bodies that hold only them are
deleted, and those that also hold others lose every element of theirs (`cloudapi.redact`), so a
rebuild brings nothing of them back; the report's day counts keep their messages as numbers with
no one behind them (`RetiredActivity`); and the erasure log keeps salted hashes of their
identifiers with the instant. Other customers' rows are not touched.

Bodies still waiting in the inbox are not searched: one that names them after the erasure makes
a new customer, as any later webhook from the same number does.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections import Counter

from cloudapi.body import decode
from cloudapi.parse import parse_body
from cloudapi.redact import MIN_IDENTIFIER_LENGTH, naming, redact
from store import erasure as store
from store.db import retry_on_conflict, write_transaction
from store.retention import keep_day_counts
from workers.context import Context
from workers.retention import DAY_S, message_counts
from workers.settings import ConfigError, Settings


def erase_customer(context: Context, key_or_alias: str) -> store.Removed | None:
    """Erase the customer known by `key_or_alias`; None when no one is known by it."""
    secret, now = erasure_key(context.settings), context.now_ts()

    def run() -> store.Removed | None:
        with write_transaction(context.engine) as connection:
            who = store.person(connection, key_or_alias)
            if who is None:
                return None
            keep_day_counts(connection, _day_counts(connection, who))
            searched = [value for value in who.identifiers if len(value) >= MIN_IDENTIFIER_LENGTH]  # short: by events
            bodies = {row.id: kept for row in store.bodies_naming(connection, who, searched)
                      if (kept := _without(row.body, row.valid_json, who.identifiers)) is not UNCHANGED}
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
    counts = message_counts((owner, at, signals, number) for at, signals, number in store.messages_of(connection, who.id))
    for at, number in store.sent_to(connection, who.id):
        counts[(at - at % DAY_S, number or "", owner, "out", "sent")] += 1
    return counts


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
