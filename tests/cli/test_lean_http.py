"""The lean HTTP/1.1 path of small transfers, over real HTTP to the loopback server.

Every test goes through the object operations the command and the bulk engine use
(``download_object``, ``upload_file``) or the transport itself, and checks what reached the
server (its request log) or the disk.
"""

from __future__ import annotations

import datetime
import http.server
import os
import pathlib
import socket
import threading
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from resumable_media import common
from resumable_media._objects import lean, transfer
from resumable_media._objects.client import Storage, TransferError
from resumable_media._objects.urls import Endpoint, GsUrl
from resumable_media.testing import GCSServer
from support import wait_for_records

FAST = common.RetryStrategy(initial_delay=0.01, max_sleep=0.05, max_retries=4, jitter_s=0)
OPTIONS = transfer.CopyOptions(
    chunk_size=32 << 20,
    processes=None,
    threads=None,
    checksum="crc32c",
    resume=False,
    if_generation_match=None,
    content_type=None,
)


def _storage(server: GCSServer, headers: dict[str, str] | None = None, **kwargs: Any) -> Storage:
    endpoint = Endpoint(server.endpoint, authenticated=False)
    return Storage(endpoint, headers or {}, retry=FAST, **kwargs)


def _faulty(server: GCSServer, instructions: dict[str, list[str]]) -> tuple[Storage, str]:
    test_id = server.create_retry_test(instructions)
    return _storage(server, {"x-retry-test-id": test_id}), test_id


def _fetch(storage: Storage, url: GsUrl, destination: pathlib.Path, meta: Any) -> Any:
    return transfer.download_object(
        storage, url, destination, OPTIONS, meta=meta, cancel=threading.Event()
    )


def _download(storage: Storage, bucket: str, name: str, destination: pathlib.Path) -> Any:
    return _fetch(storage, GsUrl(bucket, name), destination, storage.metadata(GsUrl(bucket, name)))


def _media_gets(server: GCSServer, name: str, count: int) -> list[Any]:
    quoted = name.replace("/", "%2F")
    return wait_for_records(
        server,
        lambda r: r.method == "GET" and "alt=media" in r.path and quoted in r.path,
        count,
    )


def _posts(server: GCSServer, count: int) -> list[Any]:
    return wait_for_records(server, lambda r: r.method == "POST" and "uploadType=" in r.path, count)


def _lean(storage: Storage) -> lean.LeanTransport:
    transport = lean.transport_for(storage.session())
    assert isinstance(transport, lean.LeanTransport)
    return transport


