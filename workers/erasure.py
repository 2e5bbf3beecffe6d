"""Erasure of one customer (GDPR Art. 17, LGPD Art. 18, PIPL Art. 47): `wapulse erase KEY` and
`DELETE /api/customers/KEY`.

In one write transaction: their events, aliases, outbound messages, tier history, follow-ups,
reminder deliveries and customer row are deleted; the archived bodies that hold only them are
deleted, and those that also hold others lose every element of theirs (`cloudapi.redact`), so a
rebuild brings nothing of them back; the report's day counts keep their messages as numbers with
no one behind them (`ErasedActivity`); and the erasure log keeps salted hashes of their
identifiers with the instant. Other customers' rows are not touched.

Bodies still waiting in the inbox are not searched: one that names them after the erasure makes
a new customer, as any later webhook from the same number does.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections import Counter
from dataclasses import dataclass

from cloudapi.body import decode
from cloudapi.parse import parse_body
from cloudapi.redact import redact
from report.figures import content_kind
from store import erasure as store
from store.db import retry_on_conflict, write_transaction
from workers.context import Context
from workers.settings import ConfigError, Settings

DAY_S = 86_400


@dataclass(frozen=True)
class Erased:
    events: int
    bodies_deleted: int
    bodies_redacted: int
    tier_changes: int
    reminders: int


def erase_customer(context: Context, key_or_alias: str) -> Erased | None:
    """Erase the customer known by `key_or_alias`; None when no one is known by it."""
    secret, now = erasure_key(context.settings), context.now_ts()

    def run() -> Erased | None:
        with write_transaction(context.engine) as connection:
            who = store.person(connection, key_or_alias)
            if who is None:
                return None
            store.keep_activity(connection, _day_counts(connection, who))
            bodies = {row.id: _without(row.body, row.valid_json, who.identifiers)
                      for row in store.bodies_naming(connection, who)}
            removed = store.remove(connection, who, bodies)
            store.log(connection, {identifier_hash(secret, value) for value in who.identifiers}, now)
            return Erased(removed.events, removed.bodies_deleted, removed.bodies_redacted, removed.tier_changes,
                          removed.reminders)

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
    owner, counts = who.owner or "", Counter()
    for at, signals, number in store.messages_of(connection, who.id):
        counts[(at - at % DAY_S, number or "", owner, "in", content_kind(frozenset(signals)))] += 1
    for at, number in store.sent_to(connection, who.id):
        counts[(at - at % DAY_S, number or "", owner, "out", "sent")] += 1
    return counts


def _without(body: bytes, valid_json: bool, identifiers: frozenset[str]) -> bytes | None:
    """A body without them, or None when nothing of anyone else is left in it (or it is a dead
    letter that cannot be taken apart: it names them, so it goes)."""
    if not valid_json:
        return None
    try:
        kept = redact(decode(body), identifiers)
    except ValueError:
        return None
    if not parse_body(kept, 0).items:
        return None
    return json.dumps(kept, separators=(",", ":")).encode()  # ASCII: every value JSON allows, as Meta writes it
