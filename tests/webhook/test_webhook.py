"""The webhook's HTTP contract, against the real server and the real Redis."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time

import pytest
import requests
from redis import Redis

from cloudapi.signature import sign
from tests.conftest import APP_SECRET, REDIS_URL, ROOT, VERIFY_TOKEN, post_signed
from webhook import intake as intake_module
from webhook.intake import BufferBudget, create_intake
from workers import inbox
from workers.settings import Settings

BODY = b'{"object":"whatsapp_business_account","entry":[]}'


def stored(redis: Redis) -> list[bytes]:
    return [fields[b"b"] for _, fields in redis.xrange(inbox.INBOX)]


def test_handshake_echoes_the_challenge_as_plain_text(web_server, redis):
    response = requests.get(
        web_server,
        params={"hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": VERIFY_TOKEN},
        timeout=5,
    )
    assert response.status_code == 200
    assert response.text == "1158201444"
    assert response.headers["Content-Type"].startswith("text/plain")


def test_handshake_with_a_wrong_token_or_mode_is_forbidden(web_server, redis):
    for params in (
        {"hub.mode": "subscribe", "hub.challenge": "1", "hub.verify_token": "wrong"},
        {"hub.mode": "unsubscribe", "hub.challenge": "1", "hub.verify_token": VERIFY_TOKEN},
        {},
    ):
        assert requests.get(web_server, params=params, timeout=5).status_code == 403


def test_a_signed_body_is_handed_off_byte_for_byte_and_acknowledged(web_server, redis):
    body = b'{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[]}],"x":"caf\\u00e9"}'
    response = post_signed(web_server, body)
    assert response.status_code == 200
    assert stored(redis) == [body]


def test_signature_failures_are_refused_and_store_nothing(web_server, redis):
    cases = [
        post_signed(web_server, BODY, secret="not-the-secret"),
        requests.post(web_server, data=BODY, headers={"Content-Type": "application/json"}, timeout=5),
        post_signed(web_server, BODY, **{"X-Hub-Signature-256": "sha1=abc"}),
        post_signed(web_server, BODY, **{"X-Hub-Signature-256": "sha256=" + "0" * 64}),
    ]
    assert [response.status_code for response in cases] == [401, 401, 401, 401]
    assert stored(redis) == []


def test_a_body_changed_after_signing_is_refused(web_server, redis):
    signed_for = b'{"object":"whatsapp_business_account","entry":[],"t":"caf\\u00e9"}'
    reencoded = '{"object":"whatsapp_business_account","entry":[],"t":"café"}'.encode()
    response = requests.post(
        web_server, data=reencoded,
        headers={"Content-Type": "application/json", "X-Hub-Signature-256": sign(APP_SECRET, signed_for)}, timeout=5,
    )
    assert response.status_code == 401
    assert stored(redis) == []


def test_wrong_content_type_is_415_and_stores_nothing(web_server, redis):
    response = post_signed(web_server, BODY, **{"Content-Type": "text/plain"})
    assert response.status_code == 415
    assert stored(redis) == []


def test_a_body_over_4_mib_is_413_and_stores_nothing(web_server, redis):
    body = b'{"x":"' + b"a" * (4 * 1024 * 1024) + b'"}'
    response = post_signed(web_server, body)
    assert response.status_code == 413
    assert stored(redis) == []


def test_signed_non_json_is_400_and_kept_as_a_dead_letter(web_server, redis):
    response = post_signed(web_server, b'{"object": "whatsapp_business_account", "entry": [}')
    assert response.status_code == 400
    entries = redis.xrange(inbox.INBOX)
    assert len(entries) == 1 and entries[0][1][b"v"] == inbox.INVALID


def test_unknown_fields_and_types_are_acknowledged(web_server, redis):
    body = b'{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"value":{},"field":"brand_new"}]}]}'
    assert post_signed(web_server, body).status_code == 200


def test_redis_down_means_503_so_meta_retries():
    intake = create_intake(Settings(app_secret=APP_SECRET, verify_token=VERIFY_TOKEN, redis_url="redis://127.0.0.1:1/0"))
    status, headers, _ = call(intake, "POST", "/webhook", SIGNED, [BODY])
    assert status == 503 and headers[b"retry-after"]
    assert call(intake, "GET", "/health")[0] == 503


def test_a_charset_parameter_on_the_json_content_type_is_accepted(web_server, redis):
    response = post_signed(web_server, BODY, **{"Content-Type": "application/json; charset=UTF-8"})
    assert response.status_code == 200
    assert stored(redis) == [BODY]


def test_a_chunked_body_framed_by_the_server_is_read_whole(web_server, redis):
    """No Content-Length: granian frames the chunks for us, and the body arrives uncut."""
    response = requests.post(
        web_server, data=iter([BODY[:10], BODY[10:]]),
        headers={"Content-Type": "application/json", "X-Hub-Signature-256": sign(APP_SECRET, BODY)}, timeout=5,
    )
    assert response.status_code == 200 and stored(redis) == [BODY]


def test_a_body_of_unknown_length_that_is_not_chunked_is_411_and_stores_nothing(redis):
    intake = create_intake(Settings(app_secret=APP_SECRET, redis_url=REDIS_URL))
    headers = {name: value for name, value in SIGNED.items() if name != "Content-Length"}
    assert call(intake, "POST", "/webhook", headers, [BODY])[0] == 411
    assert stored(redis) == []


@pytest.mark.fault("Redis restarted under the webhook (lost scripts, killed connections)")
def test_the_hand_off_survives_a_restarted_redis_lost_scripts_and_killed_connections(web_server, redis):
    """A Redis restart flushes its scripts and drops every client: the next POST still lands."""
    posts = 12  # more than the server's threads: each has a connection to lose
    assert [post_signed(web_server, BODY).status_code for _ in range(posts)] == [200] * posts
    redis.script_flush()
    redis.client_kill_filter(_type="normal", skipme=True)
    assert [post_signed(web_server, BODY).status_code for _ in range(posts)] == [200] * posts
    assert stored(redis) == [BODY] * 2 * posts


def test_bad_framing_is_refused_before_reading_and_stores_nothing(redis):
    """What a real server rejects itself, checked on the app: a length that is not a number."""
    intake = create_intake(Settings(app_secret=APP_SECRET, redis_url=REDIS_URL))
    status, _, text = call(intake, "POST", "/webhook", {**SIGNED, "Content-Length": "1x"}, [BODY])
    assert status == 400 and b"not a number" in text
    assert stored(redis) == []


# ---- slow and hostile clients ----------------------------------------------------------------------


@pytest.mark.fault("slow connections on the webhook (bodies never finished)")
def test_a_hundred_connections_that_never_finish_their_bodies_hold_up_neither_meta_nor_health(web_server, redis):
    """Each promises 1,000 bytes and sends 10: the server reads bodies on its event loop, so they
    wait there and no thread is taken from Meta's POSTs or the health check."""
    port = int(web_server.rsplit(":", 1)[1].split("/")[0])
    stalled = []
    for _ in range(100):
        connection = socket.create_connection(("127.0.0.1", port))
        connection.sendall(b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                           b"Content-Length: 1000\r\n\r\n" + b'{"entry":[')
        stalled.append(connection)
    try:
        for _ in range(20):
            assert post_signed(web_server, BODY).status_code == 200
        assert requests.get(web_server.replace("/webhook", "/health"), timeout=5).status_code == 200
    finally:
        for connection in stalled:
            connection.close()
    assert stored(redis) == [BODY] * 20


