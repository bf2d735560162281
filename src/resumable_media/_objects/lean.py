"""A lean HTTP/1.1 transport for the many small requests of a tree copy.

For a 64 KiB object most of the client's CPU went to ``requests``, urllib3 and
``http.client`` (request preparation, header parsing through ``email``, pool bookkeeping),
not to moving bytes.  :class:`LeanTransport` is a requests-compatible transport (the
``request(method, url, data=, headers=, timeout=, stream=)`` seam of
:mod:`resumable_media._transport`) that sends plain requests over its own persistent
connection per origin, so ``Download``, ``MultipartUpload``, their ``_protocol`` judgement
(status, ``x-goog-hash``, generation, ranges) and the ``storage.retry`` loop all stay exactly
as they are: only the bytes on the wire are produced and parsed here.

Invariants:
- Only HTTP framing lives here (status line, headers, Content-Length / chunked bodies,
  keep-alive); every GCS semantic is judged by the callers' protocol objects.
- A request takes the lean way only when the wrapped session would have sent exactly the
  same request: a plain ``requests.Session`` or google-auth ``AuthorizedSession`` with the
  stock adapter, no session auth, hooks, cookies or client certificate, no proxy for the
  URL (``HTTP(S)_PROXY``/``NO_PROXY`` as ``requests`` reads them) and bytes (or no) body.
  Anything else, and every redirect, goes through the session itself.
- The session's own headers are sent (User-Agent, Accept-Encoding, the command's extra
  headers); with an ``AuthorizedSession`` the credentials add their Authorization header
  (refreshed when expired, and once more on 401, as ``AuthorizedSession`` does).  No
  header is ever logged or put in an error message.
- A failure of the connection raises :class:`LeanConnectionError` (a ``ConnectionError``,
  so the callers' retry loop retries it); a body cut short is never returned as complete.
- One transport belongs to one thread (as the per-thread sessions do): with ``-j N`` the
  command holds at most N connections per origin.
"""

from __future__ import annotations

import contextlib
import http.client
import json as _json
import os
import socket
import ssl
import threading
import urllib.parse
from typing import Any

import requests
import requests.adapters
import requests.utils

__all__ = ["LeanConnectionError", "LeanResponse", "LeanTransport", "enabled", "transport_for"]

_RECV = 65536
_ERROR_BODY_LIMIT = 1 << 20
_REDIRECTS = (301, 302, 303, 307, 308)
_DISABLE_ENV = "RESUMABLE_MEDIA_LEAN_HTTP"


_ENABLED: bool | None = None


def enabled() -> bool:
    """Whether the lean path may be used (``RESUMABLE_MEDIA_LEAN_HTTP=0`` turns it off; read
    once per process)."""
    global _ENABLED
    if _ENABLED is None:
        value = os.environ.get(_DISABLE_ENV, "1").strip().lower()
        _ENABLED = value not in ("0", "no", "off", "false")
    return _ENABLED


class _Origin:
    """What an error's ``request`` attribute exposes: the URL's origin only."""

    __slots__ = ("url",)

    def __init__(self, url: str) -> None:
        self.url = url


class LeanConnectionError(ConnectionError):
    """The connection failed (refused, reset, timed out, closed mid-response).

    The cause (``__cause__``) is the operating system's error; ``request.url`` is the
    origin (``scheme://host:port``), never a path or query.
    """

    def __init__(self, message: str, origin: str) -> None:
        super().__init__(message)
        self.request = _Origin(origin)


class _Headers(dict[str, str]):
    """Response headers with lower-case keys, looked up case-insensitively."""

    def get(self, key: str, default: Any = None) -> Any:
        return dict.get(self, key.lower(), default)

    def __getitem__(self, key: str) -> str:
        return dict.__getitem__(self, key.lower())

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, key.lower() if isinstance(key, str) else key)


class _Body:
    """``response.raw``: ``readinto`` over the body (stored bytes, never decoded)."""

    __slots__ = ("_response",)

    def __init__(self, response: LeanResponse) -> None:
        self._response = response

    def readinto(self, view: Any) -> int:
        return self._response._readinto(memoryview(view).cast("B"))

    def read(self, amount: int | None = None, decode_content: bool = False) -> bytes:
        if amount is None:
            return self._response._read_all()
        buffer = bytearray(amount)
        count = self._response._readinto(memoryview(buffer))
        return bytes(buffer[:count])

    @property
    def closed(self) -> bool:
        return self._response._connection is None

    def close(self) -> None:
        self._response.close()


