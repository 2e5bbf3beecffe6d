"""Erasure through the real worker, store and archive: Sheena Nelson, who shares a body with four
other customers, is erased; nothing of her is left anywhere, and nobody else changes."""

from __future__ import annotations

import hashlib
import hmac
import json
import re

import pytest
from sqlalchemy import select
from sqlmodel import SQLModel

from report.build import produce, request_of
from scoring.tiers import TierRules
from store import queries
from store.models import Erasure, RawBody
from tests.conftest import FIXTURES, reread_environment
from tests.workers.test_ingest import VIEW_NOW, hand_off_all, snapshot
from workers.context import installed
from workers.erasure import erase_customer
from workers.rebuild import rebuild
from workers.settings import ConfigError

SECRET = "erasure-test-secret-key-0123456789abcdef"
CLOUDAPI = FIXTURES / "cloudapi"
SHEENA = "16505551234"
TRACES = ["16505551234", "US.13491208655302741918", "@sheena.n", "Sheena Nelson", "Does it come in another color?",
          "Is the store open on Sunday?", "Here it is in olive"]
OTHERS_TEXTS = ["This one, size M", "Guten Morgen, ist meine Bestellung unterwegs?", "Bestellnummer 10443"]


def shared_body() -> bytes:
    """Sheena (with a username) and Priya in one change, Budi in a second, Max and Jean in a
    second entry."""
    body = json.loads((CLOUDAPI / "messages__mixed__multi_entry.json").read_bytes())
    body["entry"][0]["changes"][0]["value"]["contacts"][0]["profile"]["username"] = "@sheena.n"
    return json.dumps(body).encode()


def namesake() -> bytes:
    """A German customer whose number holds Sheena's: 49 16505551234."""
    return (CLOUDAPI / "messages__text.json").read_bytes().replace(b'"16505551234"', b'"4916505551234"').replace(
        b"US.13491208655302741918", b"DE.13491208655302741918").replace(b"wamid.HBgL", b"wamid.NAMESAKE").replace(
        b"Sheena Nelson", b"Max Muster").replace(b"Does it come in another color?", b"Gibt es das in Blau?")


def bodies() -> list[bytes]:
    alone = [(CLOUDAPI / name).read_bytes() for name in
             ("messages__text.json", "messages__status-delivered.json", "smb_message_echoes__image.json")]
    return [shared_body(), *alone, alone[0], namesake()]  # the text twice: the second body holds no new event


@pytest.fixture
def erasing(monkeypatch, env, redis, drain):
    monkeypatch.setenv("WAPULSE_SECRET_KEY", SECRET)
    monkeypatch.setenv("WAPULSE_NOW", "2026-11-30T12:00:00Z")
    reread_environment()
    hand_off_all(redis, bodies())
    redis.xadd("wapulse:inbox", {"b": b"not json, from 16505551234", "v": b"0"})  # a dead letter naming her
    drain()


def everything(engine) -> str:
    """Every value of every row of every table, the archive's bytes included, as one text."""
    parts = []
    with engine.connect() as connection:
        for table in SQLModel.metadata.sorted_tables:
            for row in connection.execute(select(table)):
                for value in row:
                    parts.append(value.decode("utf-8", "replace") if isinstance(value, bytes) else repr(value))
    return "\n".join(parts)


def without_ranks(cards: list[dict]) -> list[dict]:
    """Cards but their RFM score, which ranks each customer among all the others (one fewer now)."""
    return [{name: value for name, value in card.items() if name != "rfm"} for card in cards]


def named(trace: str, text: str) -> bool:
    """Whether `text` holds `trace`; a number only as a whole (her number inside the namesake's is his)."""
    return re.search(rf"(?<!\d){re.escape(trace)}(?!\d)", text) is not None


def past_report(engine) -> dict:
    asked = request_of({"from": "2026-11-01", "to": "2026-11-29", "compare": "none", "format": "json"},
                       VIEW_NOW, [], (), frozenset())
    return json.loads(produce(engine, asked, TierRules()))


def kept_counts(report: dict) -> tuple:
    """What the README says an erasure keeps of a past report: messages per week both ways, and
    messages by content kind with their shares."""
    sections = report["sections"] if "sections" in report else report
    return ([(week["from"], week["inbound"], week["outbound"]) for week in sections["trend"]],
            {kind: (figures["messages"], figures["share"]) for kind, figures in sections["content"].items()})


