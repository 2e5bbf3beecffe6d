"""Chat exports imported, and Meta's history back-fill of the same chats: through the real
worker path into SQLite and PostgreSQL, idempotently, each message counted once whichever source
told it first."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from store.models import EventRow, RawBody
from tests.workers.test_ingest import snapshot
from tests.workers.test_tiers import process, set_now
from wapulse.cli import main
from workers.context import installed
from workers.import_chat import import_chat
from workers.settings import ConfigError

NUMBER = "106540352242922"
MARTA = "34612345678"
MADRID = ZoneInfo("Europe/Madrid")
EXPORT = """12/03/2026, 10:00 - Messages and calls are end-to-end encrypted. No one outside of this chat, not even \
WhatsApp, can read or listen to them. Tap to learn more.
12/03/2026, 10:01 - Marta: Hola, ¿cuánto cuesta el modelo X?
12/03/2026, 10:05 - Ana Ruiz: Hola Marta, cuesta 120 €.
Te envío el catálogo.
12/03/2026, 10:06 - Ana Ruiz: <Media omitted>
13/03/2026, 09:15 - Marta: Missed voice call
14/03/2026, 18:40 - Marta: Perfecto, lo pido
"""
NOW = int(datetime(2026, 3, 20, tzinfo=MADRID).timestamp())


def utc(day: int, hour: int, minute: int, second: int = 0) -> int:
    return int(datetime(2026, 3, day, hour, minute, second, tzinfo=MADRID).timestamp())


def backfill(chunk_order: int, progress: int, messages: list[dict], phase: int = 1) -> bytes:
    """A `history` body as Meta sends one, for Marta's chat."""
    value = {"messaging_product": "whatsapp",
             "metadata": {"display_phone_number": "15550783881", "phone_number_id": NUMBER},
             "history": [{"metadata": {"phase": phase, "chunk_order": chunk_order, "progress": progress},
                          "threads": [{"id": MARTA, "messages": messages}]}]}
    return json.dumps({"object": "whatsapp_business_account",
                       "entry": [{"id": "102290129340398", "changes": [{"value": value, "field": "history"}]}]}).encode()


THEIRS = {"from": MARTA, "history_context": {"status": "READ"}}
OURS = {"from": "15550783881", "to": MARTA}
CHUNKS = [  # the same chat as Meta's back-fill tells it: ids, seconds, statuses; no missed calls
    backfill(1, 40, [{**THEIRS, "id": "wamid.m1", "timestamp": str(utc(12, 10, 1, 37)), "type": "text",
                      "text": {"body": "Hola, ¿cuánto cuesta el modelo X?"}},
                     {**OURS, "id": "wamid.o1", "timestamp": str(utc(12, 10, 5, 12)), "type": "text",
                      "text": {"body": "Hola Marta, cuesta 120 €.\nTe envío el catálogo."},
                      "history_context": {"status": "READ"}}]),
    backfill(2, 80, [{**OURS, "id": "wamid.o2", "timestamp": str(utc(12, 10, 6, 40)), "type": "media_placeholder",
                      "history_context": {"status": "DELIVERED"}}]),
    backfill(3, 100, [{**THEIRS, "id": "wamid.m2", "timestamp": str(utc(14, 18, 40, 5)), "type": "text",
                       "text": {"body": "Perfecto, lo pido"}}], phase=2),
]


@pytest.fixture
def export(tmp_path):
    path = tmp_path / "WhatsApp Chat with Marta.txt"
    path.write_text(EXPORT, encoding="utf-8")
    return path


def events(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(EventRow)).scalar_one()


