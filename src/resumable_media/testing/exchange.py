"""One HTTP request/response exchange of the loopback server: parsing, body reading, replies.

Invariants: the response head is written at most once (``head_sent``); a request body is either
read to its end or the connection is marked for closing, so keep-alive never desynchronises;
bodies with Content-Length and chunked bodies are both supported; ``readinto`` never returns
more than the body holds and raises ``ClientGone`` on a premature EOF.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import socket
import struct
import threading
from collections.abc import Callable, Iterable, Mapping
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import parse_qsl, unquote, urlsplit

if TYPE_CHECKING:
    from http.server import BaseHTTPRequestHandler

    from .network import Link

DRAIN_LIMIT = 1 << 30
BUFFER_SIZE = 4 << 20
ONE_WRITE_LIMIT = 256 << 10
"""Bodies up to this size go out in the same write as the response head."""

REASONS = {s.value: s.phrase for s in HTTPStatus}
REASONS.update({308: "Permanent Redirect", 499: "Client Closed Request"})


@dataclasses.dataclass
class RequestRecord:
    """One handled request as seen by the server (header keys lower-case).

    Logged as soon as the response head is sent; the byte counters are final once the
    exchange ends.
    """

    method: str
    path: str
    headers: dict[str, str]
    status: int
    body_bytes_in: int
    body_bytes_out: int


class ClientGone(Exception):
    """The peer closed the connection or sent a truncated/malformed body."""


class BadRequest(Exception):
    """A malformed request; answered with a GCS JSON 400."""


class BufferPool:
    """Reusable large receive buffers shared by all connections."""

    def __init__(self, size: int = BUFFER_SIZE) -> None:
        self.size = size
        self._free: list[bytearray] = []
        self._lock = threading.Lock()

    def get(self) -> bytearray:
        """Take a buffer (allocating when none is free)."""
        with self._lock:
            if self._free:
                return self._free.pop()
        return bytearray(self.size)

    def put(self, buf: bytearray) -> None:
        """Return a buffer for reuse (at most 16 are kept)."""
        with self._lock:
            if len(self._free) < 16:
                self._free.append(buf)


class Body:
    """Reader for the request body (Content-Length or chunked)."""

    def __init__(
        self, rfile: BinaryIO, length: int | None, chunked: bool, link: Link | None = None
    ) -> None:
        self._rfile = rfile
        self._link = link
        self._chunked = chunked
        self._left = 0 if chunked else (length or 0)
        self._done = not chunked and not length
        self.length = length if not chunked else None
        self.bytes_read = 0

    @property
    def finished(self) -> bool:
        """True once the whole body has been read."""
        return self._done

    def _next_chunk(self) -> None:
        line = self._rfile.readline(1024)
        if not line.endswith(b"\n"):
            raise ClientGone("truncated chunk header")
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError as exc:
            raise ClientGone("malformed chunk header") from exc
        if size == 0:
            while True:  # trailers, then the blank line
                trailer = self._rfile.readline(8192)
                if not trailer.endswith(b"\n"):
                    raise ClientGone("truncated chunked trailer")
                if trailer in (b"\r\n", b"\n"):
                    break
            self._done = True
        self._left = size

    def readinto(self, view: memoryview) -> int:
        """Fill ``view`` as far as the body allows; 0 at the end of the body."""
        got = 0
        while got < len(view) and not self._done:
            if self._left == 0:
                if self._chunked:
                    if self.bytes_read and self._rfile.readline(8) not in (b"\r\n", b"\n"):
                        raise ClientGone("malformed chunk terminator")
                    self._next_chunk()
                    continue
                self._done = True
                break
            want = min(len(view) - got, self._left)
            if self._link is not None:
                want = min(want, self._link.piece)
            n = self._rfile.readinto(view[got : got + want])  # type: ignore[attr-defined]
            if not n:
                raise ClientGone("client closed the connection mid-body")
            if self._link is not None:
                self._link.received(n)
            got += n
            self._left -= n
            self.bytes_read += n
            if self._left == 0 and not self._chunked:
                self._done = True
        return got

    def skip(self, count: int, buf: memoryview) -> int:
        """Read and discard up to ``count`` bytes; returns how many were skipped."""
        skipped = 0
        while skipped < count:
            n = self.readinto(buf[: min(len(buf), count - skipped)])
            if not n:
                break
            skipped += n
        return skipped

    def read_all(self, limit: int = 64 << 20) -> bytes:
        """Read a small body completely.

        Raises:
            BadRequest: the body is larger than ``limit``.
        """
        out = bytearray()
        buf = memoryview(bytearray(1 << 16))
        while True:
            n = self.readinto(buf)
            if not n:
                return bytes(out)
            out += buf[:n]
            if len(out) > limit:
                raise BadRequest("Request body too large.")


class Exchange:
    """Parsed request plus the reply primitives."""

    def __init__(
        self,
        handler: BaseHTTPRequestHandler,
        log: Callable[[RequestRecord], None],
        scheme: str = "http",
        link: Link | None = None,
    ) -> None:
        self.handler = handler
        self.link = link
        self._log = log
        self.record: RequestRecord | None = None
        self.method = handler.command
        self.target = handler.path
        split = urlsplit(handler.path)
        self.raw_path = split.path
        pairs = parse_qsl(split.query, keep_blank_values=True)
        self.query: dict[str, str] = dict(pairs)
        self.query_keys = {k for k, _ in pairs}
        for part in split.query.split("&"):
            if part and "=" not in part:
                self.query_keys.add(unquote(part))
        self.headers = {k.lower(): v for k, v in handler.headers.items()}
        address: Any = handler.server.server_address
        host = self.headers.get("host") or f"{address[0]}:{address[1]}"
        self.base_url = f"{scheme}://{host}"
        chunked = "chunked" in self.headers.get("transfer-encoding", "").lower()
        self.malformed: str | None = None
        length: int | None = None
        if not chunked and "content-length" in self.headers:
            try:
                length = int(self.headers["content-length"])
            except ValueError:
                # The body's extent is unknown: answer 400 and never reuse the connection.
                self.malformed = "Invalid Content-Length header."
                handler.close_connection = True
            else:
                if length < 0:
                    raise ClientGone("negative Content-Length")
        self.body = Body(handler.rfile, length, chunked, link)  # type: ignore[arg-type]
        self.status = 0
        self.head_sent = False
        self.bytes_out = 0

    # -- raw output ------------------------------------------------------------------------
    @property
    def sock(self) -> socket.socket:
        """The connection's socket."""
        return self.handler.connection  # type: ignore[no-any-return]

    def send_head(
        self,
        status: int,
        headers: Iterable[tuple[str, str]],
        length: int | None,
        body: bytes = b"",
    ) -> None:
        """Write the status line and headers (Content-Length when ``length`` is not None),
        followed in the same write by ``body``, the start of the response body.

        One write per small response matters on a kept-alive connection: a head and a body
        sent separately can wait for the peer's delayed ACK (~40 ms) under Nagle's algorithm.
        """
        self.status = status
        lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}"]
        lines.extend(f"{k}: {v}" for k, v in headers)
        if length is not None:
            lines.append(f"Content-Length: {length}")
        if self.handler.close_connection:
            lines.append("Connection: close")
        lines.append("\r\n")
        head = "\r\n".join(lines).encode("latin-1")
        if self.link is not None:
            self.link.first_byte()
            self.link.sending(len(body))
        self.handler.wfile.write(head + body if body else head)
        self.bytes_out += len(body)
        self.head_sent = True
        self.log_record()

    def log_record(self) -> None:
        """Log this exchange (once), or refresh its byte counters when already logged."""
        if self.record is None:
            self.record = RequestRecord(
                self.method, self.target, dict(self.headers), self.status, 0, 0
            )
            self._log(self.record)
        self.record.body_bytes_in = self.body.bytes_read
        self.record.body_bytes_out = self.bytes_out

    def write(self, data: bytes | memoryview) -> None:
        """Write body bytes (not for HEAD), paced by the network profile if there is one."""
        if self.link is None:
            self.handler.wfile.write(data)
        else:
            view = memoryview(data)
            for at in range(0, len(view), self.link.piece):
                piece = view[at : at + self.link.piece]
                self.link.sending(len(piece))
                self.handler.wfile.write(piece)
        self.bytes_out += len(data)

    def reply(
        self,
        status: int,
        body: bytes = b"",
        headers: Iterable[tuple[str, str]] = (),
        content_type: str | None = None,
    ) -> None:
        """Send a complete response with a byte body."""
        hdrs = list(headers)
        if content_type:
            hdrs.append(("Content-Type", content_type))
        self.finish_body()
        if self.method == "HEAD" or not body:
            self.send_head(status, hdrs, len(body))
        elif len(body) <= ONE_WRITE_LIMIT:
            self.send_head(status, hdrs, len(body), body)
        else:
            self.send_head(status, hdrs, len(body))
            self.write(body)

    def reply_json(
        self, status: int, doc: Mapping[str, Any], headers: Iterable[tuple[str, str]] = ()
    ) -> None:
        """Send a JSON document."""
        body = json.dumps(doc).encode()
        self.reply(status, body, headers, "application/json; charset=UTF-8")

    def error(
        self,
        status: int,
        message: str,
        reason: str = "invalid",
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        """Send a GCS-style JSON error."""
        doc = {
            "error": {
                "code": status,
                "message": message,
                "errors": [{"message": message, "domain": "global", "reason": reason}],
            }
        }
        self.reply_json(status, doc, headers)

    def finish_body(self) -> None:
        """Consume the rest of the request body, or mark the connection to close."""
        if self.body.finished:
            return
        remaining = self.body.length - self.body.bytes_read if self.body.length else None
        if remaining is not None and remaining > DRAIN_LIMIT:
            self.handler.close_connection = True
            return
        buf = memoryview(bytearray(1 << 20))
        try:
            while self.body.readinto(buf):
                pass
        except (ClientGone, OSError):
            self.handler.close_connection = True

    def reset(self) -> None:
        """Abort the connection with a TCP RST (SO_LINGER 0, then close)."""
        self.handler.close_connection = True
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.sock.close()
        except OSError:
            pass

    def close_after(self) -> None:
        """Close the connection after this response (used by cut streams)."""
        self.handler.close_connection = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
