"""The migrations build exactly the tables the models describe, on both backends."""

from __future__ import annotations

import json

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Text, cast, select, text
from sqlmodel import SQLModel

from store import db
from store.models import Customer, EventRow
from tests.conftest import throwaway_schema


def test_the_migrated_schema_matches_the_models(database_url):
    with db.engine_for(database_url).connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), SQLModel.metadata) == []


def test_outbound_messages_stored_before_0007_get_their_number_from_their_statuses(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    db.make_engine(url).dispose()
    command.upgrade(db.alembic_config(url), "0006")
    engine = db.engine_for(url)
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO customer (id, key, opted_out, unreachable, interactions, state)"
                                " VALUES (1, 'c', false, false, 0, '{}')"))
        connection.execute(text("INSERT INTO outbound_message (message_id, customer_id, at, rank, failed)"
                                " VALUES ('wamid.A', 1, 10, 2, false), ('wamid.B', 1, 20, 1, false)"))
        connection.execute(text("INSERT INTO event (key, customer_id, phone_number_id, kind, type, at, message_id, data)"
                                " VALUES ('s:A:sent', 1, '111', 'status', 'sent', 10, 'wamid.A', '{}')"))
    command.upgrade(db.alembic_config(url), "head")
    with engine.connect() as connection:
        numbers = dict(connection.execute(text("SELECT message_id, phone_number_id FROM outbound_message")).all())
    assert numbers == {"wamid.A": "111", "wamid.B": None}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_database_url(request, tmp_path):
    """A database with no tables yet, for migrating step by step."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    with throwaway_schema("wapulse_migration") as url:
        yield url


def test_nul_characters_stored_before_0008_are_dropped_and_json_reads_work_again(empty_database_url):
    url = empty_database_url
    db.make_engine(url).dispose()
    command.upgrade(db.alembic_config(url), "0007")
    engine = db.engine_for(url)
    nul_name = "A\x00na" if engine.dialect.name == "sqlite" else "Ana"  # PostgreSQL text never held one
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO customer (id, key, name, opted_out, unreachable, interactions, state)"
                                " VALUES (1, 'c', :name, false, false, 0, :state)"),
                           {"name": nul_name, "state": '{"name":"A\\u0000na","inbound":1}'})
        connection.execute(text("INSERT INTO event (key, customer_id, kind, type, at, data)"
                                " VALUES (:key, 1, 'message', 'text', :at, :data)"),
                           [{"key": "m:1", "at": 10, "data": '{"name":"A\\u0000na","sig":["question"]}'},
                            {"key": "m:2", "at": 20, "data": '{"sig":["rapport"]}'}])
    command.upgrade(db.alembic_config(url), "head")
    events = EventRow.__table__
    with engine.connect() as connection:
        signals = connection.execute(select(cast(events.c.data["sig"], Text)).order_by(events.c.key)).scalars().all()
        assert [json.loads(value) for value in signals] == [["question"], ["rapport"]]
        assert connection.execute(select(events.c.data).where(events.c.key == "m:1")).scalar_one()["name"] == "Ana"
        customer = connection.execute(select(Customer.__table__)).one()
    assert (customer.name, customer.state) == ("Ana", {"name": "Ana", "inbound": 1})
