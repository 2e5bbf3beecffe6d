"""The figures job keeps what pages must not work out: the base customers are ranked against, and
the sort keys the desk orders them by, worked out again for every customer a batch writes."""

from __future__ import annotations

from sqlalchemy import select

from scoring.customer import CustomerState
from scoring.figures import sort_keys
from store.figure_base import Base, current_base, load_base
from store.models import Customer
from tests.workers.test_ingest import all_bodies, hand_off_all
from tests.workers.test_tiers import set_now
from workers.jobs import refresh_figures
from workers.context import installed

NOW = 1_795_000_000


def keys_of(engine) -> dict[int, tuple]:
    table = Customer.__table__
    with engine.connect() as connection:
        return {row.id: (row.churn_risk, row.intent, row.expected_orders, row.figures_at)
                for row in connection.execute(select(table))}


def test_the_job_keeps_the_base_and_every_customers_sort_keys(redis, engine, drain, monkeypatch):
    set_now(monkeypatch, NOW)
    hand_off_all(redis, all_bodies())
    drain()
    assert {keys[3] for keys in keys_of(engine).values()} == {None}  # written, not yet ranked
    assert refresh_figures()["customers"] == len(keys_of(engine))
    with engine.connect() as connection:
        kept = load_base(connection, installed().settings.figure_rules)
        worked_out = Base.load(connection, NOW, installed().settings.figure_rules)
        rows = connection.execute(select(Customer.__table__)).all()
    assert (kept.now, kept.rfm, kept.model) == (NOW, worked_out.rfm, worked_out.model)
    for row in rows:
        expected = sort_keys(CustomerState.from_json(row.state), NOW, row.unreachable, kept.model)
        assert keys_of(engine)[row.id] == (expected["churn_risk"], expected["intent"], expected["expected_orders"], NOW)
    assert refresh_figures()["customers"] == 0  # nothing stale: nothing to do


def test_a_batch_marks_the_customers_it_writes_and_the_next_run_ranks_them_again(redis, engine, drain, monkeypatch):
    set_now(monkeypatch, NOW)
    bodies = all_bodies()
    hand_off_all(redis, bodies[:40])
    drain()
    refresh_figures()
    hand_off_all(redis, bodies[40:])
    drain()
    stale = [customer for customer, keys in keys_of(engine).items() if keys[3] is None]
    assert stale and refresh_figures()["customers"] == len(stale)
    assert all(keys[3] == NOW for keys in keys_of(engine).values())


def test_a_base_from_before_the_clock_or_too_old_is_worked_out_again(redis, engine, drain, monkeypatch):
    set_now(monkeypatch, NOW)
    hand_off_all(redis, all_bodies()[:20])
    drain()
    refresh_figures()
    set_now(monkeypatch, NOW + 1800)
    refresh_figures()
    with engine.connect() as connection:
        assert load_base(connection, installed().settings.figure_rules).now == NOW + 1800
        assert current_base(connection, NOW + 1900, installed().settings.figure_rules).now == NOW + 1900
