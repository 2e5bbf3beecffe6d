"""Planner statistics kept on a PostgreSQL whose autovacuum is off."""

from __future__ import annotations

import time

from sqlalchemy import text

from store import db
from tests.workers.test_ingest import BODIES, hand_off_all
from workers.jobs import keep_statistics


def modified_since_analysis(engine, table: str) -> int:
    with engine.connect() as connection:
        return connection.execute(text("SELECT n_mod_since_analyze FROM pg_stat_user_tables WHERE relname = :table "
                                        "AND schemaname = current_schema()"), {"table": table}).scalar_one()


def test_the_tables_a_batch_grew_are_analyzed_once_and_sqlite_is_left_alone(redis, engine, drain):
    hand_off_all(redis, [path.read_bytes() for path in BODIES])
    drain()
    if engine.dialect.name != "postgresql":
        assert db.analyze_changed_tables(engine, only_without_autovacuum=False) == [] == keep_statistics()
        return
    engine.dispose()  # a backend leaving hands its counters over
    deadline = time.monotonic() + 10
    while modified_since_analysis(engine, "event") == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    analyzed = db.analyze_changed_tables(engine, only_without_autovacuum=False)
    assert {"event", "raw_body"} <= set(analyzed)  # the fixtures name too few customers to count
    assert modified_since_analysis(engine, "event") == 0
    assert db.analyze_changed_tables(engine, only_without_autovacuum=False) == []  # nothing changed since
    with engine.connect() as connection:
        autovacuum = connection.execute(text("SHOW autovacuum")).scalar_one()
    assert keep_statistics() == [] or autovacuum == "off"
