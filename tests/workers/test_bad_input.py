"""What a customer can type or a broken sender can send, through real HTTP, Redis and the worker
into SQLite and PostgreSQL: text a store cannot hold is cleaned, a value that cannot be an
instant or a code falls back or is left out, one malformed item costs only itself, and every
read (the CLI, the report in every form, the API) works afterwards."""

from __future__ import annotations

import csv
import io
import json
import os
import time

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from report.spreadsheet import FORMULA_STARTS
from store import queries
from store.models import Customer, EventRow, OutboundMessageRow
from tests.conftest import post_signed
from wapulse.cli import main
from webhook import create_app
from workers.settings import Settings

NUMBER = {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"}
WHO = "16505551234"
T0 = 1_794_328_383  # 2026-11-12
API_TOKEN = "bad-input-api-token"


def envelope(*changes: dict) -> bytes:
    """A signed-body-to-be holding `changes` (each a `{"field", "value"}`), escaped as Meta sends."""
    return json.dumps({"object": "whatsapp_business_account",
                       "entry": [{"id": "102290129340398", "changes": list(changes)}]}).encode()


def messages(*items: dict, name: str = "Ana", who: str = WHO) -> dict:
    return {"field": "messages", "value": {"messaging_product": "whatsapp", "metadata": NUMBER,
                                           "contacts": [{"profile": {"name": name}, "wa_id": who}],
                                           "messages": list(items)}}


def statuses(*items: dict) -> dict:
    return {"field": "messages", "value": {"messaging_product": "whatsapp", "metadata": NUMBER, "statuses": list(items)}}


def text(message_id: str, at, body: str = "hello", who: str = WHO) -> dict:
    return {"from": who, "id": message_id, "timestamp": at if not isinstance(at, int) else str(at), "type": "text",
            "text": {"body": body}}


def status(message_id: str, value: str, at, **extra) -> dict:
    return {"id": message_id, "status": value, "timestamp": at, "recipient_id": WHO, **extra}


def stored(engine, table, *columns):
    with engine.connect() as connection:
        return connection.execute(select(*(table.c[name] for name in columns)).order_by(*table.primary_key)).all()


def events(engine) -> dict[str, int]:
    """Event key -> instant, for every stored event."""
    return dict(stored(engine, EventRow.__table__, "key", "at"))


def posted(web_server, drain, *bodies: bytes) -> None:
    for body in bodies:
        assert post_signed(web_server, body).status_code == 200
    drain()


def assert_no_dead_letters(engine) -> None:
    assert queries.dead_letters(engine) == []


# ---- text a store cannot hold -------------------------------------------------------------------


def test_a_nul_in_an_older_profile_name_is_cleaned_and_the_newer_name_wins(web_server, engine, drain):
    posted(web_server, drain, envelope(messages(text("wamid.nul1", T0), name="A\u0000na")),
           envelope(messages(text("wamid.nul2", T0 + 60), name="Ana")))
    assert_no_dead_letters(engine)
    assert set(events(engine)) == {"m:wamid.nul1", "m:wamid.nul2"}
    assert stored(engine, Customer.__table__, "name") == [("Ana",)]
    assert_every_read_works(engine)


def test_a_nul_in_the_newest_profile_name_costs_no_event(web_server, engine, drain):
    posted(web_server, drain, envelope(messages(text("wamid.nul3", T0), name="Ana")),
           envelope(messages(text("wamid.nul4", T0 + 60, body="price\u0000?"), name="A\u0000na\u0000")))
    assert_no_dead_letters(engine)
    assert set(events(engine)) == {"m:wamid.nul3", "m:wamid.nul4"}
    assert stored(engine, Customer.__table__, "name") == [("Ana",)]
    assert_every_read_works(engine)


def test_a_lone_surrogate_costs_only_its_own_characters(web_server, engine, drain):
    """`\\ud800` is valid JSON syntax but no UTF-8 text: it becomes U+FFFD where it stands."""
    body = envelope(messages(text("wamid.sur1", T0, body="how much\ud800?"), text("wamid.sur2", T0 + 1),
                             name="B\udc00b"))
    assert b"\\ud800" in body
    posted(web_server, drain, body)
    assert_no_dead_letters(engine)
    assert set(events(engine)) == {"m:wamid.sur1", "m:wamid.sur2"}
    assert stored(engine, Customer.__table__, "name") == [("B\ufffdb",)]
    assert_every_read_works(engine)


# ---- values that cannot be what they claim --------------------------------------------------------


@pytest.mark.parametrize("timestamp", [
    "1795796405000",  # milliseconds
    1795796405000,
    "9223372036854775808",  # 2**63
    -9223372036854775808,
    18446744073709551616,  # 2**64
    "1e400",  # infinite as a float
    "NaN",
    "0",  # 1970: no WhatsApp message is that old
    "-1",
    "4102444800",  # 2100-01-01
])
def test_a_timestamp_that_is_no_plausible_instant_falls_back_to_the_arrival_time(timestamp, web_server, engine, drain):
    posted(web_server, drain, envelope(messages(text("wamid.ts1", timestamp)),
                                       statuses(status("wamid.out1", "delivered", timestamp))))
    assert_no_dead_letters(engine)
    instants = events(engine)
    assert set(instants) == {"m:wamid.ts1", "s:wamid.out1:delivered"}
    arrival = stored(engine, Customer.__table__, "first_seen_at")[0][0]
    assert abs(arrival - time.time()) < 600  # the real arrival, not the sender's number
    assert set(instants.values()) == {arrival}
    assert_every_read_works(engine)


def test_error_codes_beyond_any_integer_column_are_left_out_not_the_status(web_server, engine, drain):
    failed = status("wamid.out2", "failed", str(T0), errors=[{"code": 2**63}, {"code": -(2**40)}, {"code": 131026}])
    huge = status("wamid.out3", "failed", str(T0), errors=[{"code": 9_999_999_999}])
    posted(web_server, drain, envelope(statuses(failed, huge), messages(text("wamid.ok1", T0 + 5))))
    assert_no_dead_letters(engine)
    assert set(events(engine)) == {"s:wamid.out2:failed", "s:wamid.out3:failed", "m:wamid.ok1"}
    assert dict(stored(engine, OutboundMessageRow.__table__, "message_id", "error_code")) == {
        "wamid.out2": 131026, "wamid.out3": None}
    assert_every_read_works(engine)


def test_identifiers_longer_than_any_real_one_do_not_cost_their_body(web_server, engine, drain):
    long_id = "wamid." + "A" * 400
    number = {**NUMBER, "phone_number_id": "9" * 100}
    sent = status(long_id, "sent", str(T0), biz_opaque_callback_data="c" * 2000)
    body = envelope({"field": "messages", "value": {"messaging_product": "whatsapp", "metadata": number,
                                                    "statuses": [sent]}},
                    messages(text("wamid.ok2", T0 + 5)))
    posted(web_server, drain, body)
    assert_no_dead_letters(engine)
    assert len(events(engine)) == 2
    assert_every_read_works(engine)


def test_a_field_of_the_wrong_type_costs_only_its_change(web_server, engine, drain):
    body = envelope({"field": ["messages"], "value": {}}, {"field": {"a": 1}, "value": []},
                    {"field": "messages", "value": {"metadata": ["x"], "messages": [{"from": ["x"], "id": {"a": 1}}]}},
                    messages(text("wamid.ok3", T0)))
    posted(web_server, drain, body)
    assert_no_dead_letters(engine)
    assert "m:wamid.ok3" in events(engine)
    assert_every_read_works(engine)


@pytest.mark.parametrize("quantity, price", [("NaN", 1), (1, "Infinity"), ("1e999999", "1e999999"), (2**70, 1),
                                             ("-5", "1e30")])
def test_an_order_with_impossible_amounts_keeps_its_order_without_them(quantity, price, web_server, engine, drain):
    order = {"from": WHO, "id": "wamid.ord1", "timestamp": str(T0), "type": "order",
             "order": {"catalog_id": "1", "product_items": [
                 {"product_retailer_id": "a", "quantity": quantity, "item_price": price, "currency": "USD"},
                 {"product_retailer_id": "b", "quantity": 2, "item_price": 3.5, "currency": "USD"}]}}
    posted(web_server, drain, envelope(messages(order)))
    assert_no_dead_letters(engine)
    (card,) = queries.list_customers(engine, T0 + 60, Settings().figure_rules)
    assert card["orders"] == {"count": 1, "items": 2, "value": {"USD": 7}}
    assert_every_read_works(engine)


# ---- every read afterwards ------------------------------------------------------------------------


def cli(*args: str) -> bytes:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout_bytes


def assert_every_read_works(engine) -> None:
    """`wapulse customers` and `customer` in every form, the report in every form, and the API."""
    keys = [row.key for row in stored(engine, Customer.__table__, "key")]
    for form in ("table", "json", "csv"):
        cli("customers", "--format", form)
    for key in keys:
        for form in ("text", "json"):
            cli("customer", key, "--format", form)
    for form in ("md", "html", "json", "csv", "xlsx"):
        cli("report", "--format", form)
    settings = Settings.from_env({**os.environ, "WAPULSE_API_TOKEN": API_TOKEN})
    client = create_app(settings).test_client()
    bearer = {"Authorization": f"Bearer {API_TOKEN}"}
    for key in keys:
        assert client.get(f"/api/customers/{key}", headers=bearer).status_code == 200
    for form in ("json", "csv"):
        assert client.get(f"/api/report?format={form}", headers=bearer).status_code == 200


@pytest.mark.parametrize("instant", [1_795_796_405_000, -(2**63), 2**63 - 1])
def test_instants_an_earlier_version_stored_out_of_any_calendar_break_no_read(instant, web_server, engine, drain):
    """Before the parser's plausibility rule, a status in milliseconds was stored as it came."""
    posted(web_server, drain, envelope(messages(text("wamid.old1", T0)),
                                       statuses(status("wamid.out9", "read", str(T0 + 60)))))
    customers, outbound = Customer.__table__, OutboundMessageRow.__table__
    with engine.begin() as connection:
        state = connection.execute(select(customers.c.state)).scalar_one()
        state.update(last_outbound_at=instant, first_outbound_at=instant, last_inbound_at=instant)
        connection.execute(customers.update().values(last_outbound_at=instant, last_inbound_at=instant,
                                                     tier_since=instant, next_tier_at=instant, state=state))
        connection.execute(outbound.update().values(at=instant))
        connection.execute(EventRow.__table__.update().values(at=instant))
    assert_every_read_works(engine)


def test_a_name_a_spreadsheet_would_run_stays_text_in_every_csv(web_server, engine, drain):
    name = "Bob\r=cmd|' /C calc'!A0\n+1"
    posted(web_server, drain, envelope(messages(text("wamid.csv1", T0), name=name)),
           envelope(messages(text("wamid.csv2", T0 + 9, who="34600000002"), name="Ana", who="34600000002")))
    for output in (cli("customers", "--format", "csv"), cli("report", "--format", "csv", "--to", "2026-11-30")):
        rows = list(csv.reader(io.StringIO(output.decode(), newline="")))
        assert len(rows) == 3  # the header and one row a customer: no row starts inside a cell
        cells = [cell for row in rows for cell in row]
        assert "Bob\r'=cmd|' /C calc'!A0\n'+1" in cells
        assert not any(line.startswith(FORMULA_STARTS) for cell in cells for line in cell.splitlines())


def test_items_whose_instant_falls_back_to_arrival_count_once_however_often_they_come(web_server, engine, drain):
    """A preference, a BSUID update and a message without an id, each with a millisecond
    timestamp, delivered twice a second apart: one event each."""
    ms = "1795796405000"
    preference = {"field": "user_preferences", "value": {"messaging_product": "whatsapp", "metadata": NUMBER,
                  "user_preferences": [{"wa_id": WHO, "category": "marketing_messages", "value": "stop", "timestamp": ms}]}}
    update = {"field": "user_id_update", "value": {"messaging_product": "whatsapp", "metadata": NUMBER,
              "user_id_update": [{"wa_id": WHO, "timestamp": ms, "user_id": {"previous": "US.1", "current": "US.2"}}]}}
    no_id = messages({"from": WHO, "timestamp": ms, "type": "text", "text": {"body": "hello"}})
    body = envelope(preference, update, no_id)
    posted(web_server, drain, body)
    time.sleep(1.1)
    posted(web_server, drain, body)
    assert len(events(engine)) == 3
    (card,) = queries.list_customers(engine, int(time.time()), Settings().figure_rules)
    assert card["counters"]["inbound"] == 1


def test_an_integer_too_long_to_read_costs_its_value_not_the_body(web_server, engine, drain):
    good = messages(text("wamid.ok9", T0))
    body = envelope(good).replace(b'"entry"', b'"huge": ' + b"9" * 5000 + b', "entry"')
    posted(web_server, drain, body)
    assert_no_dead_letters(engine)
    assert set(events(engine)) == {"m:wamid.ok9"}
