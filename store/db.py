"""Engines, migrations and the write transaction every batch goes through.

On PostgreSQL, batches write side by side: each locks the rows of the customers it folds (in id
order, so two batches never wait on each other in a circle), and the unique keys of bodies,
events and aliases catch two batches that would both create the same thing; the loser of such a
race is rolled back and run again (`retry_on_conflict`), and finds the winner's rows. Work that
must see no batch at all (a rebuild) takes an advisory lock that every batch holds shared.
SQLite has one writer: a batch starts with BEGIN IMMEDIATE behind an flock, and waits out a busy
database instead of failing. Parsing, the expensive part, runs outside in every worker at once.
"""

from __future__ import annotations

import fcntl
import logging
import random
import time
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Iterator

import msgspec
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, Executable, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
WRITE_LOCK_KEY = 0x7761_7075  # "wapu": held shared by every batch, alone by a rebuild
SQLITE_BUSY_TIMEOUT_MS = 60_000
CONFLICT_RETRIES = 8
CONFLICT_STATES = {"23505": "unique violation", "23503": "foreign key violation", "40P01": "deadlock",
                   "40001": "serialization failure", "55P03": "row held by another batch"}
"""PostgreSQL errors that mean another transaction got there first: run the work again."""
IN_CHUNK = 500  # bound parameters per IN (...) list, well under every backend's limit


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets WAL, a long busy timeout and a folder for its file.

    Statement parameters are hidden from error messages: they hold names and numbers, and errors
    end up in logs and in RQ's failed-job records."""
    parsed = make_url(url)
    common = {"hide_parameters": True, "json_serializer": json_text, "json_deserializer": msgspec.json.decode}
    if parsed.get_backend_name() != "sqlite":
        # a server that does not answer (a half-open connection) fails a connect in 10 s, not hangs it
        return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5,
                             connect_args={"connect_timeout": 10}, **common)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **common)

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection):
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")

    return engine


_json_encoder = msgspec.json.Encoder()


def json_text(value) -> str:
    """JSON columns (customer state, event data) through msgspec: a few times quicker both ways
    than the standard library, which the worker would otherwise spend a tenth of its time in.
    Also what a driver-level statement binds for a JSON value (`execute_many`)."""
    return _json_encoder.encode(value).decode()


def in_chunks(values: list) -> Iterator[list]:
    """`values` in slices that each fit one IN (...) list."""
    for start in range(0, len(values), IN_CHUNK):
        yield values[start : start + IN_CHUNK]


def execute_many(connection: Connection, table, statement: str, columns: list[str], rows: list[tuple]) -> int:
    """Run `statement` once per row at the driver, with no per-value processing by SQLAlchemy
    (the hot path's writes: thousands of rows a batch). In `statement`, `{table}` is the table,
    `{columns}` the quoted column names, `{values}` their placeholders, `{sets}` `column =
    placeholder` pairs and `{key}` a placeholder for a last value; JSON values must come as text
    (`json_text`), cast to JSON on PostgreSQL. Returns the number of rows the statements changed."""
    if not rows:
        return 0
    quote, postgres = connection.dialect.identifier_preparer.quote, connection.dialect.name == "postgresql"
    mark = "%s" if postgres else "?"
    json_columns = {column.name for column in table.c if column.type.__class__.__name__ == "JSON"}
    values = [f"CAST({mark} AS JSON)" if postgres and name in json_columns else mark for name in columns]
    sql = statement.format(
        table=quote(table.name), columns=", ".join(quote(name) for name in columns), values=", ".join(values),
        sets=", ".join(f"{quote(name)} = {value}" for name, value in zip(columns, values)), key=mark,
    )
    return connection.exec_driver_sql(sql, rows).rowcount


def insert_many(connection: Connection, table, rows: list[dict]) -> None:
    """INSERT rows (all with the keys of the first) at the driver (`execute_many`)."""
    if rows:
        columns = list(rows[0])
        execute_many(connection, table, "INSERT INTO {table} ({columns}) VALUES ({values})", columns,
                     [tuple(row[name] for name in columns) for row in rows])


def fetch_tuples(connection: Connection, statement: Executable) -> list[tuple]:
    """Every row of a query as the driver's plain tuples: for the millions of rows a report
    reads, SQLAlchemy's row objects double the time. The values are the driver's own (SQLite
    gives 0/1 for booleans); the statement and its parameters still go through SQLAlchemy."""
    result = connection.execute(statement)
    try:
        return result.cursor.fetchall()
    finally:
        result.close()


