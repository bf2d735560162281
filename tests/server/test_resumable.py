"""Resumable upload sessions on the loopback server: GCS 308/Range semantics, over real HTTP."""

from __future__ import annotations

import base64
import hashlib
import os

import google_crc32c
import requests

from resumable_media.testing import GCSServer

Q = 256 * 1024
SHORT_TEXT = (
    "Invalid request.  The number of bytes uploaded is required to be equal or greater than "
    "262144, except for the final request (it's recommended to be the exact multiple of "
    "262144).  The received request contained {n} bytes, which does not meet this requirement."
)


def b64crc(data: bytes) -> str:
    return base64.b64encode(google_crc32c.value(data).to_bytes(4, "big")).decode()


def initiate(server: GCSServer, bucket: str, name: str, **headers: str) -> str:
    resp = requests.post(
        f"{server.endpoint}/upload/storage/v1/b/{bucket}/o?uploadType=resumable",
        json={"name": name, "metadata": {"m": "1"}},
        headers=headers,
    )
    assert resp.status_code == 200, resp.text
    assert resp.content == b""
    location = resp.headers["Location"]
    upload_id = resp.headers["X-GUploader-UploadID"]
    assert location.startswith(server.endpoint + f"/upload/storage/v1/b/{bucket}/o?")
    assert location.endswith(f"upload_id={upload_id}")
    return location


def put(url: str, data: bytes, content_range: str, **headers: str) -> requests.Response:
    return requests.put(url, data=data, headers={"Content-Range": content_range, **headers})


def test_chunks_overlap_and_finalize(gcs_server: GCSServer, gcs_bucket: str) -> None:
    data = os.urandom(3 * Q + 1000)
    url = initiate(gcs_server, gcs_bucket, "r", **{"X-Upload-Content-Type": "text/plain"})
    status = put(url, b"", "bytes */*")
    assert status.status_code == 308 and "Range" not in status.headers
    first = put(url, data[:Q], f"bytes 0-{Q - 1}/*")
    assert first.status_code == 308 and first.headers["Range"] == f"bytes=0-{Q - 1}"
    # Re-sent overlapping bytes are ignored; only the new tail is appended.
    second = put(url, data[: 2 * Q], f"bytes 0-{2 * Q - 1}/*")
    assert second.headers["Range"] == f"bytes=0-{2 * Q - 1}"
    assert put(url, b"", f"bytes */{len(data)}").headers["Range"] == f"bytes=0-{2 * Q - 1}"
    final = put(url, data[2 * Q :], f"bytes {2 * Q}-{len(data) - 1}/{len(data)}")
    assert final.status_code == 200, final.text
    doc = final.json()
    assert doc["size"] == str(len(data)) and doc["crc32c"] == b64crc(data)
    assert doc["contentType"] == "text/plain" and doc["metadata"] == {"m": "1"}
    assert gcs_server.object_bytes(gcs_bucket, "r") == data
    after = put(url, b"", "bytes */*")
    assert after.status_code == 200 and after.json()["generation"] == doc["generation"]


def test_non_multiple_chunk_persists_aligned_prefix(gcs_server: GCSServer, gcs_bucket: str) -> None:
    data = os.urandom(2 * Q)
    url = initiate(gcs_server, gcs_bucket, "align")
    resp = put(url, data[: Q + 100], f"bytes 0-{Q + 99}/*")
    assert resp.status_code == 308 and resp.headers["Range"] == f"bytes=0-{Q - 1}"
    final = put(url, data[Q:], f"bytes {Q}-{2 * Q - 1}/{2 * Q}")
    assert final.status_code == 200
    assert gcs_server.object_bytes(gcs_bucket, "align") == data


def test_short_non_final_chunk_poisons_session(gcs_server: GCSServer, gcs_bucket: str) -> None:
    url = initiate(gcs_server, gcs_bucket, "short")
    resp = put(url, b"x" * 1024, "bytes 0-1023/*")
    assert resp.status_code == 400
    assert resp.text == SHORT_TEXT.format(n=1024)
    again = put(url, b"x" * Q, f"bytes 0-{Q - 1}/*")
    assert again.status_code == 400 and again.text == SHORT_TEXT.format(n=1024)
    assert not gcs_server.has_object(gcs_bucket, "short")


def test_empty_final_put_and_empty_object(gcs_server: GCSServer, gcs_bucket: str) -> None:
    data = os.urandom(Q)
    url = initiate(gcs_server, gcs_bucket, "exact")
    assert put(url, data, f"bytes 0-{Q - 1}/*").status_code == 308
    done = put(url, b"", f"bytes */{Q}")
    assert done.status_code == 200 and done.json()["size"] == str(Q)
    url = initiate(gcs_server, gcs_bucket, "empty")
    empty = put(url, b"", "bytes */0")
    assert empty.status_code == 200 and empty.json()["size"] == "0"
    assert gcs_server.object_bytes(gcs_bucket, "empty") == b""


def test_one_shot_put(gcs_server: GCSServer, gcs_bucket: str) -> None:
    url = initiate(gcs_server, gcs_bucket, "one")
    resp = requests.put(url, data=b"whole object")
    assert resp.status_code == 200
    assert gcs_server.object_bytes(gcs_bucket, "one") == b"whole object"


def test_final_hash_checked(gcs_server: GCSServer, gcs_bucket: str) -> None:
    url = initiate(gcs_server, gcs_bucket, "hashed")
    wrong = b64crc(b"nope")
    resp = put(url, b"data", "bytes 0-3/4", **{"x-goog-hash": f"crc32c={wrong}"})
    assert resp.status_code == 400
    assert resp.json()["error"]["message"] == (
        f'Provided CRC32C "{wrong}" doesn\'t match calculated CRC32C "{b64crc(b"data")}"'
    )
    assert not gcs_server.has_object(gcs_bucket, "hashed")
    url = initiate(gcs_server, gcs_bucket, "hashed")
    ok = put(url, b"data", "bytes 0-3/4", **{"x-goog-hash": f"crc32c={b64crc(b'data')}"})
    assert ok.status_code == 200