class LeanResponse:
    """The parts of ``requests.Response`` the library reads.

    Attributes:
        status_code: The HTTP status.
        reason: The reason phrase.
        headers: Case-insensitive headers (repeated headers joined with ``", "``).
        url: The request URL.
        raw: The body reader (``readinto``), while the body is streamed.
    """

    def __init__(
        self,
        connection: _Connection,
        url: str,
        status: int,
        reason: str,
        headers: _Headers,
        framing: str,
        length: int,
    ) -> None:
        self.status_code = status
        self.reason = reason
        self.headers = headers
        self.url = url
        self.raw = _Body(self)
        self._connection: _Connection | None = connection
        self._framing = framing  # "length", "chunked" or "close"
        self._left = length  # bytes left (length), in the current chunk (chunked)
        self._content: bytes | bool = False
        self._content_consumed = False
        self._failed: LeanConnectionError | None = None
        if framing == "length" and length == 0:
            self._finished()

    @property
    def ok(self) -> bool:
        """Whether the status is below 400."""
        return self.status_code < 400

    @property
    def is_redirect(self) -> bool:
        """Whether this is a redirect with a ``Location``."""
        return self.status_code in _REDIRECTS and "location" in self.headers

    @property
    def content(self) -> bytes:
        """bytes: The whole body (read now if it was streamed)."""
        if self._content is False:
            self._content = self._read_all()
            self._content_consumed = True
        assert isinstance(self._content, bytes)
        return self._content

    @property
    def text(self) -> str:
        """str: The body as text (UTF-8, undecodable bytes replaced)."""
        return self.content.decode("utf-8", "replace")

    def json(self, **kwargs: Any) -> Any:
        """The body parsed as JSON."""
        return _json.loads(self.content, **kwargs)

    def iter_content(self, chunk_size: int = _RECV, decode_unicode: bool = False) -> Any:
        """The body in pieces (stored bytes)."""
        if self._content is not False:
            yield self._content
            return
        buffer = bytearray(max(1, chunk_size or _RECV))
        view = memoryview(buffer)
        while count := self._readinto(view):
            yield bytes(view[:count])

    def close(self) -> None:
        """Release the connection: kept for the next request when the body was read to its
        end, closed otherwise."""
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    def __enter__(self) -> LeanResponse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _finished(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.release(self)

    def _read_all(self) -> bytes:
        pieces = []
        buffer = bytearray(_RECV)
        view = memoryview(buffer)
        while count := self._readinto(view):
            pieces.append(bytes(view[:count]))
        return b"".join(pieces)

    def _readinto(self, view: memoryview) -> int:
        if self._failed is not None:
            failed, self._failed = self._failed, None
            raise failed
        connection = self._connection
        if connection is None or not len(view):
            return 0
        try:
            if self._framing == "length":
                # Fill the caller's view (as far as the body goes): the bytes are on their
                # way anyway, and one piece per view is one write and one hash call.  When
                # the connection fails part-way, the bytes already in the view are returned
                # first and the failure is raised by the next call, so the caller resumes
                # from the last byte it was given.
                want = view[: self._left]
                count = 0
                while count < len(want):
                    try:
                        more = connection.readinto(want[count:])
                        if not more:
                            raise connection.broken(
                                "connection closed mid-response",
                                http.client.IncompleteRead(b"", self._left - count),
                            )
                    except LeanConnectionError as exc:
                        if not count:
                            raise
                        self._failed = exc
                        self._connection = None
                        self._left -= count
                        return count
                    count += more
                self._left -= count
                if not self._left:
                    self._finished()
                return count
            if self._framing == "close":
                count = connection.readinto(view)
                if not count:
                    self.close()
                return count
            return self._read_chunked(connection, view)
        except BaseException:
            self.close()
            raise

    def _read_chunked(self, connection: _Connection, view: memoryview) -> int:
        if not self._left:
            line = connection.read_line()
            try:
                self._left = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise connection.broken(
                    "malformed chunked body", http.client.IncompleteRead(b"")
                ) from None
            if not self._left:
                while connection.read_line():  # trailers, up to the empty line
                    pass
                self._finished()
                return 0
        count = connection.readinto(view[: self._left])
        if not count:
            raise connection.broken(
                "connection closed mid-response", http.client.IncompleteRead(b"", self._left)
            )
        self._left -= count
        if not self._left:
            connection.read_line()  # the CRLF after the chunk
        return count


def _timeouts(timeout: Any) -> tuple[float | None, float | None]:
    if isinstance(timeout, tuple):
        return timeout[0], timeout[1]
    return timeout, timeout


class _Connection:
    """One persistent HTTP/1.1 connection to one origin."""

    def __init__(self, origin: str, host: str, port: int, context: ssl.SSLContext | None) -> None:
        self.origin = origin
        self.host = host
        self.port = port
        self.context = context
        self.sock: socket.socket | None = None
        self._pending = b""
        self.busy: LeanResponse | None = None
        self.reused = False
        self.read_timeout: float | None = None

    def broken(self, words: str, cause: BaseException) -> LeanConnectionError:
        self.close()
        error = LeanConnectionError(f"{self.origin}: {words}", self.origin)
        error.__cause__ = cause
        return error

    def connect(self, timeout: tuple[float | None, float | None]) -> None:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=timeout[0])
        except OSError as exc:
            raise self.broken("cannot connect", exc) from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.context is not None:
            try:
                sock = self.context.wrap_socket(sock, server_hostname=self.host)
            except OSError as exc:
                sock.close()
                raise self.broken("TLS handshake failed", exc) from exc
        sock.settimeout(timeout[1])
        self.read_timeout = timeout[1]
        self.sock = sock
        self._pending = b""
        self.reused = False

    def close(self) -> None:
        sock, self.sock = self.sock, None
        self._pending = b""
        self.busy = None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()

    def __del__(self) -> None:
        # A kept-alive connection dropped with its transport (a thread's session going
        # away) is closed quietly, as a pool would close it.
        self.close()

    def release(self, response: LeanResponse) -> None:
        if self.busy is response:
            self.busy = None
        if "close" in response.headers.get("connection", "").lower():
            self.close()

    def send(self, data: bytes, body: Any) -> None:
        assert self.sock is not None
        if body is None or len(body) <= _RECV:
            self.sock.sendall(data + bytes(body) if body is not None else data)
        else:
            self.sock.sendall(data)
            self.sock.sendall(body)

    def fill(self) -> bytes:
        assert self.sock is not None
        data = self.sock.recv(_RECV)
        return data

    def read_head(self) -> bytes:
        data = self._pending
        start = 0
        while True:
            end = data.find(b"\r\n\r\n", start)
            if end >= 0:
                self._pending = data[end + 4 :]
                return data[:end]
            start = max(0, len(data) - 3)
            more = self.fill()
            if not more:
                raise EOFError
            data = data + more if data else more
            if len(data) > 1 << 20:
                raise self.broken("response headers too long", http.client.LineTooLong("headers"))

    def read_line(self) -> bytes:
        data = self._pending
        while True:
            end = data.find(b"\r\n")
            if end >= 0:
                self._pending = data[end + 2 :]
                return data[:end]
            try:
                more = self.fill()
            except OSError as exc:
                raise self.broken("connection broken", exc) from exc
            if not more:
                raise self.broken("connection closed mid-response", http.client.IncompleteRead(b""))
            data += more
            if len(data) > 65536:
                raise self.broken("malformed chunked body", http.client.LineTooLong("chunk"))

    def readinto(self, view: memoryview) -> int:
        pending = self._pending
        if pending:
            count = min(len(view), len(pending))
            view[:count] = memoryview(pending)[:count]
            self._pending = pending[count:]
            return count
        assert self.sock is not None
        try:
            return self.sock.recv_into(view)
        except OSError as exc:
            raise self.broken("connection broken", exc) from exc