def test_a_body_not_received_within_the_deadline_is_408_and_stores_nothing(redis):
    intake = create_intake(Settings(app_secret=APP_SECRET, redis_url=REDIS_URL, body_deadline_s=1))
    status, headers, text = call(intake, "POST", "/webhook", {**SIGNED, "Content-Length": "1000"}, [b"{"], stall=True)
    assert (status, headers[b"connection"], text) == (408, b"close", b"body not received within 1 s\n")
    status, _, _ = call(intake, "PUT", "/api/customers/x/owner", {"Content-Length": "50"}, [b"{"], stall=True)
    assert status == 408
    assert stored(redis) == []


@pytest.mark.parametrize("body", [b'{"a":"\xff"}', b'{"a":"caf\xc3"}', b'{"a":' + b"[" * 5000 + b"]" * 5000 + b"}",
                                  b"[" * 100_000 + b"]" * 100_000])
def test_invalid_utf8_and_nesting_no_decoder_follows_are_400_and_kept_as_dead_letters(body, web_server, redis):
    response = post_signed(web_server, body)
    assert (response.status_code, response.text) == (400, "body is not JSON (kept as a dead letter)\n")
    assert [(fields[b"b"], fields[b"v"]) for _, fields in redis.xrange(inbox.INBOX)] == [(body, inbox.INVALID)]


