"""An overall deadline for one blocking exchange with a peer: an HTTP request, an SMTP session.

Socket timeouts bound each read, not the exchange: a server that sends one byte every few
seconds holds a request for as long as it likes. Under a `Deadline`, every socket the exchange
opens is watched (through the connection classes below, or `watch`), and when time is up a timer
shuts them down, which wakes a blocked read or write at once; the caller then sees a connection
error and `Deadline.expired` says why.
"""

from __future__ import annotations

import smtplib
import socket
import threading

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_current = threading.local()


class Deadline:
    """`with Deadline(seconds) as deadline:` around blocking I/O done in this thread."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._cut)
        self._timer.daemon = True

    def __enter__(self) -> Deadline:
        _current.deadline = self
        self._timer.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._timer.cancel()
        _current.deadline = None
        with self._lock:
            for duplicate in self._sockets:
                duplicate.close()
            self._sockets.clear()

    def watch(self, sock: socket.socket) -> None:
        """Cut `sock` at the deadline. A duplicate descriptor is kept, so a socket that TLS
        wraps (and detaches) is still reached: shutting down any descriptor of a connection
        ends it for all of them."""
        duplicate = sock.dup()
        with self._lock:
            self._sockets.append(duplicate)
            if self.expired:
                _shut(duplicate)

    def _cut(self) -> None:
        with self._lock:
            self.expired = True
            for duplicate in self._sockets:
                _shut(duplicate)


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:  # already closed by its owner
        pass


def watch(sock: socket.socket) -> None:
    """Put `sock` under this thread's deadline, if one is running."""
    deadline = getattr(_current, "deadline", None)
    if deadline is not None:
        deadline.watch(sock)


# ---- requests: connections watched from the moment their socket exists ------------------------


class _WatchedHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        watch(sock)
        return sock


class _WatchedHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:  # before the TLS handshake, which a slow server can drag too
        sock = super()._new_conn()
        watch(sock)
        return sock


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class WatchedAdapter(HTTPAdapter):
    """A requests transport whose connections obey the deadline of the thread using them."""

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


# ---- smtplib: the socket watched before the server's greeting is read --------------------------


class WatchedSMTP(smtplib.SMTP):
    def _get_socket(self, host, port, timeout):
        sock = super()._get_socket(host, port, timeout)
        watch(sock)
        return sock


class WatchedSMTPSSL(smtplib.SMTP_SSL):
    def _get_socket(self, host, port, timeout):
        sock = socket.create_connection((host, port), timeout, self.source_address)
        watch(sock)  # before the TLS handshake
        return self.context.wrap_socket(sock, server_hostname=self._host)