def test_erasing_a_customer_who_shares_bodies_leaves_nothing_of_her_and_changes_no_one_else(erasing, engine):
    assert all(named(trace, everything(engine)) for trace in TRACES)  # the test would see them
    others = [card for card in snapshot(engine) if card["wa_id"] != SHEENA]
    assert len(others) == 5
    report = past_report(engine)

    erased = erase_customer(installed(), "+" + SHEENA)

    assert erased is not None and erased.events > 0
    assert (erased.bodies_deleted, erased.bodies_redacted) == (5, 1)  # 4 hers alone, the dead letter; the shared one
    text = everything(engine)
    assert [trace for trace in TRACES if named(trace, text)] == []
    assert all(trace in text for trace in OTHERS_TEXTS)
    assert without_ranks(snapshot(engine)) == without_ranks(others)
    assert kept_counts(past_report(engine)) == kept_counts(report)
    assert queries.find_customer(engine, SHEENA, VIEW_NOW, installed().settings.figure_rules) is None
    with engine.connect() as connection:
        logged = connection.execute(select(Erasure.__table__.c.identifier_hash, Erasure.__table__.c.erased_at)).all()
        archived = connection.execute(select(RawBody.__table__.c.body).order_by(RawBody.__table__.c.id)).scalars().all()
    expected = hmac.new(SECRET.encode(), SHEENA.encode(), hashlib.sha256).hexdigest()
    assert expected in {value for value, _ in logged} and {at for _, at in logged} == {1_796_040_000}
    assert len(archived) == 2 and json.loads(archived[0])  # the shared body, still JSON
    assert archived[1] == namesake()  # a longer number that holds hers is someone else's: not touched

    assert erase_customer(installed(), SHEENA) is None  # no one is known by it any more


def test_a_rebuild_after_an_erasure_brings_nothing_back(erasing, engine):
    erase_customer(installed(), SHEENA)
    after = snapshot(engine)
    result = rebuild(installed())
    assert result.failed_bodies == 0
    assert snapshot(engine) == after
    assert not named(SHEENA, everything(engine))


def test_a_later_message_from_the_same_number_starts_a_new_customer(erasing, engine, redis, drain):
    erase_customer(installed(), "US.13491208655302741918")  # by BSUID
    later = (CLOUDAPI / "messages__text.json").read_bytes().replace(b"wamid.HBgL", b"wamid.LATER").replace(
        b"1794328383", b"1796100000")  # sent after the erasure (2026-11-30T12:00Z)
    hand_off_all(redis, [later])
    drain()
    card = queries.find_customer(engine, SHEENA, VIEW_NOW, installed().settings.figure_rules)
    assert card["counters"]["inbound"] == 1 and card["counters"]["outbound"] == 0


def test_what_she_sent_before_the_erasure_delivered_again_brings_nothing_back(erasing, engine, redis, drain):
    """Meta retries a webhook for up to 7 days, and an old recording may be replayed: her messages
    from before the erasure must not make her a customer again, nor count in the report."""
    report = past_report(engine)
    erase_customer(installed(), SHEENA)
    before = snapshot(engine)
    hand_off_all(redis, bodies())  # every body again, as Meta would retry them
    drain()
    assert snapshot(engine) == before
    assert queries.find_customer(engine, SHEENA, VIEW_NOW, installed().settings.figure_rules) is None
    assert kept_counts(past_report(engine)) == kept_counts(report)
    trace = everything(engine)  # nor are the bodies Meta sent again archived with her in them
    assert not [value for value in (SHEENA, "US.13491208655302741918", "Sheena Nelson") if named(value, trace)]


def test_erasure_without_a_secret_key_is_refused_and_changes_nothing(env, engine, monkeypatch):
    monkeypatch.delenv("WAPULSE_SECRET_KEY", raising=False)
    reread_environment()
    with pytest.raises(ConfigError, match="WAPULSE_SECRET_KEY"):
        erase_customer(installed(), SHEENA)


def test_a_username_meta_wrote_escaped_is_found_in_a_dead_letter_too(env, engine, redis, drain, monkeypatch):
    """Meta escapes non-ASCII (`\\u00e9`): a dead letter that names her so is found and deleted."""
    monkeypatch.setenv("WAPULSE_SECRET_KEY", SECRET)
    reread_environment()
    body = json.loads((CLOUDAPI / "messages__text.json").read_bytes())
    body["entry"][0]["changes"][0]["value"]["contacts"][0]["profile"]["username"] = "@josé.fina"
    written = json.dumps(body).encode()  # ensure_ascii: "@jos\\u00e9.fina", as Meta writes it
    assert b"@jos\\u00e9.fina" in written
    hand_off_all(redis, [written])
    redis.xadd("wapulse:inbox", {"b": b'{"cut short, from @jos\\u00e9.fina', "v": b"0"})
    drain()
    assert erase_customer(installed(), SHEENA) is not None
    assert not [body for (body,) in _bodies(engine) if b"jos\\u00e9" in body or "josé".encode() in body]


def _bodies(engine) -> list:
    with engine.connect() as connection:
        return connection.execute(select(RawBody.body)).all()
