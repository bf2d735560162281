"""A tiny raw-socket HTTP server that replays canned responses, for the differential suite.

Each request, on any connection, takes the next item of the script: a ``Reply`` (bytes
sent as is; ``close=True`` closes the connection afterwards, e.g. after a body cut
short), or a function of the request that returns one (e.g. to honour its Range).
Requests are recorded (method, target, lower-cased headers, body) so the two
implementations' wire traffic can be compared with what the server actually received.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import threading
from collections.abc import Callable, Iterable


@dataclasses.dataclass(frozen=True)
class Reply:
    """One canned response: raw bytes, and whether to close the connection after it."""

    data: bytes
    close: bool = False


@dataclasses.dataclass(frozen=True)
class Received:
    """One request as the server read it."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes


def response(
    status: int,
    reason: str,
    headers: dict[str, str],
    body: bytes = b"",
    *,
    length: int | None = None,
    close: bool = False,
) -> Reply:
    """Build a response; ``length`` overrides Content-Length (a longer one cuts the body)."""
    lines = [f"HTTP/1.1 {status} {reason}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"Content-Length: {len(body) if length is None else length}")
    if close:
        lines.append("Connection: close")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return Reply(head + body, close=close)


class ScriptedServer:
    """Serve ``script`` in order, one item per request; 500 once it runs out."""

    def __init__(self, script: Iterable[Reply | Callable[[Received], Reply]]) -> None:
        self._script = list(script)
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self.received: list[Received] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accepter = threading.Thread(target=self._accept, daemon=True)

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def __enter__(self) -> ScriptedServer:
        self._accepter.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        with self._lock:
            for conn in self._conns:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
        self._accepter.join(5)
        for thread in self._threads:
            thread.join(5)
        self._listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._conns.append(conn)
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _next(self, request: Received) -> Reply:
        with self._lock:
            item = self._script.pop(0) if self._script else None
        if item is None:
            return response(500, "Script Exhausted", {}, b"no more canned responses", close=True)
        return item if isinstance(item, Reply) else item(request)

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        pending = b""
        with conn:
            while not self._stop.is_set():
                try:
                    while b"\r\n\r\n" not in pending:
                        data = conn.recv(65536)
                        if not data:
                            return
                        pending += data
                    head, _, pending = pending.partition(b"\r\n\r\n")
                    request_line, *header_lines = head.decode("latin-1").split("\r\n")
                    method, target, _ = request_line.split(" ", 2)
                    headers: dict[str, str] = {}
                    for line in header_lines:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                    length = int(headers.get("content-length", "0"))
                    while len(pending) < length:
                        data = conn.recv(65536)
                        if not data:
                            return
                        pending += data
                    body, pending = pending[:length], pending[length:]
                    request = Received(method, target, headers, body)
                    with self._lock:
                        self.received.append(request)
                    reply = self._next(request)
                    conn.sendall(reply.data)
                    if reply.close:
                        conn.shutdown(socket.SHUT_RDWR)
                        return
                except (OSError, ValueError):
                    return
