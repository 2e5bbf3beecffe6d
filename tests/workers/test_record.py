"""`wapulse record`: a deployment's received bodies written out as fixtures, scrubbed, and
replayed into an empty store equal to the original in every figure; no original number, name or
text left in the files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from store import db
from tests.conftest import reread_environment
from tests.workers.test_ingest import SCENARIO, snapshot
from tests.workers.test_tiers import process, set_now
from wapulse.cli import main

NOW = 1_795_000_000
PERSON_FIELDS = {"from", "to", "wa_id", "recipient_id", "user_id", "from_user_id", "recipient_user_id", "username",
                 "parent_user_id", "name", "body", "caption", "formatted_name", "first_name", "last_name", "phone"}


def personal(value, found: set[str]) -> set[str]:
    """Every string a body holds in a field that names or quotes a person (the business's own
    numbers apart), walked here independently of the scrubber."""
    if isinstance(value, dict):
        for name, inner in value.items():
            if name == "metadata":
                continue
            if name in PERSON_FIELDS and isinstance(inner, str) and len(inner) >= 4:
                found.add(inner)
            else:
                personal(inner, found)
    elif isinstance(value, list):
        for inner in value:
            personal(inner, found)
    return found


def figures_of(engine) -> list[dict]:
    """Every customer's figures, without who they are: sorted, so one fake person stands for one real."""
    who = {"key", "wa_id", "user_id", "parent_user_id", "username", "name", "first_seen_via", "reminders"}
    cards = [{name: value for name, value in card.items() if name not in who} for card in snapshot(engine)]
    return sorted(cards, key=lambda card: json.dumps(card, sort_keys=True, default=str))


def report_figures(url: str, monkeypatch) -> dict:
    monkeypatch.setenv("DATABASE_URL", url)
    reread_environment()
    made = CliRunner().invoke(main, ["report", "--from", "2026-10-20", "--to", "2026-11-19", "--format", "json",
                                     "--compare", "none"], catch_exceptions=False)
    report = json.loads(made.output)
    report.pop("action_plan")  # names customers; its counts are in segmentation
    return report


def test_a_scrubbed_recording_replays_into_the_same_figures_and_names_no_one(env, redis, drain, engine, monkeypatch,
                                                                             tmp_path):
    set_now(monkeypatch, NOW)
    bodies = SCENARIO.read_bytes().splitlines()
    process(redis, drain, bodies)
    folder = tmp_path / "recorded"
    made = CliRunner().invoke(main, ["record", "--since", "2020-01-01", "-o", str(folder)], catch_exceptions=False)
    assert made.exit_code == 0, made.output
    files = sorted(folder.glob("*.json"))
    assert len(files) == len(bodies) and all("__" in path.stem for path in files)  # one per delivery archived
    written = "\n".join(path.read_text() for path in files)
    decoded = json.dumps([json.loads(path.read_bytes()) for path in files], ensure_ascii=False)
    business = {change["value"]["metadata"]["display_phone_number"] for body in bodies
                for change in json.loads(body)["entry"][0]["changes"]}
    originals = set().union(*(personal(json.loads(body), set()) for body in bodies)) - business
    assert originals and not [value for value in originals if value in written or value in decoded]

    replayed = f"sqlite:///{tmp_path / 'replayed.db'}"
    db.upgrade(replayed)
    original_report = report_figures(env["DATABASE_URL"], monkeypatch)
    monkeypatch.setenv("DATABASE_URL", replayed)
    reread_environment()
    result = CliRunner().invoke(main, ["replay", str(folder)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert figures_of(db.engine_for(replayed)) == figures_of(engine)
    assert report_figures(replayed, monkeypatch) == original_report


def test_without_scrubbing_the_bytes_are_those_received_and_a_filter_narrows_them(env, redis, drain, engine,
                                                                                 monkeypatch, tmp_path):
    set_now(monkeypatch, NOW)
    bodies = SCENARIO.read_bytes().splitlines()
    process(redis, drain, bodies)
    exact = tmp_path / "exact"
    CliRunner().invoke(main, ["record", "--since", "2020-01-01", "--no-scrub", "-o", str(exact)], catch_exceptions=False)
    assert sorted(path.read_bytes() for path in exact.glob("*.json")) == sorted(bodies)
    brazil = tmp_path / "brazil"
    CliRunner().invoke(main, ["record", "--since", "2020-01-01", "--no-scrub", "--customer", "+5511987654321",
                              "-o", str(brazil)], catch_exceptions=False)
    mine = [path.read_bytes() for path in brazil.glob("*.json")]
    assert mine and all(b"5511987654321" in body for body in mine)
    assert len(mine) == sum(b"5511987654321" in body for body in bodies)
    again = CliRunner().invoke(main, ["record", "--since", "2020-01-01", "-o", str(brazil)])
    assert again.exit_code != 0 and "is not empty" in again.output


@pytest.mark.parametrize("shift", ["-30d", "3600"])
def test_a_shift_moves_every_instant_alike(shift, env, redis, drain, engine, monkeypatch, tmp_path):
    set_now(monkeypatch, NOW)
    process(redis, drain, SCENARIO.read_bytes().splitlines()[:3])
    plain, shifted = tmp_path / "plain", tmp_path / "shifted"
    for folder, extra in ((plain, []), (shifted, ["--shift", shift])):
        CliRunner().invoke(main, ["record", "--since", "2020-01-01", "-o", str(folder), *extra], catch_exceptions=False)
    seconds = -30 * 86_400 if shift == "-30d" else 3600

    def instants(folder: Path) -> list[int]:
        return [int(item["timestamp"]) for path in sorted(folder.glob("*.json"))
                for change in json.loads(path.read_bytes())["entry"][0]["changes"]
                for field in ("messages", "statuses") for item in change["value"].get(field, [])]

    assert [at + seconds for at in instants(plain)] == instants(shifted)


def test_a_body_of_an_odd_shape_is_recorded_and_a_folder_in_use_refused(env, redis, drain, engine, monkeypatch,
                                                                        tmp_path):
    """A signed body that is JSON but not Meta's shape is archived (a dead letter or no events):
    it is recorded like any other, named `unknown__none`, and nothing is left half written."""
    set_now(monkeypatch, NOW)
    process(redis, drain, [b'{"entry":["x"]}', SCENARIO.read_bytes().splitlines()[0]])
    folder = tmp_path / "odd"
    made = CliRunner().invoke(main, ["record", "--since", "2020-01-01", "-o", str(folder)], catch_exceptions=False)
    assert made.exit_code == 0, made.output
    assert sorted(path.name.rsplit("__", 1)[0] for path in folder.glob("*.json")) == ["messages__text", "unknown__none"]
    assert not list(tmp_path.glob(".*partial*"))