def _parse_head(head: bytes) -> tuple[str, int, str, _Headers]:
    lines = head.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code, _, reason = rest.partition(" ")
    if not version.startswith("HTTP/") or len(code) != 3 or not code.isdigit():
        raise http.client.BadStatusLine(lines[0])
    headers = _Headers()
    last = ""
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and last:  # obsolete line folding
            headers[last] = f"{dict.__getitem__(headers, last)} {line.strip()}"
            continue
        name, sep, value = line.partition(":")
        if not sep:
            continue
        last = name.strip().lower()
        value = value.strip()
        if dict.__contains__(headers, last):
            headers[last] = f"{dict.__getitem__(headers, last)}, {value}"
        else:
            headers[last] = value
    return version, int(code), reason, headers


_CONTEXTS: dict[Any, ssl.SSLContext] = {}
_CONTEXTS_LOCK = threading.Lock()


def _ssl_context(verify: Any) -> ssl.SSLContext:
    """The TLS context for ``requests``' ``verify`` value (True, a CA file/dir, False)."""
    with _CONTEXTS_LOCK:
        context = _CONTEXTS.get(verify)
        if context is None:
            if verify is False:
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            else:
                where = requests.utils.DEFAULT_CA_BUNDLE_PATH if verify is True else str(verify)
                if os.path.isdir(where):
                    context = ssl.create_default_context(capath=where)
                else:
                    context = ssl.create_default_context(cafile=where)
            _CONTEXTS[verify] = context
        return context


