"""Peers that misbehave, on real sockets: a rep's endpoint that never answers, trickles its answer
a byte at a time, resets the connection or answers late; each counts the connections it holds."""

from __future__ import annotations

import socket
import struct
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator


class Peer:
    """A TCP server on 127.0.0.1 that runs `behave(connection, peer)` for each connection in a
    thread of its own, and keeps count of connections accepted, open now, and open at most."""

    def __init__(self, behave: Callable[[socket.socket, "Peer"], None]):
        self._behave = behave
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port = self._listener.getsockname()[1]
        self.accepted = 0
        self.open = 0
        self.most_open = 0
        self.closed = threading.Event()
        self._lock = threading.Lock()
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def _serve(self) -> None:
        while not self.closed.is_set():
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.accepted += 1
                self.open += 1
                self.most_open = max(self.most_open, self.open)
            threading.Thread(target=self._handle, args=(connection,), daemon=True).start()

    def _handle(self, connection: socket.socket) -> None:
        try:
            with connection:
                self._behave(connection, self)
        except OSError:
            pass
        finally:
            with self._lock:
                self.open -= 1

    def wait_for(self, accepted: int, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while self.accepted < accepted:
            assert time.monotonic() < deadline, f"{self.accepted} of {accepted} connections came"
            time.sleep(0.02)

    def close(self) -> None:
        self.closed.set()
        self._listener.close()


@contextmanager
def peer(behave: Callable[[socket.socket, Peer], None]) -> Iterator[Peer]:
    server = Peer(behave)
    try:
        yield server
    finally:
        server.close()


def read_request(connection: socket.socket) -> bytes:
    """The request's head and as much body as has come (enough to know one was sent)."""
    connection.settimeout(10)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def hang(connection: socket.socket, peer: Peer) -> None:
    """Read the request, then say nothing until the client gives up or the test ends."""
    read_request(connection)
    connection.settimeout(None)
    while not peer.closed.is_set() and connection.recv(1):
        pass


def trickle(answer: bytes = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", every_s: float = 0.3, greet: bool = False):
    """Send `answer` one byte every `every_s` seconds, after reading the request (or at once, for a
    protocol whose server speaks first, as SMTP's greeting); each byte resets a read timeout."""

    def behave(connection: socket.socket, peer: Peer) -> None:
        if not greet:
            read_request(connection)
        for byte in answer * 1000:
            if peer.closed.is_set():
                return
            connection.sendall(bytes([byte]))
            time.sleep(every_s)

    return behave


def reset(connection: socket.socket, peer: Peer) -> None:
    """Read the request, then reset the connection (RST, not FIN)."""
    read_request(connection)
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def answer(status: int, after_s: float = 0.0):
    """Answer `status` with an empty body, `after_s` seconds after the request came."""

    def behave(connection: socket.socket, peer: Peer) -> None:
        read_request(connection)
        time.sleep(after_s)
        connection.sendall(f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())

    return behave