def test_an_export_becomes_the_customers_history_and_a_second_import_changes_nothing(env, engine, export, monkeypatch):
    set_now(monkeypatch, NOW)
    done = import_chat(installed(), export, NUMBER, customer="+34 612 34 56 78")
    assert (done.customer, done.theirs, done.ours) == (MARTA, 3, 2)
    assert (done.first_at, done.last_at) == (utc(12, 10, 1), utc(14, 18, 40))
    [card] = snapshot(engine)
    counters = card["counters"]
    assert (counters["inbound"], counters["outbound"], counters["replies"]) == (3, 2, 1)  # the call answers us
    assert card["signals"].get("question") == 1 and card["last_inbound_at"].startswith("2026-03-14T17:40")
    assert card["country"] == "ES" and card["tier"] == "warm" and card["tier_history"]
    stored = events(engine)
    again = import_chat(installed(), export, NUMBER, customer=MARTA)
    assert again.new_events == 0 and events(engine) == stored and snapshot(engine) == [card]
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(RawBody)).scalar_one() == 1


@pytest.mark.parametrize("order", ["export first", "back-fill first"])
def test_the_export_and_the_back_fill_count_each_message_once_in_either_order(order, env, engine, redis, drain, export,
                                                                             monkeypatch):
    set_now(monkeypatch, NOW)
    chunks = [CHUNKS[2], CHUNKS[0], CHUNKS[2], CHUNKS[1]]  # out of order, one twice
    if order == "export first":
        import_chat(installed(), export, NUMBER, customer=MARTA)
        process(redis, drain, chunks)
    else:
        process(redis, drain, chunks)
        import_chat(installed(), export, NUMBER, customer=MARTA)
    [card] = snapshot(engine)
    assert (card["counters"]["inbound"], card["counters"]["outbound"]) == (3, 2)  # the missed call only in the export
    assert card["counters"]["read"] == 1  # the back-fill's statuses find our messages, whoever told them first
    with engine.connect() as connection:
        from store.queries import backfills
        assert backfills(connection) == [{"number": NUMBER, "phase": 2, "progress": 100, "chunks": 3, "done": True,
                                          "last_at": backfills(connection)[0]["last_at"],
                                          "last_at_ts": backfills(connection)[0]["last_at_ts"]}]