def _is_authorized_session(session: Any) -> bool:
    """Whether ``session`` is exactly google-auth's ``AuthorizedSession`` (imported only
    when the session comes from google-auth: anonymous runs never load it)."""
    if not type(session).__module__.startswith("google.auth"):
        return False
    try:
        from google.auth.transport.requests import AuthorizedSession
    except ImportError:
        return False
    return type(session) is AuthorizedSession


def _header_text(value: Any) -> str:
    text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
    if "\r" in text or "\n" in text:
        raise ValueError("a header value contains a line break")
    return text


class LeanTransport:
    """A requests-compatible transport over one wrapped session (see the module docstring).

    Args:
        session: The session whose requests this sends; it also sends the requests the lean
            way cannot (and redirects).
    """

    def __init__(self, session: Any) -> None:
        self.session = session
        self._origins: dict[str, _Connection | None] = {}
        self._authorized = _is_authorized_session(session)
        self._plain = type(session) is requests.Session or self._authorized

    def _connection(self, url: str) -> _Connection | None:
        """The connection for ``url``'s origin, or None when the session must send it."""
        scheme, rest = url.split("://", 1) if "://" in url else ("", url)
        origin = f"{scheme}://{rest.split('/', 1)[0]}".lower()
        if origin in self._origins:
            return self._origins[origin]
        connection = self._eligible(url, origin)
        self._origins[origin] = connection
        return connection

    def _eligible(self, url: str, origin: str) -> _Connection | None:
        session = self.session
        if not self._plain or session.auth is not None or session.cert is not None:
            return None
        if any(session.hooks.get("response", ())) or len(session.cookies):
            return None
        if self._authorized and getattr(session, "_is_mtls", False):
            return None
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.username:
            return None
        adapter = session.get_adapter(url)
        retries = getattr(adapter, "max_retries", None)
        if type(adapter) is not requests.adapters.HTTPAdapter or getattr(retries, "total", True):
            return None
        settings = session.merge_environment_settings(url, {}, True, None, None)
        if settings.get("cert") is not None:
            return None
        if requests.utils.select_proxy(url, settings.get("proxies") or {}) is not None:
            return None
        context = _ssl_context(settings.get("verify", True)) if parts.scheme == "https" else None
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return _Connection(origin, parts.hostname, port, context)

    def request(
        self,
        method: str,
        url: str,
        data: Any = None,
        headers: Any = None,
        timeout: Any = None,
        stream: bool = False,
        **kwargs: Any,
    ) -> Any:
        """Send one request; return a :class:`LeanResponse` (or the session's response).

        Raises:
            LeanConnectionError: When the connection failed.
        """
        connection = None
        simple = data is None or isinstance(data, bytes | bytearray | memoryview)
        if not kwargs and simple and url.isascii() and " " not in url:
            connection = self._connection(url)
        if connection is None:
            return self._by_session(method, url, data, headers, timeout, stream, kwargs)
        response = self._send(connection, method, url, data, headers, timeout, 0)
        if response.is_redirect:
            response.close()
            return self._by_session(method, url, data, headers, timeout, stream, kwargs)
        if not stream:
            _ = response.content
        return response

    def _by_session(
        self,
        method: str,
        url: str,
        data: Any,
        headers: Any,
        timeout: Any,
        stream: bool,
        kwargs: dict[str, Any],
    ) -> Any:
        if stream:
            kwargs = {**kwargs, "stream": True}
        return self.session.request(
            method, url, data=data, headers=headers, timeout=timeout, **kwargs
        )

    def _head(self, method: str, url: str, data: Any, headers: Any) -> tuple[bytes, str]:
        parts = url.split("://", 1)[1]
        slash = parts.find("/")
        host, target = (parts, "/") if slash < 0 else (parts[:slash], parts[slash:])
        merged: dict[str, tuple[str, Any]] = {}
        for name, value in self.session.headers.items():
            merged[name.lower()] = (name, value)
        if headers:
            for name, value in headers.items():
                merged[name.lower()] = (name, value)
        if self._authorized:
            plain = {name: value for name, value in merged.values() if value is not None}
            session = self.session
            session.credentials.before_request(session._auth_request, method, url, plain)
            merged = {name.lower(): (name, value) for name, value in plain.items()}
        lines = [f"{method} {target} HTTP/1.1\r\n"]
        if "host" not in merged:
            lines.append(f"Host: {host}\r\n")
        for name, value in merged.values():
            if value is not None and name.lower() != "content-length":
                lines.append(f"{name}: {_header_text(value)}\r\n")
        if data is not None or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {0 if data is None else len(data)}\r\n")
        lines.append("\r\n")
        return "".join(lines).encode("latin-1"), target

    def _send(
        self,
        connection: _Connection,
        method: str,
        url: str,
        data: Any,
        headers: Any,
        timeout: Any,
        refreshed: int,
    ) -> LeanResponse:
        head, _ = self._head(method, url, data, headers)
        limits = _timeouts(timeout)
        if connection.busy is not None:  # a streamed body left unread: not reusable
            connection.close()
        for attempt in (0, 1):
            fresh = connection.sock is None
            if fresh:
                connection.connect(limits)
            elif connection.read_timeout != limits[1]:
                assert connection.sock is not None
                connection.sock.settimeout(limits[1])
                connection.read_timeout = limits[1]
            try:
                connection.send(head, data)
                raw = connection.read_head()
                break
            except (EOFError, ConnectionResetError, BrokenPipeError, ConnectionAbortedError) as exc:
                # A kept-alive connection the server closed while idle: reconnect once.
                connection.close()
                if fresh or attempt:
                    cause = exc if isinstance(exc, OSError) else ConnectionResetError()
                    raise connection.broken("connection closed by the server", cause) from exc
            except LeanConnectionError:
                raise
            except OSError as exc:
                raise connection.broken("connection broken", exc) from exc
        try:
            version, status, reason, response_headers = _parse_head(raw)
            while 100 <= status < 200:  # interim answers (we never ask for them)
                version, status, reason, response_headers = _parse_head(connection.read_head())
        except OSError as exc:
            raise connection.broken("connection broken", exc) from exc
        except (http.client.HTTPException, EOFError, ValueError) as exc:
            raise connection.broken(
                "malformed response", http.client.BadStatusLine(str(exc))
            ) from exc
        connection.reused = True
        framing, length = _framing(method, status, response_headers, version)
        response = LeanResponse(connection, url, status, reason, response_headers, framing, length)
        if response._connection is not None:
            connection.busy = response
        if framing == "close" or "close" in response_headers.get("connection", "").lower():
            response_headers.setdefault("connection", "close")
        if status >= 300:
            self._read_error(response)
        if (
            self._authorized
            and status in getattr(self.session, "_refresh_status_codes", (401,))
            and refreshed < getattr(self.session, "_max_refresh_attempts", 2)
        ):
            self.session.credentials.refresh(self.session._auth_request)
            return self._send(connection, method, url, data, headers, timeout, refreshed + 1)
        return response

    def close(self) -> None:
        """Close the kept-alive connections (the session is closed by its owner)."""
        _close_all(self)

    @staticmethod
    def _read_error(response: LeanResponse) -> None:
        """Read an error answer's body now (small), so its connection is free again."""
        if response._framing == "length" and response._left > _ERROR_BODY_LIMIT:
            response.close()
            response._content = b""
            return
        _ = response.content


def _close_all(transport: LeanTransport) -> None:
    for connection in transport._origins.values():
        if connection is not None:
            connection.close()


def _framing(method: str, status: int, headers: _Headers, version: str) -> tuple[str, int]:
    if method == "HEAD" or status in (204, 304):
        return "length", 0
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return "chunked", 0
    length = headers.get("content-length")
    if length is not None:
        try:
            value = int(length.split(",")[0])
        except ValueError:
            raise http.client.HTTPException(f"bad Content-Length {length!r}") from None
        if value < 0:
            raise http.client.HTTPException(f"bad Content-Length {length!r}")
        if version == "HTTP/1.0" and "keep-alive" not in headers.get("connection", "").lower():
            headers["connection"] = "close"
        return "length", value
    return "close", 0


def transport_for(session: Any) -> Any:
    """The lean transport wrapping ``session`` (one per session, so one per thread), or the
    session itself when the lean path is turned off."""
    if not enabled():
        return session
    found = session.__dict__.get("_rm_lean") if hasattr(session, "__dict__") else None
    if found is None:
        found = LeanTransport(session)
        with contextlib.suppress(AttributeError, TypeError):
            session.__dict__["_rm_lean"] = found
    return found
