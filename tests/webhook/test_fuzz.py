"""Property-based fuzzing of signed bodies (hypothesis): recorded bodies with fields deleted,
types swapped, huge and deep values, invalid UTF-8, NaN, integers past 2⁶³, NUL, lone surrogates
and thousands of entries, each POSTed twice through the real intake into Redis and drained by the
real worker. Whatever the body: never a 5xx, every acknowledged body archived once, a redelivery
counts nothing twice, the worker keeps draining, and the reads still work."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import func, select

from cloudapi.signature import sign
from report.build import produce, request_of
from scoring.figures import FigureRules
from scoring.tiers import TierRules
from store import queries
from store.models import EventRow, RawBody
from tests.conftest import APP_SECRET, FIXTURES, REDIS_URL, process_until_drained
from tests.webhook.test_webhook import call
from webhook.intake import create_intake
from workers.settings import Settings

RECORDED = sorted((FIXTURES / "cloudapi").glob("*.json"))
NOW = 1_796_000_000
ODD_VALUES = st.sampled_from([
    None, True, 0, -1, 2**63, 2**64 + 1, -(2**63) - 1, 10**30, float("nan"), float("inf"), 1e308, "", "\x00",
    "a\x00b", "\ud800", "\udfff lone", "🙂" * 50, "x" * 200_000, [], {}, [[[[[]]]]], {"": {"": None}},
    "2026-13-45T99:99:99Z", "-1", "9" * 400,
])


def deep(levels: int):
    value: list = []
    for _ in range(levels):
        value = [value]
    return value


def paths(document, prefix=()) -> list[tuple]:
    """Every path to a value in the document (keys and indices), down to Meta's depth."""
    found = [prefix] if prefix else []
    if len(prefix) > 12:
        return found
    if isinstance(document, dict):
        for key, value in document.items():
            found += paths(value, (*prefix, key))
    elif isinstance(document, list):
        for index, value in enumerate(document[:20]):
            found += paths(value, (*prefix, index))
    return found


def parent_of(document, path: tuple):
    for step in path[:-1]:
        document = document[step]
    return document


@st.composite
def mutated_bodies(draw) -> bytes:
    document = json.loads(draw(st.sampled_from(RECORDED)).read_bytes())
    for _ in range(draw(st.integers(1, 4))):
        targets = paths(document)
        if not targets:
            break
        path = draw(st.sampled_from(targets))
        parent, last = parent_of(document, path), path[-1]
        mutation = draw(st.sampled_from(["delete", "swap", "deep", "many", "odd key"]))
        if mutation == "delete":
            del parent[last]
        elif mutation == "swap":
            parent[last] = draw(ODD_VALUES)
        elif mutation == "deep":
            parent[last] = deep(draw(st.sampled_from([30, 150, 2_000])))
        elif mutation == "many" and isinstance(parent[last], list) and parent[last]:
            parent[last] = parent[last] * draw(st.sampled_from([50, 3_000]))
        elif mutation == "odd key" and isinstance(parent, dict):
            parent[draw(st.sampled_from(["\x00", "\ud800", "é" * 300, "entry"]))] = draw(ODD_VALUES)
    try:
        body = json.dumps(document, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")
    except RecursionError:
        body = b'{"entry": ' + b"[" * 5_000 + b"]" * 5_000 + b"}"
    if draw(st.booleans()) and len(body) > 10:  # bytes that are no UTF-8 at a random place
        at = draw(st.integers(0, len(body) - 1))
        body = body[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00"])) + body[at:]
    return body


def post(body: bytes) -> int:
    """The status of one signed POST to the intake (one made for it: each call runs its own event loop)."""
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": sign(APP_SECRET, body),
               "Content-Length": str(len(body))}
    return call(create_intake(Settings(app_secret=APP_SECRET, redis_url=REDIS_URL)), "POST", "/webhook", headers,
                [body])[0]


def archived(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(RawBody)).scalar_one()


def stored_events(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(EventRow)).scalar_one()


@pytest.mark.fault("fuzzed signed bodies (hypothesis)")
@settings(max_examples=120, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])
@given(body=mutated_bodies())
def test_no_body_gets_a_5xx_or_loses_or_doubles_anything_or_breaks_a_read(body, env, engine, redis):
    before = archived(engine)
    first = post(body)
    assert first in (200, 400, 413), first  # ok, kept as a dead letter, or over 4 MiB (refused, not taken)
    process_until_drained(redis, timeout_s=60)
    events = stored_events(engine)
    assert post(body) == first  # Meta delivers it again
    process_until_drained(redis, timeout_s=60)
    taken = first in (200, 400)
    assert archived(engine) == before + 2 * taken  # every body acknowledged, kept: each delivery once
    assert stored_events(engine) == events  # the redelivery counted nothing twice
    for view in queries.list_customers(engine, NOW, FigureRules()):
        assert queries.find_customer(engine, view["key"], NOW, FigureRules()) is not None
    asked = request_of({"from": "2026-10-01", "to": "2026-12-31", "format": "json"}, NOW, [], (), frozenset())
    assert json.loads(produce(engine, asked, TierRules()))
