"""Media downloads and object metadata from the loopback server, over real HTTP."""

from __future__ import annotations

import base64
import gzip
import hashlib
import os
from urllib.parse import quote

import google_crc32c
import pytest
import requests

from resumable_media.testing import GCSServer


def media_url(server: GCSServer, bucket: str, name: str) -> str:
    return f"{server.endpoint}/download/storage/v1/b/{bucket}/o/{quote(name, safe='')}?alt=media"


def expected_hash(data: bytes) -> str:
    crc = base64.b64encode(google_crc32c.value(data).to_bytes(4, "big")).decode()
    md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
    return f"crc32c={crc},md5={md5}"


@pytest.fixture
def obj(gcs_server: GCSServer, gcs_bucket: str) -> tuple[str, bytes]:
    data = os.urandom(70000)
    gcs_server.put_object(
        gcs_bucket, "dir/obj name", data, content_type="text/x-test", metadata={"k": "v"}
    )
    return "dir/obj name", data


def test_full_download_headers(
    gcs_server: GCSServer, gcs_bucket: str, obj: tuple[str, bytes]
) -> None:
    name, data = obj
    resp = requests.get(media_url(gcs_server, gcs_bucket, name))
    assert resp.status_code == 200
    assert resp.content == data
    h = resp.headers
    assert h["Content-Length"] == str(len(data))
    assert h["Content-Type"] == "text/x-test"
    assert h["x-goog-hash"] == expected_hash(data)
    assert h["x-goog-stored-content-length"] == str(len(data))
    assert h["x-goog-stored-content-encoding"] == "identity"
    assert h["x-goog-storage-class"] == "STANDARD"
    assert h["x-goog-meta-k"] == "v"
    assert h["Accept-Ranges"] == "bytes"
    assert "ETag" in h and "Last-Modified" in h
    assert "Content-Range" not in h
    meta = requests.get(f"{gcs_server.endpoint}/storage/v1/b/{gcs_bucket}/o/{quote(name, safe='')}")
    assert h["x-goog-generation"] == meta.json()["generation"]
    assert h["x-goog-metageneration"] == "1"


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=100-199", 100, 199),
        ("bytes=0-0", 0, 0),
        ("bytes=69000-", 69000, 69999),
        ("bytes=-500", 69500, 69999),
        ("bytes=100-999999", 100, 69999),
        ("bytes=-100000", 0, 69999),
    ],
)
def test_ranges(
    gcs_server: GCSServer,
    gcs_bucket: str,
    obj: tuple[str, bytes],
    header: str,
    start: int,
    end: int,
) -> None:
    name, data = obj
    resp = requests.get(media_url(gcs_server, gcs_bucket, name), headers={"Range": header})
    assert resp.status_code == 206
    assert resp.headers["Content-Range"] == f"bytes {start}-{end}/{len(data)}"
    assert resp.content == data[start : end + 1]
    assert resp.headers["x-goog-hash"] == expected_hash(data)  # full-object hash on 206


def test_range_past_end_is_416(
    gcs_server: GCSServer, gcs_bucket: str, obj: tuple[str, bytes]
) -> None:
    name, data = obj
    resp = requests.get(media_url(gcs_server, gcs_bucket, name), headers={"Range": "bytes=80000-"})
    assert resp.status_code == 416
    assert resp.headers["Content-Range"] == f"bytes */{len(data)}"
    assert resp.json()["error"]["code"] == 416


def test_empty_object_range_416(gcs_server: GCSServer, gcs_bucket: str) -> None:
    gcs_server.put_object(gcs_bucket, "empty", b"")
    url = media_url(gcs_server, gcs_bucket, "empty")
    assert requests.get(url).content == b""
    resp = requests.get(url, headers={"Range": "bytes=0-"})
    assert resp.status_code == 416
    assert resp.headers["Content-Range"] == "bytes */0"


def test_malformed_range_serves_everything(
    gcs_server: GCSServer, gcs_bucket: str, obj: tuple[str, bytes]
) -> None:
    name, data = obj
    resp = requests.get(media_url(gcs_server, gcs_bucket, name), headers={"Range": "bytes=zz-1"})
    assert resp.status_code == 200
    assert resp.content == data


def test_alt_media_on_json_path_and_head(
    gcs_server: GCSServer, gcs_bucket: str, obj: tuple[str, bytes]
) -> None:
    name, data = obj
    url = f"{gcs_server.endpoint}/storage/v1/b/{gcs_bucket}/o/{quote(name, safe='')}?alt=media"
    assert requests.get(url).content == data
    head = requests.head(media_url(gcs_server, gcs_bucket, name))
    assert head.status_code == 200
    assert head.headers["Content-Length"] == str(len(data))
    assert head.content == b""


def test_metadata_resource(gcs_server: GCSServer, gcs_bucket: str, obj: tuple[str, bytes]) -> None:
    name, data = obj
    res = requests.get(f"{gcs_server.endpoint}/storage/v1/b/{gcs_bucket}/o/{quote(name, safe='')}")
    assert res.status_code == 200
    doc = res.json()
    assert doc["name"] == name and doc["bucket"] == gcs_bucket
    assert doc["size"] == str(len(data))
    assert doc["metageneration"] == "1"
    assert doc["storageClass"] == "STANDARD"
    assert doc["contentType"] == "text/x-test"
    assert doc["metadata"] == {"k": "v"}
    assert f"crc32c={doc['crc32c']},md5={doc['md5Hash']}" == expected_hash(data)
    assert doc["mediaLink"].startswith(gcs_server.endpoint + "/download/storage/v1/b/")
    assert requests.get(doc["mediaLink"]).content == data
    assert doc["timeCreated"].endswith("Z") and "etag" in doc and "selfLink" in doc


