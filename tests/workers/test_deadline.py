"""One reminder send ends by its deadline whatever the peer does: say nothing, trickle its answer
a byte at a time (which no read timeout catches), drag a TLS handshake or an SMTP greeting."""

from __future__ import annotations

import time

import pytest

from scoring.reps import Channel
from tests.peers import answer, hang, peer, read_request, reset, trickle
from workers import channels
from workers.deadline import Deadline

OUTGOING = channels.Outgoing("rem_1", {"type": "reminder", "id": "rem_1"}, "Went cold", "text", "text", None)
ACCOUNTS = channels.Accounts()


def webhook_to(url: str) -> Channel:
    return Channel("webhook", {"url": url, "secret": "s"})


def send_within(channel: Channel, deadline_s: float, accounts: channels.Accounts = ACCOUNTS) -> BaseException | None:
    try:
        channels.send(channel, OUTGOING, accounts, deadline_s)
    except (channels.RetryLater, channels.Refused) as error:
        return error
    return None


@pytest.mark.fault("a reminder peer that trickles its answer")
def test_an_answer_trickled_a_byte_at_a_time_is_cut_at_the_deadline():
    """Each byte comes well within the 10 s read timeout: only the deadline ends the request."""
    with peer(trickle(every_s=0.2)) as slow:
        failure = send_within(webhook_to(slow.url), 1)
        assert isinstance(failure, channels.RetryLater) and str(failure) == "no answer within 1 s"
        deadline = time.monotonic() + 10
        while slow.open and time.monotonic() < deadline:  # the peer sees its connection end
            time.sleep(0.05)
        assert slow.open == 0


def test_a_tls_handshake_dragged_a_byte_at_a_time_is_cut_at_the_deadline():
    server_hello_start = b"\x16\x03\x03\x00\x7a\x02\x00\x00\x76\x03\x03" + bytes(64)
    with peer(trickle(server_hello_start, every_s=0.2, greet=True)) as slow:
        failure = send_within(webhook_to(f"https://127.0.0.1:{slow.port}/hook"), 1)
        assert isinstance(failure, channels.RetryLater) and str(failure) == "no answer within 1 s"


def test_an_smtp_greeting_dragged_a_byte_at_a_time_is_cut_at_the_deadline():
    with peer(trickle(b"220 mail.example.test ESMTP\r\n", every_s=0.2, greet=True)) as slow:
        accounts = channels.Accounts(mail=channels.MailSettings(f"smtp://127.0.0.1:{slow.port}", "w@example.test"))
        failure = send_within(Channel("email", {"to": "ana@example.test"}), 1, accounts)
        assert isinstance(failure, channels.RetryLater) and str(failure) == "no answer within 1 s"


def redirect(location: bytes):
    def behave(connection, peer):
        read_request(connection)
        connection.sendall(b"HTTP/1.1 307 X\r\nLocation: " + location + b"\r\nContent-Length: 0\r\n\r\n")

    return behave


@pytest.mark.parametrize("location", [b"http://127.0.0.1:9/elsewhere", b"http://[::1/", b"http://\xff\xfe/"])
def test_a_redirect_is_refused_and_not_even_read(location):
    with peer(redirect(location)) as endpoint:
        failure = send_within(webhook_to(endpoint.url), 5)
    assert (type(failure), str(failure)) == (channels.Refused, "HTTP 307")


@pytest.mark.parametrize("behave, expected", [
    (hang, "no answer within 1 s"),
    (reset, "ConnectionError"),
    (answer(503), "HTTP 503"),
    (answer(200, after_s=0.1), None),
])
@pytest.mark.fault("a reminder peer that is silent, resets or fails")
def test_silent_resetting_and_failing_peers_are_worth_another_attempt(behave, expected):
    with peer(behave) as endpoint:
        failure = send_within(webhook_to(endpoint.url), 1)
    assert (str(failure) if failure else None) == expected
    assert failure is None or isinstance(failure, channels.RetryLater)


def test_a_deadline_that_passes_with_nothing_to_cut_leaves_the_exchange_alone():
    with Deadline(0.05) as deadline:
        time.sleep(0.2)
    assert deadline.expired
    with peer(answer(200)) as endpoint:
        assert send_within(webhook_to(endpoint.url), 5) is None
