"""Bad input and vanishing clients never crash, hang or corrupt the loopback server."""

from __future__ import annotations

import os
import socket
import time
from urllib.parse import urlsplit

import requests

from resumable_media.testing import GCSServer

Q = 256 * 1024


def connect(server: GCSServer) -> socket.socket:
    parts = urlsplit(server.endpoint)
    assert parts.port is not None
    sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
    return sock


def read_reply(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def wait_for_log(server: GCSServer, path_part: str) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if any(path_part in r.path for r in server.requests):
            return
        time.sleep(0.01)


def test_disconnect_mid_media_upload(gcs_server: GCSServer, gcs_bucket: str) -> None:
    sock = connect(gcs_server)
    sock.sendall(
        f"POST /upload/storage/v1/b/{gcs_bucket}/o?uploadType=media&name=gone HTTP/1.1\r\n"
        f"Host: x\r\nContent-Length: {1 << 20}\r\n\r\n".encode()
        + os.urandom(100_000)
    )
    sock.close()
    wait_for_log(gcs_server, "name=gone")
    assert not gcs_server.has_object(gcs_bucket, "gone")
    assert requests.get(f"{gcs_server.endpoint}/storage/v1/b/{gcs_bucket}").status_code == 200


def test_disconnect_mid_chunk_keeps_session(gcs_server: GCSServer, gcs_bucket: str) -> None:
    loc = requests.post(
        f"{gcs_server.endpoint}/upload/storage/v1/b/{gcs_bucket}/o?uploadType=resumable&name=s"
    ).headers["Location"]
    data = os.urandom(3 * Q)
    assert (
        requests.put(
            loc, data=data[:Q], headers={"Content-Range": f"bytes 0-{Q - 1}/*"}
        ).status_code
        == 308
    )
    sock = connect(gcs_server)
    target = loc[len(gcs_server.endpoint) :]
    sock.sendall(
        f"PUT {target} HTTP/1.1\r\nHost: x\r\nContent-Range: bytes {Q}-{3 * Q - 1}/{3 * Q}\r\n"
        f"Content-Length: {2 * Q}\r\n\r\n".encode()
        + data[Q : Q + 1000]
    )
    sock.close()
    time.sleep(0.2)
    status = requests.put(loc, headers={"Content-Range": "bytes */*"})
    assert status.status_code == 308 and status.headers["Range"] == f"bytes=0-{Q - 1}"
    final = requests.put(
        loc, data=data[Q:], headers={"Content-Range": f"bytes {Q}-{3 * Q - 1}/{3 * Q}"}
    )
    assert final.status_code == 200
    assert gcs_server.object_bytes(gcs_bucket, "s") == data


def test_garbage_and_malformed_requests(gcs_server: GCSServer, gcs_bucket: str) -> None:
    sock = connect(gcs_server)
    sock.sendall(b"THIS IS NOT HTTP\r\n\r\n")
    reply = read_reply(sock)
    assert reply == b"" or reply.startswith(b"HTTP/1.1 400") or reply.startswith(b"HTTP/1.0 400")
    sock.close()
    sock = connect(gcs_server)
    sock.sendall(
        f"POST /upload/storage/v1/b/{gcs_bucket}/o?uploadType=media&name=cl HTTP/1.1\r\n"
        "Host: x\r\nContent-Length: banana\r\n\r\n".encode()
    )
    reply = read_reply(sock)
    assert reply.startswith(b"HTTP/1.1 400")
    assert b"Connection: close" in reply  # the body's extent is unknown: no reuse
    sock.close()
    sock = connect(gcs_server)
    sock.sendall(
        f"POST /upload/storage/v1/b/{gcs_bucket}/o?uploadType=media&name=ch HTTP/1.1\r\n"
        "Host: x\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\nabc\r\n".encode()
    )
    sock.settimeout(5)
    assert read_reply(sock) == b""  # malformed chunked body: the connection is closed
    sock.close()
    assert not gcs_server.has_object(gcs_bucket, "cl")
    assert not gcs_server.has_object(gcs_bucket, "ch")
    weird = requests.get(f"{gcs_server.endpoint}/storage/v1/b/{gcs_bucket}/zzz")
    assert weird.status_code == 404
    wrong = requests.patch(f"{gcs_server.endpoint}/upload/storage/v1/b/{gcs_bucket}/o")
    assert wrong.status_code == 405 and wrong.headers["Allow"] == "DELETE, POST, PUT"
    unknown = requests.post(f"{gcs_server.endpoint}/upload/storage/v1/b/{gcs_bucket}/o")
    assert unknown.status_code == 400  # a known method with no uploadType


def test_overwrite_during_download_serves_one_generation(
    gcs_server: GCSServer, gcs_bucket: str
) -> None:
    old = os.urandom(8 << 20)
    gcs_server.put_object(gcs_bucket, "swap", old)
    url = f"{gcs_server.endpoint}/download/storage/v1/b/{gcs_bucket}/o/swap?alt=media"
    with requests.get(url, stream=True) as resp:
        first = resp.raw.read(1000)
        gcs_server.put_object(gcs_bucket, "swap", os.urandom(8 << 20))
        rest = resp.raw.read()
    assert first + rest == old
    assert gcs_server.object_bytes(gcs_bucket, "swap") != old


def test_client_abandons_download(gcs_server: GCSServer, gcs_bucket: str) -> None:
    gcs_server.put_object(gcs_bucket, "abandon", os.urandom(16 << 20))
    sock = connect(gcs_server)
    sock.sendall(
        f"GET /download/storage/v1/b/{gcs_bucket}/o/abandon?alt=media HTTP/1.1\r\n"
        "Host: x\r\n\r\n".encode()
    )
    assert read_reply(sock).startswith(b"HTTP/1.1 200")
    sock.close()
    time.sleep(0.1)
    assert (
        requests.get(f"{gcs_server.endpoint}/storage/v1/b/{gcs_bucket}/o/abandon").status_code
        == 200
    )


def test_expect_100_continue(gcs_server: GCSServer, gcs_bucket: str) -> None:
    sock = connect(gcs_server)
    sock.sendall(
        f"POST /upload/storage/v1/b/{gcs_bucket}/o?uploadType=media&name=exp HTTP/1.1\r\n"
        "Host: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n".encode()
    )
    assert read_reply(sock).startswith(b"HTTP/1.1 100")
    sock.sendall(b"hello")
    assert read_reply(sock).startswith(b"HTTP/1.1 200")
    sock.close()
    assert gcs_server.object_bytes(gcs_bucket, "exp") == b"hello"


def test_concurrent_uploads_and_downloads(gcs_server: GCSServer, gcs_bucket: str) -> None:
    import concurrent.futures

    payloads = {f"conc/{i}": os.urandom(2 * Q + i * 1000) for i in range(6)}

    def roundtrip(name: str) -> bool:
        data = payloads[name]
        with requests.Session() as s:
            loc = s.post(
                f"{gcs_server.endpoint}/upload/storage/v1/b/{gcs_bucket}/o"
                f"?uploadType=resumable&name={name}"
            ).headers["Location"]
            mid = s.put(loc, data=data[:Q], headers={"Content-Range": f"bytes 0-{Q - 1}/*"})
            assert mid.status_code == 308
            rng = f"bytes {Q}-{len(data) - 1}/{len(data)}"
            media = s.put(loc, data=data[Q:], headers={"Content-Range": rng}).json()["mediaLink"]
            return s.get(media).content == data

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        assert all(pool.map(roundtrip, payloads))


def test_silent_client_is_dropped_mid_body() -> None:
    with GCSServer(idle_timeout_s=0.3) as server:
        server.create_bucket("b")
        sock = connect(server)
        sock.sendall(
            b"POST /upload/storage/v1/b/b/o?uploadType=media&name=silent HTTP/1.1\r\n"
            b"Host: x\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10
        )
        sock.settimeout(5)
        assert sock.recv(1024) == b""  # the server gave up on the silent client
        sock.close()
        assert not server.has_object("b", "silent")
        assert requests.get(f"{server.endpoint}/storage/v1/b/b").status_code == 200