def test_a_line_that_cannot_be_read_is_refused_with_its_number_and_nothing_is_written(env, engine, tmp_path,
                                                                                      monkeypatch):
    set_now(monkeypatch, NOW)
    path = tmp_path / "chat.txt"
    path.write_text(EXPORT + "45/13/2026, 10:00 - Marta: hola\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="line 8: .45/13/2026, 10:00. is no date"):
        import_chat(installed(), path, NUMBER, customer=MARTA)
    assert events(engine) == 0


def test_the_command_imports_tells_what_and_the_report_counts_the_imported(env, engine, export, monkeypatch):
    set_now(monkeypatch, NOW)
    result = CliRunner().invoke(main, ["import-chat", str(export), "--number", NUMBER, "--customer", MARTA],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "customer +34612345678: 3 messages of theirs, 2 of ours" in result.output
    report = CliRunner().invoke(main, ["report", "--from", "2026-03-01", "--to", "2026-03-19", "--format", "json",
                                       "--compare", "none"], catch_exceptions=False)
    assert json.loads(report.output)["source"]["imported"] == {"from_customers": 3, "of_ours": 2}
    refused = CliRunner().invoke(main, ["import-chat", str(export), "--number", NUMBER])
    assert refused.exit_code != 0 and "give --customer" in refused.output


def test_the_back_fills_progress_shows_in_wapulse_customers_until_it_is_done(env, engine, redis, drain, monkeypatch):
    set_now(monkeypatch, NOW)
    process(redis, drain, [CHUNKS[1], CHUNKS[0]])
    listed = CliRunner().invoke(main, ["customers"], catch_exceptions=False).output
    assert f"history back-fill of {NUMBER}: under way, 80% (phase 1 of 0 to 2, 2 chunks" in listed
    process(redis, drain, [CHUNKS[2]])
    assert f"history back-fill of {NUMBER}: done, 100%" in CliRunner().invoke(main, ["customers"]).output


def live_message(wamid: str, at: int, body: str) -> bytes:
    """A message from Marta as the `messages` field brings it, live."""
    value = {"messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550783881", "phone_number_id": NUMBER},
             "contacts": [{"profile": {"name": "Marta"}, "wa_id": MARTA}],
             "messages": [{"from": MARTA, "id": wamid, "timestamp": str(at), "type": "text", "text": {"body": body}}]}
    return json.dumps({"object": "whatsapp_business_account",
                       "entry": [{"id": "102290129340398", "changes": [{"value": value, "field": "messages"}]}]}).encode()


def chat(tmp_path, text: str, name: str = "WhatsApp Chat with Marta.txt"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def inbound(engine) -> int:
    [card] = snapshot(engine)
    return card["counters"]["inbound"]


def test_an_export_made_after_wapulse_was_connected_skips_what_came_live(env, engine, redis, drain, tmp_path,
                                                                        monkeypatch):
    set_now(monkeypatch, NOW)
    process(redis, drain, [live_message("wamid.live1", utc(14, 18, 40, 5), "Perfecto, lo pido")])
    done = import_chat(installed(), chat(tmp_path, "12/03/2026, 10:01 - Marta: Hola\n12/03/2026, 10:05 - Ana Ruiz: Hola "
                                         "Marta\n14/03/2026, 18:40 - Marta: Perfecto, lo pido\n"), NUMBER, customer=MARTA)
    assert inbound(engine) == 2 and (done.theirs, done.ours, done.live) == (1, 1, 1)


def test_direction_marks_and_the_repeated_hour_of_a_clock_change_still_match_the_back_fill(env, engine, redis, drain,
                                                                                         tmp_path, monkeypatch):
    set_now(monkeypatch, int(datetime(2026, 11, 1, tzinfo=MADRID).timestamp()))
    text = "\u200fمرحبا، كم السعر؟"
    second = int(datetime(2026, 10, 25, 2, 10, 20, tzinfo=MADRID, fold=1).timestamp())  # the second 02:10 (CET)
    process(redis, drain, [backfill(1, 100, [
        {**THEIRS, "id": "wamid.rtl", "timestamp": str(utc(12, 10, 1, 37)), "type": "text", "text": {"body": text}},
        {**THEIRS, "id": "wamid.dst", "timestamp": str(second), "type": "text", "text": {"body": "dos"}}])])
    import_chat(installed(), chat(tmp_path, f"12/03/2026, 10:01 - Marta: {text}\n25/10/2026, 02:50 - Marta: uno\n"
                                  "25/10/2026, 02:10 - Marta: dos\n25/10/2026, 02:20 - Ana Ruiz: vale\n"), NUMBER,
                customer=MARTA)
    assert inbound(engine) == 3  # the Arabic text and "dos" once each, "uno" from the export only


@pytest.mark.parametrize("lines, name, options, expected", [
    ("12/03/2026, 10:01 - Marta: Hola\n13/03/2026, 09:15 - Marta: ¿Hola?\n", "WhatsApp Chat with Marta.txt",
     {"customer": MARTA}, (2, 0)),  # only the customer wrote: an unanswered lead
    ("12/03/2026, 10:01 - +34 612 34 56 78: Hola\n12/03/2026, 10:05 - Ana Ruiz: Hola\n",
     "WhatsApp Chat with +34 612 34 56 78 (1).txt", {"me": "Ana Ruiz"}, (1, 1)),  # a second download of the file
])
def test_who_is_who_in_an_export(lines, name, options, expected, env, engine, tmp_path, monkeypatch):
    set_now(monkeypatch, NOW)
    done = import_chat(installed(), chat(tmp_path, lines, name), NUMBER, **options)
    assert (done.customer, done.theirs, done.ours) == (MARTA, *expected)


def test_a_third_author_is_refused_rather_than_taken_for_either_side(env, engine, tmp_path, monkeypatch):
    set_now(monkeypatch, NOW)
    path = chat(tmp_path, "12/03/2026, 10:01 - Marta: Hola\n12/03/2026, 10:02 - Luis: ¿cuánto cuesta?\n"
                          "12/03/2026, 10:05 - Ana Ruiz: 120\n", "chat.txt")
    with pytest.raises(ConfigError, match="Luis"):
        import_chat(installed(), path, NUMBER, customer=MARTA, me="Ana Ruiz")
    assert events(engine) == 0
