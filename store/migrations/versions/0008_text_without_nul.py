"""drop NUL characters that earlier versions stored in names and JSON columns

Before 0008 the parser kept a NUL a customer put in their profile name or text. PostgreSQL stores
it inside JSON as the escape `\\u0000` and then refuses every JSON operator on that row (the report
failed for everyone); SQLite kept it in text columns too. The parser now drops it on the way in;
this cleans what is already stored the same way.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 21:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

NUL_ESCAPE = "\\u0000"
JSON_COLUMNS = [("event", ("id",), "data"), ("customer", ("id",), "state"), ("customer", ("id",), "checkpoint"),
                ("reminder", ("id", "rep"), "content")]
TEXT_COLUMNS = [("customer", ("id",), "name"), ("customer", ("id",), "username")]  # only SQLite could store one


def upgrade() -> None:
    connection = op.get_bind()
    for name, keys, column in JSON_COLUMNS:
        table = sa.table(name, *map(sa.column, keys), sa.column(column, sa.JSON))
        _rewrite(connection, table, keys, column, sa.cast(table.c[column], sa.Text).contains(NUL_ESCAPE, autoescape=True))
    if connection.dialect.name == "sqlite":
        for name, keys, column in TEXT_COLUMNS:
            table = sa.table(name, *map(sa.column, keys), sa.column(column, sa.Text))
            _rewrite(connection, table, keys, column, table.c[column].contains("\x00", autoescape=True))


def _rewrite(connection, table, keys: tuple[str, ...], column: str, found) -> None:
    for row in connection.execute(sa.select(*(table.c[key] for key in keys), table.c[column]).where(found)).all():
        *row_keys, value = row
        cleaned = _clean(value)
        connection.execute(sa.update(table).where(*(table.c[key] == v for key, v in zip(keys, row_keys)))
                           .values({column: cleaned if cleaned != "" else None}))


def _clean(value):
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, list):
        return [_clean(item) for item in value]
    if isinstance(value, dict):
        return {_clean(name): _clean(item) for name, item in value.items()}
    return value


def downgrade() -> None:
    pass  # nothing to restore: the characters removed were never meant to be kept
