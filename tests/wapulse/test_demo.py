"""`wapulse demo`: a business of its own, replayed through the real inbox and worker into
var/demo.db, never into the live database, and a sign-in link for each of its people."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys

from tests.conftest import REDIS_URL, ROOT
from wapulse.demo import business


def test_the_same_seed_makes_the_same_business():
    assert business(120, 1_796_000_000, seed=7).bodies == business(120, 1_796_000_000, seed=7).bodies
    assert business(120, 1_796_000_000, seed=7).bodies != business(120, 1_796_000_000, seed=8).bodies


def test_demo_builds_a_business_from_behaviour_in_its_own_database_and_prints_sign_in_links(tmp_path, redis):
    live = tmp_path / "live.db"
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": f"sqlite:///{live}",
                   "REDIS_URL": REDIS_URL, "WHATSAPP_APP_SECRET": "s",
                   "WAPULSE_SECRET_KEY": "k" * 40}
    environment.pop("WAPULSE_CONFIG", None)
    demo = subprocess.run([sys.executable, "-m", "wapulse.cli", "demo", "--customers", "300", "--no-serve"],
                          cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=600)
    assert demo.returncode == 0, demo.stderr[-2000:]
    links = [line for line in demo.stdout.splitlines() if "/signin/link?token=" in line]
    assert [line.split(":")[0].strip() for line in links] == [
        "Ana Ruiz (rep)", "Ben Okafor (rep)", "Chen Wei (rep)", "María López (manager)"]
    assert all("http://127.0.0.1:8001/signin/link?token=" in line for line in links)
    assert not live.exists()  # the live database was never touched
    with sqlite3.connect(tmp_path / "var" / "demo.db") as connection:
        customers, countries, numbers = connection.execute(
            "SELECT count(*), count(DISTINCT country), count(DISTINCT phone_number_id) FROM customer").fetchone()
        tiers = dict(connection.execute("SELECT tier, count(*) FROM customer GROUP BY tier").fetchall())
        open_followups = dict(connection.execute(
            "SELECT rep, count(*) FROM reminder WHERE state = 'open' GROUP BY rep").fetchall())
        campaigns = connection.execute("SELECT count(*) FROM outbound_message WHERE campaign IS NOT NULL").fetchone()[0]
    assert customers == 300 and countries >= 5 and numbers == 2
    assert all(tiers.get(tier, 0) > 10 for tier in ("hot", "warm", "cold", "dead")), tiers
    assert set(open_followups) == {"ana", "ben", "chen"} and min(open_followups.values()) >= 3, open_followups
    assert campaigns > 0


def test_a_second_demo_on_a_busy_port_says_so_before_it_touches_the_first_ones_database(tmp_path, redis):
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "demo.db").write_bytes(b"the demo being served")
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "REDIS_URL": REDIS_URL, "WHATSAPP_APP_SECRET": "s",
                   "WAPULSE_SECRET_KEY": "k" * 40}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        demo = subprocess.run([sys.executable, "-m", "wapulse.cli", "demo", "--customers", "50", "--port", port],
                              cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=60)
    assert demo.returncode == 1
    assert demo.stderr.strip() == (f"Error: port {port} is taken (a demo or wapulse web runs there): stop it, or "
                                   "choose another with --port")
    assert (tmp_path / "var" / "demo.db").read_bytes() == b"the demo being served"