@contextmanager
def read_snapshot(engine: Engine) -> Iterator[Connection]:
    """A connection whose reads all see the store as it was at the first one, so figures read
    by several queries agree while workers keep writing (PostgreSQL: REPEATABLE READ; SQLite:
    one read transaction of WAL)."""
    options = {"isolation_level": "REPEATABLE READ"} if engine.dialect.name == "postgresql" else {}
    with engine.connect().execution_options(**options) as connection, connection.begin():
        yield connection


@cache
def engine_for(url: str) -> Engine:
    """One engine per URL and process (workers and the web app reuse their pools)."""
    return make_engine(url)


@contextmanager
def write_transaction(engine: Engine, exclusive: bool = False) -> Iterator[Connection]:
    """A write transaction: on SQLite the single writer's; on PostgreSQL one of many, unless
    `exclusive`, which waits for every other write transaction to end and keeps new ones out."""
    with _sqlite_writer_turn(engine), engine.connect().execution_options(sqlite_begin="IMMEDIATE") as connection:
        with connection.begin():
            if connection.dialect.name == "postgresql":
                lock = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
                connection.execute(text(f"SELECT {lock}(:key)"), {"key": WRITE_LOCK_KEY})
            yield connection


@contextmanager
def _sqlite_writer_turn(engine: Engine) -> Iterator[None]:
    """SQLite writers queue on an flock beside the database file before BEGIN IMMEDIATE: the
    kernel wakes the next writer the moment the lock is released, where SQLite's own busy
    handler would sleep in steps of up to 100 ms. (SQLite serves one machine, as flock does.)"""
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:":
        yield
        return
    with open(f"{database}.writer-lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class StaleSnapshot(Exception):
    """What a transaction read outside its write lock was changed by another writer meanwhile."""


def retry_on_conflict(work, *args, **kwargs):
    """Run `work` (one whole transaction), again when it lost a race to another writer: a
    snapshot gone stale, SQLite still locked after its busy timeout, a unique key another writer
    took first, or a PostgreSQL conflict (CONFLICT_STATES)."""
    for attempt in range(1, CONFLICT_RETRIES + 1):
        try:
            return work(*args, **kwargs)
        except (DBAPIError, StaleSnapshot) as error:
            conflict = "stale snapshot" if isinstance(error, StaleSnapshot) else _conflict(error)
            if conflict is None or attempt == CONFLICT_RETRIES:
                raise
            log.info("write conflict (%s), running the transaction again (attempt %d)", conflict, attempt)
            time.sleep(random.uniform(0, 0.01 * attempt))  # two losers do not meet again at once


def _conflict(error: DBAPIError) -> str | None:
    if state := getattr(error.orig, "sqlstate", None):
        return CONFLICT_STATES.get(state)
    if isinstance(error, OperationalError) and "database is locked" in str(error.orig).lower():
        return "SQLite database locked"
    if isinstance(error, IntegrityError) and "UNIQUE constraint failed" in str(error.orig):
        return "SQLite unique key taken"
    return None


ANALYZE_SCALE, ANALYZE_THRESHOLD = 0.1, 50  # autovacuum's defaults for when a table is analyzed again


def analyze_changed_tables(engine: Engine, only_without_autovacuum: bool = True) -> list[str]:
    """ANALYZE the tables of the store that changed by a tenth (and 50 rows) since their last
    analysis, on PostgreSQL when autovacuum is off (or always, without `only_without_autovacuum`);
    returns their names."""
    if engine.dialect.name != "postgresql":
        return []
    with engine.connect() as connection:
        if only_without_autovacuum and connection.execute(text("SHOW autovacuum")).scalar_one() == "on":
            return []
        stale = connection.execute(text(
            "SELECT relname FROM pg_stat_user_tables WHERE schemaname = current_schema() "
            "AND n_mod_since_analyze > :threshold + :scale * GREATEST(n_live_tup, 0) ORDER BY relname"
        ), {"threshold": ANALYZE_THRESHOLD, "scale": ANALYZE_SCALE}).scalars().all()
        connection.commit()
        quote = connection.dialect.identifier_preparer.quote
        for table in stale:
            connection.execute(text(f"ANALYZE {quote(table)}"))
            connection.commit()
    return list(stale)


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str) -> None:
    """Apply every migration up to the newest (what `wapulse db upgrade` runs)."""
    make_engine(url).dispose()  # creates the SQLite folder when needed
    command.upgrade(alembic_config(url), "head")