def test_cancel_is_499_then_404(gcs_server: GCSServer, gcs_bucket: str) -> None:
    url = initiate(gcs_server, gcs_bucket, "cancelled")
    assert put(url, b"y" * Q, f"bytes 0-{Q - 1}/*").status_code == 308
    assert requests.delete(url).status_code == 499
    gone = put(url, b"", "bytes */*")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == 404
    assert not gcs_server.has_object(gcs_bucket, "cancelled")


def test_if_generation_match_on_resumable(gcs_server: GCSServer, gcs_bucket: str) -> None:
    base = f"{gcs_server.endpoint}/upload/storage/v1/b/{gcs_bucket}/o?uploadType=resumable"
    gcs_server.put_object(gcs_bucket, "exists", b"old")
    assert requests.post(f"{base}&name=exists&ifGenerationMatch=0").status_code == 412
    # A session that was valid at initiate fails at the end if the object appeared meanwhile.
    url = requests.post(f"{base}&name=later&ifGenerationMatch=0").headers["Location"]
    gcs_server.put_object(gcs_bucket, "later", b"old")
    final = put(url, b"new", "bytes 0-2/3")
    assert final.status_code == 412
    assert gcs_server.object_bytes(gcs_bucket, "later") == b"old"


def test_bad_requests(gcs_server: GCSServer, gcs_bucket: str) -> None:
    url = initiate(gcs_server, gcs_bucket, "bad", **{"X-Upload-Content-Length": str(2 * Q)})
    assert put(url, b"abc", "bytes zz").status_code == 400
    assert put(url, b"abc", "bytes 0-2/3").status_code == 400  # total != declared size
    assert put(url, b"abc", f"bytes {Q}-{Q + 2}/*").status_code == 400  # gap
    assert put(url, b"abc", "bytes 0-9/*").status_code == 400  # length mismatch
    unknown = url.split("upload_id=")[0] + "upload_id=nope"
    assert put(unknown, b"", "bytes */*").status_code == 404
    assert put(url, b"", "bytes */*").status_code == 308  # the session survived all of that
    no_bucket = requests.post(
        f"{gcs_server.endpoint}/upload/storage/v1/b/nobucket/o?uploadType=resumable&name=x"
    )
    assert no_bucket.status_code == 404
    bad_json = requests.post(
        f"{gcs_server.endpoint}/upload/storage/v1/b/{gcs_bucket}/o?uploadType=resumable",
        data=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert bad_json.status_code == 400


def test_location_uses_host_header(gcs_server: GCSServer, gcs_bucket: str) -> None:
    port = gcs_server.endpoint.rsplit(":", 1)[1]
    resp = requests.post(
        f"{gcs_server.endpoint}/upload/storage/v1/b/{gcs_bucket}/o?uploadType=resumable&name=h",
        headers={"Host": f"localhost:{port}"},
    )
    assert resp.headers["Location"].startswith(f"http://localhost:{port}/upload/")


def test_large_chunks_with_overlap(gcs_server: GCSServer, gcs_bucket: str) -> None:
    # Bodies above one receive buffer take the pipelined path (MD5 on a helper thread).
    data = os.urandom(12 << 20)
    url = initiate(gcs_server, gcs_bucket, "large")
    first = put(url, data[: 6 << 20], f"bytes 0-{(6 << 20) - 1}/*")
    assert first.headers["Range"] == f"bytes=0-{(6 << 20) - 1}"
    # Resend from 1 MiB: 5 MiB of overlap are skipped, the rest appended.
    final = put(url, data[1 << 20 :], f"bytes {1 << 20}-{len(data) - 1}/{len(data)}")
    assert final.status_code == 200
    doc = final.json()
    assert doc["crc32c"] == b64crc(data)
    assert doc["md5Hash"] == base64.b64encode(hashlib.md5(data).digest()).decode()
    assert gcs_server.object_bytes(gcs_bucket, "large") == data


def test_no_308_header(gcs_server: GCSServer, gcs_bucket: str) -> None:
    url = initiate(gcs_server, gcs_bucket, "no308")
    resp = put(url, b"z" * Q, f"bytes 0-{Q - 1}/*", **{"X-Guploader-No-308": "yes"})
    assert resp.status_code == 200
    assert resp.headers["X-Http-Status-Code-Override"] == "308"
    assert resp.headers["Range"] == f"bytes=0-{Q - 1}"


def test_location_is_the_request_url_plus_upload_id(gcs_server: GCSServer, gcs_bucket: str) -> None:
    # As on GCS: nothing is added to the URL but the session id (no name= when the name
    # came in the body), and parameters the client sent are kept as sent.
    url = f"{gcs_server.endpoint}/upload/storage/v1/b/{gcs_bucket}/o?uploadType=resumable"
    for query, body in (("", {"name": "in-body"}), ("&name=in%2Furl&ifGenerationMatch=0", {})):
        resp = requests.post(url + query, json=body)
        assert resp.status_code == 200, resp.text
        upload_id = resp.headers["X-GUploader-UploadID"]
        assert resp.headers["Location"] == f"{url}{query}&upload_id={upload_id}"
        done = requests.put(resp.headers["Location"], data=b"abc")
        assert done.status_code == 200, done.text
    assert gcs_server.object_bytes(gcs_bucket, "in-body") == b"abc"
    assert gcs_server.object_bytes(gcs_bucket, "in/url") == b"abc"