def test_a_second_server_on_a_busy_port_refuses_to_start(web_server):
    port = web_server.rsplit(":", 1)[1].split("/")[0]
    second = start_web(port)
    assert second.wait(timeout=60) == 1
    assert second.stderr.read().decode().strip().splitlines() == [
        f"Error: cannot listen on 127.0.0.1:{port}: another wapulse web runs there (set PORT to another port)"]


@pytest.mark.parametrize("hosts", [("127.0.0.1", "127.0.0.1"), ("0.0.0.0", "127.0.0.1")])
def test_of_two_servers_started_at_once_on_one_port_one_serves_and_the_other_refuses(hosts):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    servers = [start_web(port, host) for host in hosts]
    try:
        deadline = time.monotonic() + 60
        while all(server.poll() is None for server in servers) and time.monotonic() < deadline:
            time.sleep(0.1)
        refused = [server for server in servers if server.poll() is not None]
        assert len(refused) == 1 and refused[0].returncode == 1
        assert b"another wapulse web runs there" in refused[0].stderr.read()
        wait_until_serving(port)  # granian stopped while its worker starts can hang: let it start first
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=30)


def test_another_program_on_the_port_is_named_in_one_line():
    with socket.create_server(("127.0.0.1", 0)) as other:
        port = str(other.getsockname()[1])
        refused = start_web(port)
        assert refused.wait(timeout=60) == 1
        assert refused.stderr.read().decode().strip() == (
            f"Error: cannot listen on 127.0.0.1:{port}: Address already in use (set PORT to another port)")


def wait_until_serving(port: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}/health", timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.1)


def start_web(port: str, host: str = "127.0.0.1") -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "wapulse.cli", "web"], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env={**os.environ, "WHATSAPP_APP_SECRET": APP_SECRET, "PORT": port,
                                                         "HOST": host, "REDIS_URL": REDIS_URL, "WEB_CONCURRENCY": "1"})


# ---- an ASGI client for the intake, for what a real client cannot send ----------------------------


SIGNED = {"Content-Type": "application/json", "X-Hub-Signature-256": sign(APP_SECRET, BODY), "Content-Length": str(len(BODY))}


def call(app, method: str, path: str, headers: dict | None = None, chunks: list[bytes] = (), stall: bool = False):
    """(status, headers, body) of one request to an ASGI app; `stall`: the client sends `chunks`
    and then nothing, never finishing its body."""
    return asyncio.run(request(app, method, path, headers, chunks, stall))


