"""The migrations build exactly the tables the models describe, on both backends."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlmodel import SQLModel

import store.models  # noqa: F401  (registers the tables)
from store import db


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
