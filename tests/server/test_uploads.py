"""Media and multipart uploads to the loopback server, over real HTTP."""

from __future__ import annotations

import base64
import hashlib
import json
import os

import google_crc32c
import requests

from resumable_media.testing import GCSServer


def b64crc(data: bytes) -> str:
    return base64.b64encode(google_crc32c.value(data).to_bytes(4, "big")).decode()


def b64md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def upload_url(server: GCSServer, bucket: str, kind: str) -> str:
    return f"{server.endpoint}/upload/storage/v1/b/{bucket}/o?uploadType={kind}"


def multipart_body(meta: dict[str, object], data: bytes, boundary: str = "==b0undary==") -> bytes:
    return (
        f"--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n".encode()
        + json.dumps(meta).encode()
        + f"\r\n--{boundary}\r\nContent-Type: image/png\r\n\r\n".encode()
        + data
        + f"\r\n--{boundary}--".encode()
    )


def test_media_upload(gcs_server: GCSServer, gcs_bucket: str) -> None:
    data = os.urandom(3 << 20)
    resp = requests.post(
        upload_url(gcs_server, gcs_bucket, "media") + "&name=a%2Fb",
        data=data,
        headers={"Content-Type": "text/csv"},
    )
    assert resp.status_code == 200, resp.text
    doc = resp.json()
    assert doc["name"] == "a/b" and doc["size"] == str(len(data))
    assert doc["crc32c"] == b64crc(data) and doc["md5Hash"] == b64md5(data)
    assert doc["contentType"] == "text/csv" and doc["metageneration"] == "1"
    assert "metadata" not in doc
    assert gcs_server.object_bytes(gcs_bucket, "a/b") == data
    got = requests.get(doc["mediaLink"])
    assert got.headers["Content-Type"] == "text/csv"


def test_media_upload_x_goog_hash_checked(gcs_server: GCSServer, gcs_bucket: str) -> None:
    url = upload_url(gcs_server, gcs_bucket, "media") + "&name=h"
    bad = b64crc(b"other")
    resp = requests.post(url, data=b"payload", headers={"x-goog-hash": f"crc32c={bad}"})
    assert resp.status_code == 400
    assert resp.json()["error"]["message"] == (
        f'Provided CRC32C "{bad}" doesn\'t match calculated CRC32C "{b64crc(b"payload")}"'
    )
    assert not gcs_server.has_object(gcs_bucket, "h")
    good = f"crc32c={b64crc(b'payload')},md5={b64md5(b'payload')}"
    assert requests.post(url, data=b"payload", headers={"x-goog-hash": good}).status_code == 200


def test_media_upload_chunked_body(gcs_server: GCSServer, gcs_bucket: str) -> None:
    parts = [os.urandom(100_000) for _ in range(5)]
    resp = requests.post(upload_url(gcs_server, gcs_bucket, "media") + "&name=c", data=iter(parts))
    assert resp.status_code == 200
    assert gcs_server.object_bytes(gcs_bucket, "c") == b"".join(parts)


def test_media_upload_preconditions(gcs_server: GCSServer, gcs_bucket: str) -> None:
    url = upload_url(gcs_server, gcs_bucket, "media") + "&name=p"
    first = requests.post(url + "&ifGenerationMatch=0", data=b"1")
    assert first.status_code == 200
    again = requests.post(url + "&ifGenerationMatch=0", data=b"2")
    assert again.status_code == 412
    assert gcs_server.object_bytes(gcs_bucket, "p") == b"1"
    gen = first.json()["generation"]
    ok = requests.post(url + f"&ifGenerationMatch={gen}", data=b"3")
    assert ok.status_code == 200
    assert int(ok.json()["generation"]) > int(gen)


def test_media_upload_missing_bucket_and_name(gcs_server: GCSServer, gcs_bucket: str) -> None:
    resp = requests.post(upload_url(gcs_server, "missing-bucket", "media") + "&name=x", data=b"x")
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == 404
    assert requests.post(upload_url(gcs_server, gcs_bucket, "media"), data=b"x").status_code == 400


def test_multipart_upload(gcs_server: GCSServer, gcs_bucket: str) -> None:
    data = os.urandom(300_000) + b"\r\n--==b0undary==-- lookalike"
    meta: dict[str, object] = {
        "name": "mp",
        "metadata": {"a": "1"},
        "crc32c": b64crc(data),
        "md5Hash": b64md5(data),
        "cacheControl": "no-cache",
    }
    resp = requests.post(
        upload_url(gcs_server, gcs_bucket, "multipart"),
        data=multipart_body(meta, data),
        headers={"Content-Type": 'multipart/related; boundary="==b0undary=="'},
    )
    assert resp.status_code == 200, resp.text
    doc = resp.json()
    assert doc["metadata"] == {"a": "1"} and doc["contentType"] == "image/png"
    assert doc["size"] == str(len(data)) and doc["cacheControl"] == "no-cache"
    assert gcs_server.object_bytes(gcs_bucket, "mp") == data


def test_multipart_checksum_mismatch_is_400(gcs_server: GCSServer, gcs_bucket: str) -> None:
    data = b"multipart data"
    for field, label in (("crc32c", "CRC32C"), ("md5Hash", "MD5 hash")):
        wrong = b64crc(b"x") if field == "crc32c" else b64md5(b"x")
        resp = requests.post(
            upload_url(gcs_server, gcs_bucket, "multipart"),
            data=multipart_body({"name": "bad", field: wrong}, data),
            headers={"Content-Type": "multipart/related; boundary===b0undary=="},
        )
        assert resp.status_code == 400
        msg = resp.json()["error"]["message"]
        assert msg.startswith(f'Provided {label} "{wrong}" doesn\'t match calculated {label} "')
    assert not gcs_server.has_object(gcs_bucket, "bad")


def test_multipart_malformed(gcs_server: GCSServer, gcs_bucket: str) -> None:
    url = upload_url(gcs_server, gcs_bucket, "multipart")
    bad_json = multipart_body({}, b"x").replace(b"{}", b"{nope")
    resp = requests.post(
        url, data=bad_json, headers={"Content-Type": "multipart/related; boundary===b0undary=="}
    )
    assert resp.status_code == 400
    resp = requests.post(
        url, data=b"garbage", headers={"Content-Type": "multipart/related; boundary=x"}
    )
    assert resp.status_code == 400
    resp = requests.post(url, data=b"garbage", headers={"Content-Type": "application/json"})
    assert resp.status_code == 400
    assert not gcs_server.has_object(gcs_bucket, "")