async def request(app, method: str, path: str, headers: dict | None = None, chunks: list[bytes] = (),
                  stall: bool = False, client: str = "127.0.0.1"):
    incoming = [{"type": "http.request", "body": chunk, "more_body": stall or n < len(chunks) - 1}
                for n, chunk in enumerate(chunks or [b""])]
    sent = []

    async def receive():
        if incoming:
            return incoming.pop(0)
        await asyncio.sleep(3600)

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode(), "query_string": b"",
             "root_path": "", "scheme": "http", "http_version": "1.1", "server": ("127.0.0.1", 8000),
             "client": (client, 5000),
             "headers": [(name.lower().encode(), value.encode()) for name, value in (headers or {}).items()]}
    await app(scope, receive, send)
    start = next(message for message in sent if message["type"] == "http.response.start")
    return start["status"], dict(start["headers"]), b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def test_a_body_for_anything_but_metas_post_is_limited_to_1_mib():
    intake = create_intake(Settings(app_secret=APP_SECRET, redis_url=REDIS_URL))
    status, _, text = call(intake, "PUT", "/api/customers/x/owner", {"Content-Length": str(2 * 1024 * 1024)}, [b"{"])
    assert (status, text) == (413, b"body over 1 MiB\n")
    assert call(intake, "POST", "/api/owners", {"Transfer-Encoding": "chunked"}, [b"x" * 700_000] * 2)[0] == 413


def test_bodies_held_never_go_past_the_budget_in_all_or_the_share_of_one_client(redis):
    """A body that would take the process past its budget, or its client past their share, is
    refused (503: Meta retries); bodies count until they are answered, and the budget comes back."""
    intake = create_intake(Settings(app_secret=APP_SECRET, redis_url=REDIS_URL, body_deadline_s=1))
    intake.budget = BufferBudget(total=4 * len(BODY), per_client=2 * len(BODY) + len(BODY) // 2)

    async def run():
        stalled = asyncio.create_task(request(intake, "POST", "/webhook", {**SIGNED, "Content-Length": "1000"},
                                              [BODY * 2], stall=True, client="10.0.0.1"))
        await asyncio.sleep(0.1)
        same_client = await request(intake, "POST", "/webhook", SIGNED, [BODY], client="10.0.0.1")
        other_client = await request(intake, "POST", "/webhook", SIGNED, [BODY], client="10.0.0.2")
        also_stalled = asyncio.create_task(request(intake, "POST", "/webhook", {**SIGNED, "Content-Length": "1000"},
                                                   [BODY * 2], stall=True, client="10.0.0.3"))
        await asyncio.sleep(0.1)
        over_total = await request(intake, "POST", "/webhook", SIGNED, [BODY], client="10.0.0.4")
        timed_out = [(await stalled)[0], (await also_stalled)[0]]
        afterwards = await request(intake, "POST", "/webhook", SIGNED, [BODY], client="10.0.0.1")
        return [same_client[0], other_client[0], over_total[0], *timed_out, afterwards[0]], intake.budget.held

    assert asyncio.run(run()) == ([503, 200, 503, 408, 408, 200], 0)
    assert stored(redis) == [BODY, BODY]


def test_a_body_counts_against_the_budget_until_its_request_is_answered(redis):
    intake = create_intake(Settings(app_secret=APP_SECRET, redis_url=REDIS_URL))
    intake.budget = BufferBudget(total=len(BODY) + 10)
    answered = asyncio.Event()
    real_hand_off = intake._hand_off

    async def slow_hand_off(body, valid_json=True):
        await answered.wait()
        return await real_hand_off(body, valid_json=valid_json)

    intake._hand_off = slow_hand_off

    async def run():
        first = asyncio.create_task(request(intake, "POST", "/webhook", SIGNED, [BODY]))
        await asyncio.sleep(0.1)
        second = await request(intake, "POST", "/webhook", SIGNED, [BODY], client="10.0.0.9")
        answered.set()
        return (await first)[0], second[0], intake.budget.held

    assert asyncio.run(run()) == (200, 503, 0)


def test_an_unexpected_error_answers_503_and_is_counted_with_the_other_answers(redis, monkeypatch):
    from workers import metrics

    def broken(*args, **kwargs):
        raise KeyError("a bug")

    monkeypatch.setattr(intake_module, "_refusal_before_reading", broken)
    intake = create_intake(Settings(app_secret=APP_SECRET, redis_url=REDIS_URL))
    before = metrics.ACKNOWLEDGED.labels(code="503")._value.get()
    assert call(intake, "POST", "/webhook", SIGNED, [BODY])[0] == 503
    assert metrics.ACKNOWLEDGED.labels(code="503")._value.get() == before + 1
