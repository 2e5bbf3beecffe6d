"""The `wapulse` command as a user runs it: replay, customers, customer, clear errors."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
import responses
from click.testing import CliRunner
from sqlalchemy import select

from store.models import RawBody

from tests.cloudapi.expected_fixtures import EXPECTED
from tests.conftest import APP_SECRET, FIXTURES, ROOT, reread_environment
from wapulse.cli import main
from workers.jobs import deliver_due

SCENARIO = FIXTURES / "scenarios" / "messages__timeline__two_weeks.jsonl"
TIER_MOVES = FIXTURES / "scenarios" / "messages__timeline__tier_moves.jsonl"
CUSTOMER_FIELDS = {
    "key", "wa_id", "user_id", "username", "name", "country", "timezone", "first_seen_at", "last_inbound_at",
    "last_outbound_at", "counters", "signals", "orders", "errors", "opted_out", "unreachable",
    "tier", "owner", "tier_since", "rfm", "lifecycle", "churn_risk", "intent", "frequency_band", "value",
}
COUNTER_FIELDS = {"inbound", "outbound", "delivered", "read", "played", "failed", "replies", "inbound_by_type"}


def run(*args: str, expect: int = 0) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == expect, result.output
    return result.output


def counts(output: str) -> dict[str, int]:
    line = output.strip().splitlines()[-1]
    return {name: int(value) for name, value in (part.split(": ") for part in line.split("  "))}


def test_replay_in_process_counts_bodies_events_duplicates_and_unknown(env):
    lines = SCENARIO.read_bytes().splitlines()
    first = counts(run("replay", str(SCENARIO)))
    assert first["bodies"] == len(lines)
    assert first["events"] + first["duplicates"] == len(EXPECTED[SCENARIO.stem])
    assert first["duplicates"] >= 1  # the recording holds one exact redelivery
    again = counts(run("replay", str(SCENARIO)))
    assert again == {"bodies": len(lines), "events": 0, "duplicates": len(EXPECTED[SCENARIO.stem]), "unknown": 0,
                     "dead letters": 0}


def test_replay_of_a_folder_takes_every_body_in_name_order(env):
    result = counts(run("replay", str(FIXTURES / "cloudapi")))
    assert result["bodies"] == len(list((FIXTURES / "cloudapi").glob("*.json")))
    assert result["unknown"] >= 4  # unsupported, unknown, a future type...


def test_customers_json_has_the_promised_shape_and_customer_finds_any_alias(env):
    run("replay", str(SCENARIO))
    customers = json.loads(run("customers", "--format", "json"))
    assert customers
    for view in customers:
        assert CUSTOMER_FIELDS <= set(view)
        assert COUNTER_FIELDS <= set(view["counters"])
        assert set(view["orders"]) >= {"count", "value"}
        assert set(view["value"]) == {"historic", "expected_90d", "p_alive"}
        assert view["rfm"] is None or set(view["rfm"]) == {"r", "f", "m", "score"}
        for instant in ("first_seen_at", "last_inbound_at"):
            assert view[instant] is None or view[instant].endswith("Z")
    with_phone = next(view for view in customers if view["wa_id"])
    by_plus = json.loads(run("customer", "+" + with_phone["wa_id"], "--format", "json"))
    by_bsuid = json.loads(run("customer", with_phone["user_id"] or with_phone["key"], "--format", "json"))
    assert by_plus == by_bsuid == {**with_phone, "tier_history": by_plus["tier_history"], "reminders": []}
    assert by_plus["tier_history"][0]["from"] is None and by_plus["tier_history"][-1]["to"] == with_phone["tier"]
    assert with_phone["key"] in run("customer", with_phone["key"])
    csv_lines = run("customers", "--format", "csv").strip().splitlines()
    assert len(csv_lines) == len(customers) + 1


def test_replay_over_http_signs_every_body_and_the_worker_processes_them(env, web_server, drain):
    output = run("replay", str(SCENARIO), "--url", web_server, "--secret", APP_SECRET)
    assert "all acknowledged" in output
    drain()
    assert json.loads(run("customers", "--format", "json"))


def test_replay_over_http_fails_on_a_refused_body(env, web_server):
    output = run("replay", str(SCENARIO), "--url", web_server, "--secret", "wrong-secret", expect=1)
    assert "401" in output and str(SCENARIO) in output


@pytest.mark.parametrize(
    "args, message",
    [
        (["replay", "no/such/file.json"], "no such file"),
        (["customer", "nobody"], "no customer is known as 'nobody'"),
        (["replay", str(SCENARIO), "--now", "yesterday"], "--now='yesterday' is not an ISO-8601 instant"),
    ],
)
def test_bad_input_gets_one_clear_line(env, args, message):
    output = run(*args, expect=1)
    assert message in output
    assert "Traceback" not in output


def test_a_bad_setting_is_named_in_one_line(env, monkeypatch):
    monkeypatch.setenv("WAPULSE_BATCH_SIZE", "lots")
    output = run("customers", expect=1)
    assert "WAPULSE_BATCH_SIZE='lots' must be a whole number" in output


def test_wapulse_toml_extends_the_keyword_signals(env, monkeypatch, tmp_path):
    config = tmp_path / "wapulse.toml"
    config.write_text('[signals.competitor_mention]\nkeywords = ["alibaba"]\n[signals.price_inquiry]\nkeywords = ["tarifa"]\n')
    monkeypatch.setenv("WAPULSE_CONFIG", str(config))
    reread_environment()
    body = json.loads((FIXTURES / "cloudapi" / "messages__text.json").read_bytes())
    body["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"] = "Alibaba sells it cheaper, tarifa?"
    path = tmp_path / "body.json"
    path.write_bytes(json.dumps(body, separators=(",", ":")).encode())
    run("replay", str(path))
    (view,) = json.loads(run("customers", "--format", "json"))
    assert {"competitor_mention", "price_inquiry", "question"} <= set(view["signals"])


def test_a_broken_wapulse_toml_is_reported_not_thrown(env, monkeypatch, tmp_path):
    config = tmp_path / "wapulse.toml"
    config.write_text("[signals.price_inquiry]\nkeywords = [3]\n")
    monkeypatch.setenv("WAPULSE_CONFIG", str(config))
    output = run("replay", str(SCENARIO), expect=1)
    assert str(config) in output and "Traceback" not in output


def test_purge_deletes_old_archived_bodies_and_keeps_the_counters(env, engine, monkeypatch):
    run("replay", str(SCENARIO))
    now = datetime.now(UTC).isoformat()
    monkeypatch.setenv("WAPULSE_NOW", now)
    before = json.loads(run("customers", "--format", "json"))
    assert "deleted 0 archived bodies" in run("purge", "--older-than", "1")
    monkeypatch.setenv("WAPULSE_NOW", (datetime.now(UTC) + timedelta(days=3)).isoformat())
    lines = len(SCENARIO.read_bytes().splitlines())
    assert f"deleted {lines} archived bodies" in run("purge", "--older-than", "1")
    with engine.connect() as connection:
        assert connection.execute(select(RawBody.__table__)).all() == []
    monkeypatch.setenv("WAPULSE_NOW", now)
    assert json.loads(run("customers", "--format", "json")) == before


TIER_MOVES = FIXTURES / "scenarios" / "messages__timeline__tier_moves.jsonl"


def test_sweep_customers_by_tier_and_the_card_with_its_history(env, monkeypatch, tmp_path):
    monkeypatch.setenv("WAPULSE_NOW", "2026-09-27T10:00:00Z")  # restored after the test
    week = tmp_path / "week.jsonl"
    week.write_bytes(b"\n".join(TIER_MOVES.read_bytes().splitlines()[:-1]))
    run("replay", str(week), "--now", "2026-09-27T10:00:00Z")
    (hot,) = json.loads(run("customers", "--tier", "hot", "--format", "json"))
    assert hot["wa_id"] == "919812345670" and hot["tier_since"] == "2026-09-25T09:40:00Z"
    later = "2026-10-03T12:00:00Z"  # each command's --now is its own: none leaks into the next
    assert "customers due: 1  tier changes: 1" in run("sweep", "--now", later)
    assert "customers due: 0  tier changes: 0" in run("sweep", "--now", later)
    assert json.loads(run("customers", "--tier", "hot", "--format", "json", "--now", later)) == []
    card = run("customer", "919812345670", "--now", later)
    assert "2026-10-03T09:50:00Z  hot -> warm  (time)" in card
    assert "2026-09-25T09:40:00Z  warm -> hot  (event)" in card
    before = json.loads(run("customer", "919812345670", "--format", "json", "--now", later))
    assert "failed_bodies: 0" in run("rebuild", "--now", later)
    assert json.loads(run("customer", "919812345670", "--format", "json", "--now", later)) == before
    assert os.environ["WAPULSE_NOW"] == "2026-09-27T10:00:00Z"
    assert "Usage" in run("customers", "--tier", "lukewarm", expect=2)


@pytest.mark.parametrize("tiers", ['preset = "retail"', "hot_days = 0", "hot_days = 40"])
def test_a_bad_tier_threshold_stops_the_command_with_one_line(env, monkeypatch, tmp_path, tiers):
    config = tmp_path / "wapulse.toml"
    config.write_text(f"[tiers]\n{tiers}\n")
    monkeypatch.setenv("WAPULSE_CONFIG", str(config))
    output = run("sweep", expect=1)
    assert output.startswith("Error: ") and "[tiers]" in output and "Traceback" not in output


@responses.activate
def test_owners_import_then_reminders_list_show_and_retry(env, monkeypatch, tmp_path):
    """An imported owner gets the went_cold reminder; a refused delivery is listed, then retried."""
    hook = "https://crm.example.test/hook"
    responses.post(hook, status=404)
    responses.post(hook, status=200)
    config = tmp_path / "wapulse.toml"
    config.write_text(
        f'[[reps]]\nid = "ana"\nchannels = [{{ type = "webhook", url = "{hook}", secret = "s" }}]\n'
        f'[[reps]]\nid = "ben"\nchannels = [{{ type = "webhook", url = "{hook}", secret = "s" }}]\n'
        '[owners]\ndefault = "ana"\n'
    )
    monkeypatch.setenv("WAPULSE_CONFIG", str(config))
    run("replay", str(FIXTURES / "cloudapi" / "messages__text.json"), "--now", "2026-11-12T18:00:00Z")  # no news
    owners = tmp_path / "owners.csv"
    owners.write_text("customer,rep\nUS.13491208655302741918,zoe\n")
    assert "'zoe' is not a rep" in run("owners", "import", str(owners), expect=1)
    owners.write_text("customer,rep\n+16505550000,ben\n")
    assert "1 customers in" in run("owners", "import", str(owners), expect=1)
    owners.write_text("customer,rep\nUS.13491208655302741918,ben\n")
    assert "1 owners set" in run("owners", "import", str(owners))

    run("sweep", "--now", "2026-12-10T18:00:00Z")
    monkeypatch.setenv("WAPULSE_NOW", "2026-12-10T18:00:00Z")
    reread_environment()
    deliver_due()  # the reminders worker's job
    (failed,) = json.loads(run("reminders", "--status", "failed", "--format", "json"))
    assert (failed["rule"], failed["rep"], failed["channel"], failed["last_error"]) == ("went_cold", "ben", "webhook",
                                                                                      "HTTP 404")
    assert "1 reminder deliveries" in run("reminders")
    assert "no failed reminder delivery has id 999" in run("reminders", "retry", "999", expect=1)
    assert "is due again" in run("reminders", "retry", str(failed["delivery"]))
    deliver_due()
    card = json.loads(run("customer", "16505551234", "--format", "json"))
    assert card["owner"] == "ben"
    assert [(r["rule"], r["status"]) for r in card["reminders"]] == [("went_cold", "sent")]
    assert len(responses.calls) == 2


def test_replay_of_bodies_that_are_not_json_names_them_counts_the_dead_letters_and_fails(env, tmp_path):
    good = SCENARIO.read_bytes().splitlines()[0]
    recording = tmp_path / "mixed.jsonl"
    recording.write_bytes(good + b"\n{not json\n" + good.replace(b"wamid.", b"wamid.x") + b"\n" + b"[1,\n")
    broken = tmp_path / "broken.json"
    broken.write_bytes(b'{"object": "whatsapp_business_account", "entry": [}')
    output = run("replay", str(recording), str(broken), expect=1)
    lines = output.strip().splitlines()
    assert lines[-1] == f"Error: 3 of 5 bodies are not JSON and were kept as dead letters (wapulse dead-letters): " \
                        f"{recording}:2, {recording}:4, {broken}"
    assert counts(lines[-2]) == {"bodies": 5, "events": counts(lines[-2])["events"], "duplicates": 0, "unknown": 0,
                                 "dead letters": 3}
    assert len(run("dead-letters").strip().splitlines()) == 1 + 3


@pytest.mark.parametrize("name, content", [("empty.json", b""), ("blank.jsonl", b"\n  \n"), ("spaces.json", b"  \n")])
def test_replay_of_a_file_without_a_body_is_refused_and_hands_off_nothing(name, content, env, tmp_path, redis):
    path = tmp_path / name
    path.write_bytes(content)
    assert run("replay", str(path), expect=1).strip() == f"Error: {path}: no body to replay in this file"
    assert redis.xlen("wapulse:inbox") == 0


def test_control_characters_in_names_reach_the_terminal_as_visible_escapes(env, tmp_path):
    """A name can hold a newline, an ESC sequence that retitles the terminal, a right-to-left
    override: tables keep one line a customer and the terminal obeys none of them."""
    name = "Ana\n\x1b]0;owned\x07\u202e\x9b31m"
    body = json.loads(SCENARIO.read_bytes().splitlines()[0])
    value = body["entry"][0]["changes"][0]["value"]
    value["contacts"][0]["profile"]["name"] = name
    recording = tmp_path / "named.json"
    recording.write_text(json.dumps(body))
    run("replay", str(recording))
    key = value["contacts"][0].get("wa_id") or value["contacts"][0]["user_id"]
    for output in (run("customers"), run("customer", key)):
        assert not any(character in output for character in "\x1b\x07\u202e\x9b")
        assert "Ana\\x0a\\x1b]0;owned\\x07\\u202e\\x9b31m" in output
    table = run("customers").strip().splitlines()
    assert len(table) == 1 + 1 + 1  # header, one customer, the count


@pytest.mark.slow
def test_an_in_process_replay_goes_to_its_own_database_while_a_stack_runs_on_another(env, tmp_path, redis):
    """The README's time travel beside `make run`: the running workers never take the bodies."""
    live, tour = tmp_path / "live.db", tmp_path / "tour.db"
    environment = {**os.environ, "DATABASE_URL": f"sqlite:///{live}", "PYTHONPATH": str(ROOT)}
    run_cli = [sys.executable, "-m", "wapulse.cli"]
    subprocess.run([*run_cli, "db", "upgrade"], env=environment, check=True, capture_output=True)
    worker = subprocess.Popen([*run_cli, "worker"], env=environment, cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        replayed = subprocess.run([*run_cli, "replay", str(TIER_MOVES), "--now", "2027-02-05T00:00:00Z"],
                                  env={**environment, "DATABASE_URL": f"sqlite:///{tour}"}, cwd=ROOT,
                                  capture_output=True, text=True, timeout=120)
        assert replayed.returncode == 0, replayed.stderr
        time.sleep(2)  # a worker that took anything would have written it by now
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    with sqlite3.connect(tour) as connection:
        assert connection.execute("SELECT count(*) FROM customer").fetchone()[0] == 2
    with sqlite3.connect(live) as connection:
        assert connection.execute("SELECT count(*) FROM customer").fetchone()[0] == 0


def test_erase_asks_first_and_says_what_it_removed(env, monkeypatch):
    monkeypatch.setenv("WAPULSE_SECRET_KEY", "s" * 32)
    run("replay", str(FIXTURES / "cloudapi" / "messages__text.json"))
    declined = CliRunner().invoke(main, ["erase", "16505551234"], input="n\n")
    assert declined.exit_code == 1 and "Aborted" in declined.output
    assert "Sheena Nelson" in run("customer", "16505551234")
    assert "events: 1  bodies deleted: 1  bodies redacted: 0" in run("erase", "+16505551234", "--yes")
    assert run("erase", "16505551234", "--yes", expect=1).strip() == "Error: no customer is known as '16505551234'"
    monkeypatch.delenv("WAPULSE_SECRET_KEY")
    assert "WAPULSE_SECRET_KEY" in run("erase", "16505551234", expect=1)  # said before asking anything