def test_small_downloads_share_one_kept_alive_connection(
    gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    blobs = {f"d/{i}.bin": os.urandom(65536 + i) for i in range(5)}
    for name, data in blobs.items():
        gcs_server.put_object(gcs_bucket, name, data)
    storage = _storage(gcs_server)
    sockets = set()
    for index, (name, data) in enumerate(blobs.items()):
        result = _download(storage, gcs_bucket, name, tmp_path / f"{index}.bin")
        assert (tmp_path / f"{index}.bin").read_bytes() == data
        assert result.verified and result.method == "single"
        origin = gcs_server.endpoint.lower()
        connection = _lean(storage)._origins[origin]
        assert connection is not None and connection.sock is not None
        sockets.add(id(connection.sock))
    assert len(sockets) == 1  # one connection carried all five
    assert not list(tmp_path.glob(".*rm-part"))


def test_a_corrupted_body_raises_and_leaves_no_file(
    gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    gcs_server.put_object(gcs_bucket, "c.bin", os.urandom(70000))
    storage, _ = _faulty(gcs_server, {"storage.objects.get": ["return-corrupted-data"]})
    # The metadata GET consumes nothing: the fault applies to media bodies only.
    destination = tmp_path / "c.bin"
    with pytest.raises(TransferError) as err:
        _download(storage, gcs_bucket, "c.bin", destination)
    assert "data corruption" in err.value.reason.lower() or "checksum" in err.value.reason.lower()
    assert err.value.target == f"gs://{gcs_bucket}/c.bin"
    assert not destination.exists()
    assert os.listdir(tmp_path) == []


def test_a_503_is_retried_and_the_bytes_are_right(
    gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    data = os.urandom(65536)
    gcs_server.put_object(gcs_bucket, "r.bin", data)
    storage = _storage(gcs_server)
    meta = storage.metadata(GsUrl(gcs_bucket, "r.bin"))
    storage, test_id = _faulty(gcs_server, {"storage.objects.get": ["return-503", "return-503"]})
    gcs_server.clear_requests()
    _fetch(storage, GsUrl(gcs_bucket, "r.bin"), tmp_path / "r.bin", meta)
    assert (tmp_path / "r.bin").read_bytes() == data
    assert gcs_server.retry_test(test_id)["completed"] is True
    statuses = [r.status for r in _media_gets(gcs_server, "r.bin", 3)]
    assert statuses == [503, 503, 200]


def test_a_broken_body_resumes_with_a_range_pinned_to_the_generation(
    gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    data = os.urandom(300_000)
    put = gcs_server.put_object(gcs_bucket, "b.bin", data)
    storage = _storage(gcs_server)
    meta = storage.metadata(GsUrl(gcs_bucket, "b.bin"))
    storage, test_id = _faulty(
        gcs_server, {"storage.objects.get": ["return-broken-stream-after-128K"]}
    )
    gcs_server.clear_requests()
    _fetch(storage, GsUrl(gcs_bucket, "b.bin"), tmp_path / "b.bin", meta)
    assert (tmp_path / "b.bin").read_bytes() == data
    gets = _media_gets(gcs_server, "b.bin", 2)
    assert len(gets) == 2
    resumed = gets[1]
    assert resumed.status == 206
    assert resumed.headers["range"].startswith("bytes=") and resumed.headers["range"] != "bytes=0-"
    assert f"generation={put['generation']}" in resumed.path
    assert gcs_server.retry_test(test_id)["completed"] is True


def test_a_small_upload_goes_lean_and_is_retried_on_503(
    gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    data = os.urandom(50_000)
    source = tmp_path / "u.bin"
    source.write_bytes(data)
    storage, test_id = _faulty(gcs_server, {"storage.objects.insert": ["return-503"]})
    gcs_server.clear_requests()
    result = transfer.upload_file(
        storage, source, GsUrl(gcs_bucket, "up/u.bin"), OPTIONS, "application/octet-stream"
    )
    assert result.verified and result.method == "multipart"
    assert gcs_server.object_bytes(gcs_bucket, "up/u.bin") == data
    assert gcs_server.retry_test(test_id)["completed"] is True
    posts = _posts(gcs_server, 2)
    assert [r.status for r in posts] == [503, 200]
    assert posts[-1].headers["user-agent"] == storage.session().headers["User-Agent"]
    assert _lean(storage)._origins[gcs_server.endpoint.lower()] is not None


def test_an_upload_with_no_clobber_reports_the_precondition(
    gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    gcs_server.put_object(gcs_bucket, "n.bin", b"old")
    source = tmp_path / "n.bin"
    source.write_bytes(b"new bytes")
    options = transfer.CopyOptions(**{**_fields(OPTIONS), "no_clobber": True})
    with pytest.raises(TransferError) as err:
        transfer.upload_file(
            _storage(gcs_server), source, GsUrl(gcs_bucket, "n.bin"), options, "text/plain"
        )
    assert err.value.status == 412
    assert gcs_server.object_bytes(gcs_bucket, "n.bin") == b"old"


def _fields(options: transfer.CopyOptions) -> dict[str, Any]:
    return {name: getattr(options, name) for name in options.__dataclass_fields__}


class _Token:
    """google-auth credentials whose every refresh hands out a new token."""

    def __new__(cls) -> Any:
        import google.auth._helpers
        import google.auth.credentials

        class Token(google.auth.credentials.Credentials):  # type: ignore[misc]
            def __init__(self) -> None:
                super().__init__()
                self.refreshes = 0

            def refresh(self, request: Any) -> None:
                self.refreshes += 1
                self.token = f"token-{self.refreshes}"
                self.expiry = google.auth._helpers.utcnow() + datetime.timedelta(hours=1)

        return Token()


def _authorized_factory(credentials: Any, headers: dict[str, str]) -> Any:
    from google.auth.transport.requests import AuthorizedSession

    def factory() -> Any:
        session = AuthorizedSession(credentials)
        session.headers.update(headers)
        return session

    return factory


def test_an_authorized_session_sends_its_token_and_refreshes_it_on_401(
    gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    data = os.urandom(65536)
    gcs_server.put_object(gcs_bucket, "a.bin", data)
    credentials = _Token()
    test_id = gcs_server.create_retry_test({"storage.objects.get": ["return-401"]})
    storage = Storage(
        Endpoint(gcs_server.endpoint, authenticated=True),
        {},
        retry=FAST,
        factory=_authorized_factory(credentials, {"x-retry-test-id": test_id}),
    )
    meta = gcs_server.put_object(gcs_bucket, "a.bin", data)
    gcs_server.clear_requests()
    _fetch(storage, GsUrl(gcs_bucket, "a.bin"), tmp_path / "a.bin", meta)
    assert (tmp_path / "a.bin").read_bytes() == data
    gets = _media_gets(gcs_server, "a.bin", 2)
    assert [r.status for r in gets] == [401, 200]
    assert [r.headers.get("authorization") for r in gets] == ["Bearer token-1", "Bearer token-2"]
    assert credentials.refreshes == 2
    assert isinstance(_lean(storage)._origins[gcs_server.endpoint.lower()], lean._Connection)
    # The next request reuses the token while it is valid.
    gcs_server.clear_requests()
    source = tmp_path / "up.bin"
    source.write_bytes(b"x" * 1000)
    transfer.upload_file(storage, source, GsUrl(gcs_bucket, "up.bin"), OPTIONS, "text/plain")
    posts = _posts(gcs_server, 1)
    assert [r.headers.get("authorization") for r in posts] == ["Bearer token-2"]
    assert credentials.refreshes == 2


class _Proxy(http.server.ThreadingHTTPServer):
    """A forwarding HTTP proxy that counts what passes through it."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        super().__init__(("127.0.0.1", 0), _ProxyHandler)


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Proxy

    def _forward(self) -> None:
        self.server.seen.append(f"{self.command} {self.path}")
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else None
        hop = ("proxy-connection", "connection")
        headers = {k: v for k, v in self.headers.items() if k.lower() not in hop}
        request = urllib.request.Request(self.path, data=body, headers=headers, method=self.command)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            answer = opener.open(request)
        except urllib.error.HTTPError as exc:
            answer = exc
        payload = answer.read()
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = _forward
    do_POST = _forward

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def proxy() -> Iterator[_Proxy]:
    server = _Proxy()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_a_configured_proxy_is_used_through_the_session(
    gcs_server: GCSServer,
    gcs_bucket: str,
    tmp_path: pathlib.Path,
    proxy: _Proxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = os.urandom(65536)
    meta = gcs_server.put_object(gcs_bucket, "p.bin", data)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.server_address[1]}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    storage = _storage(gcs_server)
    _fetch(storage, GsUrl(gcs_bucket, "p.bin"), tmp_path / "p.bin", meta)
    assert (tmp_path / "p.bin").read_bytes() == data
    assert any("alt=media" in line and line.startswith("GET http://") for line in proxy.seen)
    assert _lean(storage)._origins[gcs_server.endpoint.lower()] is None  # the session sent it


_CLOSE = b"<close>"


class _Scripted(threading.Thread):
    """An HTTP server answering each request with the next canned reply, one connection at a
    time.  A reply ending in ``_CLOSE`` is sent without it and the connection closed; the
    reply ``_CLOSE`` alone closes the connection without answering."""

    def __init__(self, replies: list[bytes]) -> None:
        super().__init__(daemon=True)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.replies = replies
        self.requests: list[bytes] = []
        self.start()

    def run(self) -> None:
        with self.listener:
            self._serve()

    def _serve(self) -> None:
        while self.replies:
            conn, _ = self.listener.accept()
            with conn:
                buffer = b""
                while self.replies:
                    while b"\r\n\r\n" not in buffer:
                        more = conn.recv(65536)
                        if not more:
                            break
                        buffer += more
                    if b"\r\n\r\n" not in buffer:
                        break
                    head, _, buffer = buffer.partition(b"\r\n\r\n")
                    self.requests.append(head)
                    reply = self.replies.pop(0)
                    conn.sendall(reply.removesuffix(_CLOSE))
                    if reply.endswith(_CLOSE):
                        break


def test_chunked_bodies_repeated_headers_and_a_closed_idle_connection() -> None:
    body = b"hello, chunked world"
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nx-goog-hash: crc32c=AAAAAA==\r\n"
        b"X-Goog-Hash: md5=BBBB\r\n\r\n"
        + b"".join(
            b"%x\r\n%s\r\n" % (len(body[i : i + 7]), body[i : i + 7]) for i in range(0, 21, 7)
        )
        + b"0\r\n\r\n"
    )
    plain = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"
    # The second request finds the connection closed by the server (a stale keep-alive):
    # the transport reconnects once, silently, and gets the third reply.
    server = _Scripted([chunked, _CLOSE, plain])
    transport = lean.LeanTransport(requests.Session())
    first = transport.request("GET", f"{server.url}/a", timeout=5)
    assert first.content == body
    assert first.headers["X-GOOG-HASH"] == "crc32c=AAAAAA==, md5=BBBB"
    second = transport.request("GET", f"{server.url}/b", timeout=5)
    assert second.content == b"abc"
    assert [r.split(b" ")[1] for r in server.requests] == [b"/a", b"/b", b"/b"]


def test_a_body_cut_short_is_a_retryable_connection_error() -> None:
    server = _Scripted([b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc" + _CLOSE])
    transport = lean.LeanTransport(requests.Session())
    response = transport.request("GET", f"{server.url}/x", timeout=5, stream=True)
    buffer = bytearray(100)
    with pytest.raises(lean.LeanConnectionError) as err:
        while response.raw.readinto(memoryview(buffer)):
            pass
    assert isinstance(err.value, ConnectionError)  # retried by the library's retry loop
    assert err.value.request.url == server.url


def test_a_redirect_is_followed_by_the_session() -> None:
    target = _Scripted([b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"])
    moved = f"HTTP/1.1 302 Found\r\nLocation: {target.url}/there\r\nContent-Length: 0\r\n\r\n"
    redirect = _Scripted([moved.encode() + _CLOSE, moved.encode() + _CLOSE])
    transport = lean.LeanTransport(requests.Session())
    response = transport.request("GET", f"{redirect.url}/here", timeout=5)
    assert isinstance(response, requests.Response)  # the session followed it
    assert response.content == b"ok"
    assert [r.split(b" ")[1] for r in target.requests] == [b"/there"]
