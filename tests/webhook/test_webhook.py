"""The webhook's HTTP contract (PRODUCT.md §3), against the real server and the real Redis."""

from __future__ import annotations

import requests
from redis import Redis

from cloudapi.signature import sign
from tests.conftest import APP_SECRET, VERIFY_TOKEN, post_signed
from webhook import create_app, is_json
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


def test_redis_down_means_503_so_meta_retries(monkeypatch):
    unreachable = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    settings = Settings(app_secret=APP_SECRET, verify_token=VERIFY_TOKEN)
    client = create_app(settings, redis=unreachable).test_client()
    response = client.post(
        "/webhook", data=BODY, headers={"Content-Type": "application/json", "X-Hub-Signature-256": sign(APP_SECRET, BODY)}
    )
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert client.get("/health").status_code == 503


def test_json_check_accepts_what_python_accepts_and_refuses_the_rest():
    assert is_json(b'{"a":[1,2,{"b":null}]}')
    assert is_json(b'{"a":"\\ud83d"}')  # a lone surrogate: msgspec refuses, JSON allows
    assert is_json(b"[1]")
    assert not is_json(b'{"a":1,}')
    assert not is_json(b"")
    assert not is_json(b'{"a":1} trailing')


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


def test_a_body_of_unknown_length_the_server_did_not_frame_is_411_and_stores_nothing(redis):
    client = create_app(Settings(app_secret=APP_SECRET), redis=redis).test_client()
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": sign(APP_SECRET, BODY)}
    response = client.post("/webhook", data=BODY, headers=headers, environ_overrides={"CONTENT_LENGTH": ""})
    assert response.status_code == 411
    assert stored(redis) == []


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
    client = create_app(Settings(app_secret=APP_SECRET), redis=redis).test_client()
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": sign(APP_SECRET, BODY)}
    response = client.post("/webhook", data=BODY, headers=headers, environ_overrides={"CONTENT_LENGTH": "1x"})
    assert response.status_code == 400 and b"not a number" in response.data
    assert stored(redis) == []
