"""A tiny raw-socket HTTP/1.1 server that misbehaves on purpose (a lying peer for bad-input tests).

Invariants: each request is parsed (request line, headers, Content-Length body) and handed to
the test's ``answer(request) -> Reply``; the reply's bytes are written exactly as given, so a
test can send a Content-Range that does not match, a body shorter than its Content-Length, a
308 without Range, and so on.  Every request is recorded.  Nothing here is shared with the
project's server.
"""

from __future__ import annotations

import dataclasses
import http.client
import socket
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any


@dataclasses.dataclass
class Request:
    """One parsed request."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes


@dataclasses.dataclass
class Reply:
    """What to send back: a status, headers, a body, and whether to close afterwards.

    ``send_length`` overrides Content-Length (a lie when it differs from ``len(body)``).
    """

    status: int
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    body: bytes = b""
    send_length: int | None = None
    close: bool = False


Tamper = Callable[[Request, int, dict[str, str], bytes], tuple[int, dict[str, str], bytes]]
"""Rewrites a forwarded answer: ``(request, status, headers, body) -> (status, headers, body)``."""

_REASONS = {
    200: "OK",
    206: "Partial Content",
    308: "Permanent Redirect",
    416: "Range Not Satisfiable",
}


class LyingServer:
    """Serve ``answer`` on 127.0.0.1 (ephemeral port) in background threads."""

    def __init__(self, answer: Callable[[Request], Reply]) -> None:
        self.answer = answer
        self.requests: list[Request] = []
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.endpoint = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._stop = False
        self._threads: list[threading.Thread] = []
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._accepter = threading.Thread(target=self._accept, daemon=True)

    def start(self) -> LyingServer:
        self._accepter.start()
        return self

    def stop(self) -> None:
        self._stop = True
        with suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() on Linux
        self._sock.close()
        with self._lock:
            for conn in self._conns:
                with suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()
        self._accepter.join(timeout=5)
        for thread in self._threads:
            thread.join(timeout=5)

    def _accept(self) -> None:
        while not self._stop:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with self._lock:
                self._conns.append(conn)
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        reader = conn.makefile("rb")
        try:
            while not self._stop:
                request = _read_request(reader)
                if request is None:
                    return
                with self._lock:
                    self.requests.append(request)
                reply = self.answer(request)
                conn.sendall(_encode(reply))
                if reply.close:
                    conn.shutdown(socket.SHUT_RDWR)
                    return
        except OSError:
            return
        finally:
            reader.close()
            conn.close()


def _read_request(reader: Any) -> Request | None:
    line = reader.readline()  # type: ignore[attr-defined]
    if not line:
        return None
    method, target, _ = line.decode("latin-1").split(" ", 2)
    headers: dict[str, str] = {}
    while True:
        raw = reader.readline()  # type: ignore[attr-defined]
        if raw in (b"\r\n", b"\n", b""):
            break
        key, _, value = raw.decode("latin-1").partition(":")
        headers[key.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        return Request(method, target, headers, _read_chunked(reader))
    length = int(headers.get("content-length", "0") or 0)
    body = reader.read(length) if length else b""  # type: ignore[attr-defined]
    return Request(method, target, headers, body)


def _read_chunked(reader: Any) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int(reader.readline().split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while reader.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(parts)
        parts.append(reader.read(size))
        reader.readline()  # the CRLF after the chunk


def _encode(reply: Reply) -> bytes:
    length = len(reply.body) if reply.send_length is None else reply.send_length
    lines = [f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, 'Status')}"]
    for key, value in reply.headers.items():
        lines.append(f"{key}: {value}")
    lines.append(f"Content-Length: {length}")
    if reply.close:
        lines.append("Connection: close")
    head = "\r\n".join(lines) + "\r\n\r\n"
    return head.encode("latin-1") + reply.body


@contextmanager
def lying_server(answer: Callable[[Request], Reply]) -> Iterator[LyingServer]:
    """Run a :class:`LyingServer` for the duration of a ``with`` block."""
    server = LyingServer(answer).start()
    try:
        yield server
    finally:
        server.stop()


class Forwarder:
    """Forward each request to ``upstream`` and pass the answer through ``tamper``.

    ``before`` sees each request first; a reply it returns is sent instead of forwarding.
    """

    def __init__(
        self, upstream: str, tamper: Tamper, before: Callable[[Request], Reply | None] | None = None
    ) -> None:
        self.upstream = urllib.parse.urlsplit(upstream)
        self.tamper = tamper
        self.before = before
        self.endpoint = ""  # the liar's own, set once it listens

    def __call__(self, request: Request) -> Reply:
        if self.before is not None and (reply := self.before(request)) is not None:
            return reply
        conn = http.client.HTTPConnection(self.upstream.netloc, timeout=30)
        try:
            headers = {k: v for k, v in request.headers.items() if k not in _HOP}
            conn.request(request.method, request.target, body=request.body or None, headers=headers)
            response = conn.getresponse()
            body = response.read()
            answer = {k.lower(): v for k, v in response.getheaders() if k.lower() not in _HOP}
            status = response.status
        finally:
            conn.close()
        if "location" in answer:  # the session URL must lead back through the liar
            answer["location"] = answer["location"].replace(
                f"{self.upstream.scheme}://{self.upstream.netloc}", self.endpoint
            )
        status, answer, body = self.tamper(request, status, answer, body)
        return Reply(status, answer, body)


_HOP = {"host", "content-length", "transfer-encoding", "connection"}


@contextmanager
def serve_forwarding(
    upstream: str, tamper: Tamper, before: Callable[[Request], Reply | None] | None = None
) -> Iterator[Any]:
    """A liar forwarding to ``upstream``, for the duration of a ``with`` block."""
    forwarder = Forwarder(upstream, tamper, before)
    with lying_server(forwarder) as liar:
        forwarder.endpoint = liar.endpoint
        yield liar