def test_metadata_key_absent_without_custom_metadata(
    gcs_server: GCSServer, gcs_bucket: str
) -> None:
    res = gcs_server.put_object(gcs_bucket, "plain", b"abc")
    assert "metadata" not in res
    assert res["size"] == "3"


def test_missing_object_and_bucket(gcs_server: GCSServer, gcs_bucket: str) -> None:
    resp = requests.get(media_url(gcs_server, gcs_bucket, "nope"))
    assert resp.status_code == 404
    assert resp.json()["error"]["message"] == f"No such object: {gcs_bucket}/nope"
    resp = requests.get(media_url(gcs_server, "no-such-bucket", "nope"))
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == 404


def test_generation_pinning_and_preconditions(gcs_server: GCSServer, gcs_bucket: str) -> None:
    first = gcs_server.put_object(gcs_bucket, "g", b"one")
    url = media_url(gcs_server, gcs_bucket, "g")
    assert requests.get(f"{url}&generation={first['generation']}").content == b"one"
    second = gcs_server.put_object(gcs_bucket, "g", b"two")
    assert int(second["generation"]) > int(first["generation"])
    assert requests.get(f"{url}&generation={first['generation']}").status_code == 404
    assert requests.get(f"{url}&generation={second['generation']}").content == b"two"
    assert requests.get(f"{url}&ifGenerationMatch={first['generation']}").status_code == 412
    assert requests.get(f"{url}&ifGenerationMatch={second['generation']}").status_code == 200
    assert requests.get(f"{url}&ifMetagenerationMatch=2").status_code == 412
    assert requests.get(f"{url}&ifMetagenerationMatch=1").status_code == 200
    assert requests.get(f"{url}&ifGenerationMatch=abc").status_code == 400


def test_gzip_transcoding(gcs_server: GCSServer, gcs_bucket: str) -> None:
    raw = b"hello transcoding " * 5000
    packed = gzip.compress(raw)
    gcs_server.put_object(
        gcs_bucket, "z", packed, content_type="text/plain", content_encoding="gzip"
    )
    url = media_url(gcs_server, gcs_bucket, "z")
    # Without Accept-Encoding: gzip -> decompressed, Range ignored, no Content-Length.
    plain = requests.get(url, headers={"Accept-Encoding": "identity", "Range": "bytes=0-9"})
    assert plain.status_code == 200
    assert plain.content == raw
    assert "Content-Encoding" not in plain.headers
    assert "Content-Length" not in plain.headers
    assert plain.headers["x-goog-stored-content-encoding"] == "gzip"
    assert plain.headers["x-goog-stored-content-length"] == str(len(packed))
    assert plain.headers["x-goog-hash"] == expected_hash(packed)
    # With gzip accepted -> stored bytes, Range honoured on them.
    with requests.get(
        url, headers={"Accept-Encoding": "gzip", "Range": "bytes=0-9"}, stream=True
    ) as r:
        assert r.status_code == 206
        assert r.headers["Content-Encoding"] == "gzip"
        assert r.raw.read(decode_content=False) == packed[:10]


def test_no_transform_disables_transcoding(gcs_server: GCSServer, gcs_bucket: str) -> None:
    packed = gzip.compress(b"x" * 1000)
    gcs_server.put_object(
        gcs_bucket, "nt", packed, content_encoding="gzip", cache_control="no-transform"
    )
    with requests.get(
        media_url(gcs_server, gcs_bucket, "nt"),
        headers={"Accept-Encoding": "identity"},
        stream=True,
    ) as r:
        assert r.headers["Content-Encoding"] == "gzip"
        assert r.headers["Cache-Control"] == "no-transform"
        assert r.raw.read(decode_content=False) == packed


def test_media_bytes_sent_and_request_log(
    gcs_server: GCSServer, gcs_bucket: str, obj: tuple[str, bytes]
) -> None:
    name, _data = obj
    before = gcs_server.media_bytes_sent
    before_here = gcs_server.media_bytes_sent_for(gcs_bucket)
    gcs_server.clear_requests()
    resp = requests.get(media_url(gcs_server, gcs_bucket, name), headers={"Range": "bytes=0-999"})
    assert resp.status_code == 206
    assert gcs_server.media_bytes_sent_for(gcs_bucket) - before_here == 1000
    assert gcs_server.media_bytes_sent - before >= 1000
    assert gcs_server.media_bytes_sent_for("some-other-bucket") == 0
    rec = gcs_server.requests[-1]
    assert rec.method == "GET" and rec.status == 206
    assert rec.headers["range"] == "bytes=0-999"
    assert rec.body_bytes_out == 1000 and rec.body_bytes_in == 0
    assert rec.path.startswith(f"/download/storage/v1/b/{gcs_bucket}/o/")


def test_keep_alive_and_concurrent_ranges(gcs_server: GCSServer, gcs_bucket: str) -> None:
    import concurrent.futures

    data = os.urandom(4 << 20)
    gcs_server.put_object(gcs_bucket, "big", data)
    url = media_url(gcs_server, gcs_bucket, "big")
    step = 1 << 20

    def fetch(i: int) -> bytes:
        with requests.Session() as s:
            return s.get(url, headers={"Range": f"bytes={i * step}-{(i + 1) * step - 1}"}).content

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        assert b"".join(pool.map(fetch, range(4))) == data
    with requests.Session() as s:  # one connection, several requests
        for _ in range(3):
            assert s.get(url, headers={"Range": "bytes=0-9"}).content == data[:10]
