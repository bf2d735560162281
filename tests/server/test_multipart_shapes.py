"""Multipart upload bodies in every shape RFC 2046 allows, sent as raw bytes.

Each shape is one a real client sends: CRLF with part headers (google-resumable-media),
LF-only line endings (gcsfs), an empty header block for the media part (Go's mime/multipart,
as rclone uses it), chunked transfer encoding (Go with an unknown length), a preamble and an
epilogue. Malformed bodies fail with a 400 that names the problem.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
from urllib.parse import urlsplit

import pytest
import requests

from resumable_media.testing import GCSServer

B = "b0undary"


def _body(meta: dict[str, object], data: bytes, eol: bytes, media_headers: bool) -> bytes:
    head = f"--{B}".encode() + eol + b"Content-Type: application/json; charset=UTF-8" + eol + eol
    media_head = f"--{B}".encode() + eol
    if media_headers:
        media_head += b"Content-Type: text/plain" + eol
    return (
        head
        + json.dumps(meta).encode()
        + eol
        + media_head
        + eol
        + data
        + eol
        + f"--{B}--".encode()
        + eol
    )


def _post(server: GCSServer, bucket: str, body: bytes) -> requests.Response:
    return requests.post(
        f"{server.endpoint}/upload/storage/v1/b/{bucket}/o?uploadType=multipart",
        data=body,
        headers={"Content-Type": f'multipart/related; boundary="{B}"'},
        timeout=30,
    )


def _md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


@pytest.mark.parametrize(
    ("eol", "media_headers", "size"),
    [
        (b"\r\n", True, 1000),
        (b"\n", True, 1000),  # gcsfs
        (b"\r\n", False, 1000),  # rclone (Go mime/multipart)
        (b"\n", False, 0),
        (b"\n", True, (9 << 20) + 3),  # several receive buffers, LF only
        (b"\r\n", False, (5 << 20) + 1),
    ],
)
def test_shapes(
    gcs_server: GCSServer, gcs_bucket: str, eol: bytes, media_headers: bool, size: int
) -> None:
    data = os.urandom(size)
    name = f"shape-{len(eol)}-{media_headers}-{size}"
    resp = _post(gcs_server, gcs_bucket, _body({"name": name}, data, eol, media_headers))
    assert resp.status_code == 200, resp.text
    doc = resp.json()
    assert doc["size"] == str(size) and doc["md5Hash"] == _md5(data)
    expected_type = "text/plain" if media_headers else "application/octet-stream"
    assert doc["contentType"] == expected_type
    assert gcs_server.object_bytes(gcs_bucket, name) == data


def test_media_that_looks_like_line_endings_is_kept(gcs_server: GCSServer, gcs_bucket: str) -> None:
    # Only the one line ending before the closing boundary belongs to the boundary.
    data = b"\r\n\r\n--not-the-boundary\n\r"
    resp = _post(gcs_server, gcs_bucket, _body({"name": "ends"}, data, b"\r\n", True))
    assert resp.status_code == 200, resp.text
    assert gcs_server.object_bytes(gcs_bucket, "ends") == data


def test_preamble_epilogue_and_empty_metadata_headers(
    gcs_server: GCSServer, gcs_bucket: str
) -> None:
    data = os.urandom(70000)
    body = (
        b"This is a preamble.\r\n"
        + f"--{B}\r\n\r\n".encode()
        + json.dumps({"name": "pre", "contentType": "image/png"}).encode()
        + f"\r\n--{B}\r\n\r\n".encode()
        + data
        + f"\r\n--{B}--\r\nand an epilogue\r\n".encode()
    )
    resp = _post(gcs_server, gcs_bucket, body)
    assert resp.status_code == 200, resp.text
    assert resp.json()["contentType"] == "image/png"
    assert gcs_server.object_bytes(gcs_bucket, "pre") == data


def test_chunked_body(gcs_server: GCSServer, gcs_bucket: str) -> None:
    data = os.urandom((4 << 20) + 777)
    body = _body({"name": "chunked"}, data, b"\r\n", False)
    pieces = [body[i : i + 100_000] for i in range(0, len(body), 100_000)]
    resp = requests.post(
        f"{gcs_server.endpoint}/upload/storage/v1/b/{gcs_bucket}/o?uploadType=multipart",
        data=iter(pieces),
        headers={"Content-Type": f"multipart/related; boundary={B}"},
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    assert gcs_server.object_bytes(gcs_bucket, "chunked") == data


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (
            _body({"name": "x"}, b"data", b"\r\n", True)[: -len(f"--{B}--\r\n")],
            "does not end with the closing boundary",
        ),
        (
            f"--{B}\r\n\r\n{{}}\r\n--{B}\r\nContent-Type: text/plain\r\n".encode(),
            "before the media part's headers end with a blank line",
        ),
        (b"no boundary anywhere in here", "does not occur in the body"),
        (f"--{B}\r\n\r\n{{}}\r\n--{B}--\r\n".encode(), "no media part"),
        (
            f"--{B}\r\nnot a header\r\n\r\n{{}}\r\n--{B}\r\n\r\nx\r\n--{B}--".encode(),
            "malformed header line",
        ),
    ],
)
def test_malformed_bodies_are_400(
    gcs_server: GCSServer, gcs_bucket: str, body: bytes, problem: str
) -> None:
    resp = _post(gcs_server, gcs_bucket, body)
    assert resp.status_code == 400
    message = resp.json()["error"]["message"]
    assert message.startswith("Invalid multipart request: ") and problem in message
    # The connection stays usable and nothing was stored.
    assert requests.get(f"{gcs_server.endpoint}/storage/v1/b/{gcs_bucket}/o").json()["items"] == []


def test_missing_boundary_parameter_is_400(gcs_server: GCSServer, gcs_bucket: str) -> None:
    resp = requests.post(
        f"{gcs_server.endpoint}/upload/storage/v1/b/{gcs_bucket}/o?uploadType=multipart",
        data=b"x",
        headers={"Content-Type": "multipart/related"},
    )
    assert resp.status_code == 400
    assert "no multipart boundary" in resp.json()["error"]["message"]


def test_keep_alive_after_lf_body(gcs_server: GCSServer, gcs_bucket: str) -> None:
    # Two LF-only uploads on one raw connection: the first body is consumed exactly.
    port = urlsplit(gcs_server.endpoint).port
    with socket.create_connection(("127.0.0.1", port or 0), timeout=10) as sock:
        f = sock.makefile("rb")
        for name in ("ka1", "ka2"):
            body = _body({"name": name}, name.encode() * 3, b"\n", True)
            sock.sendall(
                f"POST /upload/storage/v1/b/{gcs_bucket}/o?uploadType=multipart HTTP/1.1\r\n"
                f"Host: x\r\nContent-Type: multipart/related; boundary={B}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            status = f.readline()
            assert status.startswith(b"HTTP/1.1 200"), status
            length = 0
            while (line := f.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            assert json.loads(f.read(length))["name"] == name
    assert gcs_server.object_bytes(gcs_bucket, "ka2") == b"ka2ka2ka2"


@pytest.mark.parametrize("eol", [b"\r\n", b"\n"], ids=["crlf", "lf"])
@pytest.mark.parametrize("ending", [b"\r", b"\n", b"\r\n", b"\r\r", b"x"], ids=repr)
def test_media_ending_in_cr_or_lf_is_kept_exactly(
    gcs_server: GCSServer, gcs_bucket: str, eol: bytes, ending: bytes
) -> None:
    # A media part whose own last bytes are CR or LF: with LF-only lines (gcsfs, gsutil's
    # apitools) a CR before the closing boundary is data, not half of a CRLF.
    data = os.urandom(65534) + ending
    name = f"ends-{eol.hex()}-{ending.hex()}"
    resp = _post(gcs_server, gcs_bucket, _body({"name": name}, data, eol, True))
    assert resp.status_code == 200, resp.text
    assert resp.json()["size"] == str(len(data))
    assert gcs_server.object_bytes(gcs_bucket, name) == data
