"""The desk in a real browser: Playwright driving Debian's Chromium (`make test` installs it).
Each page is also saved as a screenshot at 1280 and 390 px wide under the run's folder
(printed at the end: `pytest -s` shows it), and must not scroll sideways at 390 px."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from store.models import Reminder
from tests.conftest import post_signed
from tests.webhook.conftest import NOW, PASSWORDS, body_from

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")
WIDTHS = (1280, 390)


@pytest.fixture(scope="module")  # Playwright's loop must be gone before other tests run asyncio
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory):
    folder = tmp_path_factory.mktemp("desk-screenshots")
    yield folder
    print(f"\ndesk screenshots: {folder}")


@pytest.fixture
def page(chromium, desk):
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, base_url=desk.url)
    page = context.new_page()
    page.on("dialog", lambda dialog: pytest.fail(f"a script ran: {dialog.message}"))
    yield page
    context.close()


def sign_in(page, who: str) -> None:
    page.goto("/signin")
    page.fill("input[name=rep]", who)
    page.fill("input[name=password]", PASSWORDS[who])
    page.click("button.primary")
    page.wait_for_url("**/followups")


def look(page, screenshots: Path, name: str) -> None:
    """Screenshots at both widths; at 390 px the page itself must not scroll sideways."""
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(screenshots / f"{name}-{width}.png"), full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), (name, width)
    page.set_viewport_size({"width": 1280, "height": 900})


def test_sign_in_by_link_then_work_through_a_follow_up(page, desk, screenshots):
    from tests.webhook.test_desk import signin_link

    page.goto(signin_link("ana").removeprefix(desk.url))
    look(page, screenshots, "link")
    page.click("button:has-text('Sign in as Ana Ruiz')")
    page.wait_for_url("**/followups")
    assert page.locator("article.followup").count() == 1
    look(page, screenshots, "followups")
    page.click("article.followup button:has-text('Done')")
    page.wait_for_selector("text=Nothing is waiting on you")
    with desk.engine.connect() as connection:
        assert connection.execute(select(Reminder.state).where(Reminder.rep == "ana")).scalar_one() == "closed"


def test_a_used_link_is_refused(page, desk):
    from tests.webhook.test_desk import signin_link

    link = signin_link("ana").removeprefix(desk.url)
    page.goto(link)
    page.click("button:has-text('Sign in as Ana Ruiz')")
    page.wait_for_url("**/followups")
    page.context.clear_cookies()
    page.goto(link)
    page.click("button:has-text('Sign in as Ana Ruiz')")
    assert page.locator("h1").inner_text() == "This link does not work"


def test_snooze_and_reassign_from_the_page(page, desk):
    sign_in(page, "ana")
    page.select_option("article.followup select[name=until]", "tomorrow")
    page.click("article.followup button:has-text('Snooze')")
    page.wait_for_selector("summary:has-text('Snoozed (1)')")
    page.click("summary:has-text('Snoozed (1)')")
    page.select_option("details article.followup select[name=to]", "ben")
    page.click("details article.followup button:has-text('Reassign')")
    page.wait_for_selector("text=Nothing is waiting on you")
    with desk.engine.connect() as connection:
        states = connection.execute(select(Reminder.rep, Reminder.state).order_by(Reminder.rep)).all()
    assert [tuple(row) for row in states] == [("ana", "closed"), ("ben", "open"), ("ben", "open")]


def test_a_new_reminder_appears_without_a_reload(page, desk, web_server, drain):
    sign_in(page, "ana")
    assert page.locator("article.followup").count() == 1
    assert post_signed(web_server, body_from("34600000003", "Carla Días", "wamid.carla1", NOW - 3 * 3600)).status_code == 200
    drain()  # the worker commits it and owes Ana (next in turn) an unanswered reminder
    page.wait_for_selector("article.followup:has-text('Carla Días')", timeout=12_000)
    assert page.locator("article.followup").count() == 2


def test_another_reps_customer_is_403_and_names_nobody(page, desk, screenshots):
    sign_in(page, "ben")
    answer = page.goto("/customers/16505551234")
    assert answer.status == 403 and "Sheena" not in page.content()
    look(page, screenshots, "forbidden")


def test_the_board_filters_and_search_and_the_customer_timeline(page, screenshots):
    sign_in(page, "maria")
    page.goto("/customers")
    assert page.locator("li.customer-row").count() == 2
    look(page, screenshots, "customers")
    page.fill("input[name=q]", "bob")
    page.click("form.filters >> text=Show")
    page.wait_for_url("**q=bob**")
    assert page.locator("li.customer-row").count() == 1
    page.click("li.customer-row a")
    page.wait_for_selector("ol.timeline")
    assert "They sent a text" in page.locator("ol.timeline").inner_text()
    assert page.locator("h1").inner_text().startswith("Bob <script>alert(1)</script>")  # shown as text, never run
    look(page, screenshots, "customer")


def test_a_form_whose_csrf_token_was_tampered_with_is_refused(page, desk):
    sign_in(page, "ana")
    page.eval_on_selector_all("input[name=csrf_token]", "inputs => inputs.forEach(input => input.value = 'forged')")
    page.click("article.followup button:has-text('Done')")
    page.wait_for_selector("h1:has-text('Refused')")
    with desk.engine.connect() as connection:
        assert connection.execute(select(Reminder.state).where(Reminder.rep == "ana")).scalar_one() == "open"


def test_the_sign_in_page_at_both_widths(page, screenshots):
    page.goto("/")
    page.wait_for_url("**/signin")
    look(page, screenshots, "signin")


def test_the_team_page_for_a_manager(page, screenshots):
    sign_in(page, "maria")
    page.click("header nav >> text=Team")
    page.wait_for_url("**/team")
    assert page.locator("section.team-card").count() >= 2
    look(page, screenshots, "team")


def test_the_report_page_with_its_charts_and_a_download(page, screenshots, tmp_path):
    sign_in(page, "maria")
    page.click("header nav >> text=Report")
    page.wait_for_url("**/report")
    assert page.locator("div.report section").count() >= 10 and page.locator("div.report img.chart").count() >= 3
    assert page.evaluate("[...document.querySelectorAll('div.report img.chart')].every(i => i.naturalWidth > 0)")
    look(page, screenshots, "report")
    page.select_option("select[name=owner]", "ana")
    page.click("form.filters >> text=Show")
    page.wait_for_url("**owner=ana**")
    assert "Scope: owner ana." in page.locator("div.report").inner_text()
    with page.expect_download() as started:
        page.click("p.downloads a:has-text('XLSX')")
    saved = tmp_path / started.value.suggested_filename
    started.value.save_as(saved)
    assert saved.suffix == ".xlsx" and saved.read_bytes()[:2] == b"PK"


def test_the_board_while_a_history_back_fill_is_under_way(page, screenshots, redis, drain):
    from tests.workers.test_import_chat import CHUNKS
    from tests.workers.test_tiers import process

    process(redis, drain, [CHUNKS[0]])
    sign_in(page, "maria")
    page.goto("/customers")
    assert "still arriving from WhatsApp: 40%" in page.locator("p.backfill").inner_text()
    look(page, screenshots, "board-backfill")
