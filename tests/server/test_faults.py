"""Fault injection (Retry Test API and x-goog-emulator-instructions), over real HTTP."""

from __future__ import annotations

import http.client
import os
import time
from urllib.parse import urlsplit

import pytest
import requests

from resumable_media.testing import GCSServer

Q = 256 * 1024
GET, INSERT = "storage.objects.get", "storage.objects.insert"


def retry_test(server: GCSServer, instructions: dict[str, list[str]]) -> str:
    resp = requests.post(f"{server.endpoint}/retry_test", json={"instructions": instructions})
    assert resp.status_code == 200, resp.text
    doc = resp.json()
    assert doc["completed"] is False and doc["instructions"] == instructions
    return str(doc["id"])


def media_url(server: GCSServer, bucket: str, name: str) -> str:
    return f"{server.endpoint}/download/storage/v1/b/{bucket}/o/{name}?alt=media"


def initiate(server: GCSServer, bucket: str, name: str, **headers: str) -> requests.Response:
    return requests.post(
        f"{server.endpoint}/upload/storage/v1/b/{bucket}/o?uploadType=resumable&name={name}",
        headers=headers,
    )


def raw_get(url: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes, bool]:
    """GET with http.client: (status, headers, body received, whether it was cut short)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.netloc, timeout=10)
    try:
        conn.request("GET", f"{parts.path}?{parts.query}", headers=headers)
        resp = conn.getresponse()
        try:
            return resp.status, dict(resp.getheaders()), resp.read(), False
        except http.client.IncompleteRead as exc:
            return resp.status, dict(resp.getheaders()), exc.partial, True
    finally:
        conn.close()


def test_return_status_consumed_fifo_by_initiate(gcs_server: GCSServer, gcs_bucket: str) -> None:
    test_id = retry_test(gcs_server, {INSERT: ["return-503", "return-429"]})
    hdr = {"x-retry-test-id": test_id}
    first = initiate(gcs_server, gcs_bucket, "o", **hdr)
    assert first.status_code == 503
    assert first.json()["error"]["code"] == 503
    assert initiate(gcs_server, gcs_bucket, "o", **hdr).status_code == 429
    assert initiate(gcs_server, gcs_bucket, "o", **hdr).status_code == 200
    doc = requests.get(f"{gcs_server.endpoint}/retry_test/{test_id}").json()
    assert doc["completed"] is True and doc["instructions"] == {INSERT: []}
    assert gcs_server.retry_test(test_id)["completed"] is True


def test_reset_connection_persists_nothing(gcs_server: GCSServer, gcs_bucket: str) -> None:
    url = initiate(gcs_server, gcs_bucket, "reset").headers["Location"]
    test_id = gcs_server.create_retry_test({INSERT: ["return-reset-connection"]})
    with pytest.raises(requests.ConnectionError):
        requests.put(
            url,
            data=os.urandom(Q),
            headers={"Content-Range": f"bytes 0-{Q - 1}/*", "x-retry-test-id": test_id},
        )
    status = requests.put(url, headers={"Content-Range": "bytes */*"})
    assert status.status_code == 308 and "Range" not in status.headers


def test_503_after_256k_on_chunk(gcs_server: GCSServer, gcs_bucket: str) -> None:
    data = os.urandom(3 * Q)
    url = initiate(gcs_server, gcs_bucket, "partial").headers["Location"]
    test_id = gcs_server.create_retry_test({INSERT: ["return-503-after-256K"]})
    resp = requests.put(
        url,
        data=data[: 2 * Q],
        headers={"Content-Range": f"bytes 0-{2 * Q - 1}/*", "x-retry-test-id": test_id},
    )
    assert resp.status_code == 503
    status = requests.put(url, headers={"Content-Range": "bytes */*"})
    assert status.status_code == 308 and status.headers["Range"] == f"bytes=0-{Q - 1}"
    final = requests.put(
        url, data=data[Q:], headers={"Content-Range": f"bytes {Q}-{3 * Q - 1}/{3 * Q}"}
    )
    assert final.status_code == 200
    assert gcs_server.object_bytes(gcs_bucket, "partial") == data


def test_503_after_on_media_upload_creates_nothing(gcs_server: GCSServer, gcs_bucket: str) -> None:
    test_id = gcs_server.create_retry_test({INSERT: ["return-503-after-300K"]})
    resp = requests.post(
        f"{gcs_server.endpoint}/upload/storage/v1/b/{gcs_bucket}/o?uploadType=media&name=m",
        data=os.urandom(4 << 20),
        headers={"x-retry-test-id": test_id},
    )
    assert resp.status_code == 503
    assert not gcs_server.has_object(gcs_bucket, "m")


def test_broken_stream_on_range_is_206_and_cut(gcs_server: GCSServer, gcs_bucket: str) -> None:
    data = os.urandom(4 << 20)
    gcs_server.put_object(gcs_bucket, "bs", data)
    test_id = gcs_server.create_retry_test({GET: ["return-broken-stream-after-256K"]})
    url = media_url(gcs_server, gcs_bucket, "bs")
    hdrs = {"Range": "bytes=1000-3000000", "x-retry-test-id": test_id}
    # The metadata GET does not consume a streaming fault; the media GET does.
    meta = requests.get(url.replace("/download", "").split("?")[0], headers=hdrs)
    assert meta.status_code == 200
    status, headers, body, cut = raw_get(url, hdrs)
    assert status == 206 and cut
    assert headers["Content-Range"] == f"bytes 1000-3000000/{len(data)}"
    assert headers["Content-Length"] == "2999001"
    assert "x-goog-hash" in headers
    assert body == data[1000 : 1000 + Q]
    status, _, body, cut = raw_get(url, hdrs)
    assert status == 206 and not cut and body == data[1000:3000001]


def test_broken_final_chunk_truncates_json(gcs_server: GCSServer, gcs_bucket: str) -> None:
    url = initiate(gcs_server, gcs_bucket, "fin").headers["Location"]
    test_id = gcs_server.create_retry_test({INSERT: ["return-broken-stream-final-chunk-after-10B"]})
    hdrs = {"x-retry-test-id": test_id}
    # A non-final chunk does not consume it.
    mid = requests.put(url, data=b"a" * Q, headers={"Content-Range": f"bytes 0-{Q - 1}/*", **hdrs})
    assert mid.status_code == 308
    final = requests.put(
        url, data=b"b" * 10, headers={"Content-Range": f"bytes {Q}-{Q + 9}/{Q + 10}", **hdrs}
    )
    assert final.status_code == 200
    assert len(final.content) == 10 and final.headers["Content-Length"] == "10"
    assert gcs_server.has_object(gcs_bucket, "fin")
    again = requests.put(url, headers={"Content-Range": "bytes */*"})
    assert again.status_code == 200 and again.json()["size"] == str(Q + 10)


def test_stall_download_and_upload(gcs_server: GCSServer, gcs_bucket: str) -> None:
    data = os.urandom(1 << 20)
    gcs_server.put_object(gcs_bucket, "stall", data)
    test_id = gcs_server.create_retry_test(
        {GET: ["stall-for-0.5s-after-128K"], INSERT: ["stall-for-0.5s-after-256K"]}
    )
    began = time.monotonic()
    resp = requests.get(
        media_url(gcs_server, gcs_bucket, "stall"), headers={"x-retry-test-id": test_id}
    )
    assert time.monotonic() - began >= 0.45
    assert resp.content == data
    url = initiate(gcs_server, gcs_bucket, "stall-up").headers["Location"]
    began = time.monotonic()
    put = requests.put(
        url,
        data=data[: 2 * Q],
        headers={"Content-Range": f"bytes 0-{2 * Q - 1}/*", "x-retry-test-id": test_id},
    )
    assert time.monotonic() - began >= 0.45
    assert put.status_code == 308 and put.headers["Range"] == f"bytes=0-{2 * Q - 1}"


def test_corrupted_data_keeps_true_hash(gcs_server: GCSServer, gcs_bucket: str) -> None:
    data = os.urandom(100_000)
    gcs_server.put_object(gcs_bucket, "corrupt", data)
    url = media_url(gcs_server, gcs_bucket, "corrupt")
    clean = requests.get(url)
    test_id = gcs_server.create_retry_test({GET: ["return-corrupted-data"]})
    bad = requests.get(url, headers={"x-retry-test-id": test_id})
    assert bad.headers["x-goog-hash"] == clean.headers["x-goog-hash"]
    assert len(bad.content) == len(data) and bad.content != data
    assert bad.content[1:] == data[1:] and bad.content[0] == data[0] ^ 0xFF


def test_emulator_instructions_header(gcs_server: GCSServer, gcs_bucket: str) -> None:
    data = os.urandom(2 * Q)
    gcs_server.put_object(gcs_bucket, "hdr", data)
    url = media_url(gcs_server, gcs_bucket, "hdr")
    hdr = "x-goog-emulator-instructions"
    assert requests.get(url, headers={hdr: "return-corrupted-data"}).content != data
    assert requests.get(url, headers={hdr: "return-503-after-256K/retry-1"}).status_code == 503
    assert requests.get(url, headers={hdr: "return-503-after-256K/retry-3"}).content == data
    with pytest.raises(requests.exceptions.ChunkedEncodingError, match="reset"):
        requests.get(url, headers={hdr: "return-503-after-256K"})  # RST after 256 KiB
    loc = initiate(gcs_server, gcs_bucket, "hdr-up").headers["Location"]
    resp = requests.put(
        loc,
        data=data,
        headers={"Content-Range": f"bytes 0-{2 * Q - 1}/*", hdr: "return-503-after-256K"},
    )
    assert resp.status_code == 503
    status = requests.put(loc, headers={"Content-Range": "bytes */*"})
    assert status.headers["Range"] == f"bytes=0-{Q - 1}"
    assert requests.get(url, headers={hdr: "no-such-instruction"}).status_code == 400


def test_retry_test_api_validation(gcs_server: GCSServer) -> None:
    base = f"{gcs_server.endpoint}/retry_test"
    body = b'{"instructions": {"storage.objects.get": ["return-503"]}}'
    assert requests.post(base, data=body).status_code == 400  # no JSON content type
    assert (
        requests.post(base, json={"instructions": {"storage.nope": ["return-503"]}}).status_code
        == 400
    )
    assert requests.post(base, json={"instructions": {GET: ["return-bogus"]}}).status_code == 400
    assert (
        requests.post(base, data=b"{bad", headers={"Content-Type": "application/json"}).status_code
        == 400
    )
    test_id = retry_test(gcs_server, {GET: ["return-503"]})
    listed = requests.get(f"{gcs_server.endpoint}/retry_tests").json()["retry_test"]
    assert test_id in {t["id"] for t in listed}
    assert requests.delete(f"{base}/{test_id}").status_code == 200
    assert requests.get(f"{base}/{test_id}").status_code == 404
    unknown = requests.get(
        f"{gcs_server.endpoint}/storage/v1/b/x", headers={"x-retry-test-id": "zz"}
    )
    assert unknown.status_code == 404


def test_faults_do_not_leak_to_other_requests(gcs_server: GCSServer, gcs_bucket: str) -> None:
    gcs_server.put_object(gcs_bucket, "iso", b"isolated")
    test_id = gcs_server.create_retry_test({GET: ["return-503"]})
    url = media_url(gcs_server, gcs_bucket, "iso")
    assert requests.get(url).status_code == 200  # no header: untouched
    assert requests.get(url, headers={"x-retry-test-id": test_id}).status_code == 503
    assert requests.get(url, headers={"x-retry-test-id": test_id}).status_code == 200


def test_503_after_cut_on_large_chunk(gcs_server: GCSServer, gcs_bucket: str) -> None:
    data = os.urandom(10 << 20)
    url = initiate(gcs_server, gcs_bucket, "large-cut").headers["Location"]
    test_id = gcs_server.create_retry_test({INSERT: ["return-503-after-5000K"]})
    resp = requests.put(
        url,
        data=data[: 8 << 20],
        headers={"Content-Range": f"bytes 0-{(8 << 20) - 1}/*", "x-retry-test-id": test_id},
    )
    assert resp.status_code == 503
    kept = 5000 * 1024 // Q * Q  # persisted on a 256 KiB boundary
    status = requests.put(url, headers={"Content-Range": "bytes */*"})
    assert status.headers["Range"] == f"bytes=0-{kept - 1}"
    final = requests.put(
        url,
        data=data[kept:],
        headers={"Content-Range": f"bytes {kept}-{len(data) - 1}/{len(data)}"},
    )
    assert final.status_code == 200
    assert gcs_server.object_bytes(gcs_bucket, "large-cut") == data


def test_reset_and_short_broken_stream_on_download(gcs_server: GCSServer, gcs_bucket: str) -> None:
    data = os.urandom(100_000)
    gcs_server.put_object(gcs_bucket, "rs", data)
    url = media_url(gcs_server, gcs_bucket, "rs")
    test_id = gcs_server.create_retry_test(
        {GET: ["return-reset-connection", "return-broken-stream"]}
    )
    with pytest.raises(requests.ConnectionError):
        requests.get(url, headers={"x-retry-test-id": test_id})
    status, headers, body, cut = raw_get(url, {"x-retry-test-id": test_id})
    assert status == 200 and cut and body == data[:4]
    assert headers["Content-Length"] == str(len(data))
    assert gcs_server.retry_test(test_id)["completed"] is True
    assert requests.get(url, headers={"x-retry-test-id": test_id}).content == data
