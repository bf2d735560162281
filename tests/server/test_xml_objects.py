"""XML API object calls and bucket listing on the loopback server, over real HTTP."""

from __future__ import annotations

import base64
import hashlib
import os
import xml.etree.ElementTree as ET

import google_crc32c
import pytest
import requests

from resumable_media.testing import GCSServer
from resumable_media.testing.store import page

NS = "{http://doc.s3.amazonaws.com/2006-03-01}"


def _crc(data: bytes) -> str:
    return base64.b64encode(google_crc32c.value(data).to_bytes(4, "big")).decode()


def _md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def _url(server: GCSServer, bucket: str, name: str = "") -> str:
    return f"{server.endpoint}/{bucket}/{name}"


def test_put_get_head_delete(gcs_server: GCSServer, gcs_bucket: str) -> None:
    data = os.urandom(300_000)
    url = _url(gcs_server, gcs_bucket, "dir/obj%2Ebin")
    put = requests.put(
        url,
        data=data,
        headers={
            "Content-Type": "text/csv",
            "x-goog-meta-colour": "blue",
            "x-goog-hash": f"crc32c={_crc(data)},md5={_md5(data)}",
        },
    )
    assert put.status_code == 200, put.text
    assert put.content == b""
    assert put.headers["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    assert put.headers["x-goog-hash"] == f"crc32c={_crc(data)},md5={_md5(data)}"
    generation = put.headers["x-goog-generation"]
    assert put.headers["x-goog-metageneration"] == "1"
    assert gcs_server.object_bytes(gcs_bucket, "dir/obj.bin") == data

    got = requests.get(url)
    assert got.status_code == 200 and got.content == data
    assert got.headers["ETag"] == put.headers["ETag"]
    assert got.headers["x-goog-generation"] == generation
    assert got.headers["Content-Type"] == "text/csv"
    assert got.headers["x-goog-meta-colour"] == "blue"
    assert "Last-Modified" in got.headers

    part = requests.get(url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == data[100:200]
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(data)}"
    assert part.headers["x-goog-hash"] == put.headers["x-goog-hash"]  # whole-object hash

    head = requests.head(url)
    assert head.status_code == 200 and head.headers["Content-Length"] == str(len(data))
    assert requests.get(url, headers={"If-None-Match": put.headers["ETag"]}).status_code == 304
    assert requests.get(url, headers={"If-Match": '"other"'}).status_code == 412

    assert requests.delete(url).status_code == 204
    missing = requests.get(url)
    assert missing.status_code == 404
    assert ET.fromstring(missing.content).findtext("Code") == "NoSuchKey"
    assert requests.delete(url).status_code == 404


def test_put_failures(gcs_server: GCSServer, gcs_bucket: str) -> None:
    url = _url(gcs_server, gcs_bucket, "p")
    bad = requests.put(url, data=b"payload", headers={"x-goog-hash": f"crc32c={_crc(b'x')}"})
    assert bad.status_code == 400
    assert ET.fromstring(bad.content).findtext("Code") == "BadDigest"
    assert not gcs_server.has_object(gcs_bucket, "p")
    first = requests.put(url, data=b"one", headers={"x-goog-if-generation-match": "0"})
    assert first.status_code == 200
    again = requests.put(url, data=b"two", headers={"x-goog-if-generation-match": "0"})
    assert again.status_code == 412
    assert ET.fromstring(again.content).findtext("Code") == "PreconditionFailed"
    assert gcs_server.object_bytes(gcs_bucket, "p") == b"one"
    nobucket = requests.put(_url(gcs_server, "no-such-bucket", "x"), data=b"x")
    assert nobucket.status_code == 404
    assert ET.fromstring(nobucket.content).findtext("Code") == "NoSuchBucket"
    assert requests.post(_url(gcs_server, gcs_bucket)).status_code == 405


def _list(server: GCSServer, bucket: str, **params: str) -> ET.Element:
    resp = requests.get(_url(server, bucket), params={"list-type": "2", **params})
    assert resp.status_code == 200, resp.text
    return ET.fromstring(resp.content)


def test_list_v2(gcs_server: GCSServer, gcs_bucket: str) -> None:
    names = ["a.txt", "d/1", "d/2", "d/e/3", "f/4", "z"]
    for name in names:
        gcs_server.put_object(gcs_bucket, name, name.encode())
    doc = _list(gcs_server, gcs_bucket)
    assert [k.text for k in doc.iter(f"{NS}Key")] == names
    first = doc.find(f"{NS}Contents")
    assert first is not None
    assert first.findtext(f"{NS}Size") == "5"
    assert first.findtext(f"{NS}ETag") == f'"{hashlib.md5(b"a.txt").hexdigest()}"'
    assert doc.findtext(f"{NS}KeyCount") == "6" and doc.findtext(f"{NS}IsTruncated") == "false"

    doc = _list(gcs_server, gcs_bucket, delimiter="/")
    assert [k.text for k in doc.iter(f"{NS}Key")] == ["a.txt", "z"]
    assert [p.text for p in doc.iter(f"{NS}Prefix")][1:] == ["d/", "f/"]

    doc = _list(gcs_server, gcs_bucket, prefix="d/", delimiter="/")
    assert [k.text for k in doc.iter(f"{NS}Key")] == ["d/1", "d/2"]
    assert [p.text for p in doc.findall(f"{NS}CommonPrefixes/{NS}Prefix")] == ["d/e/"]

    # Pages of two with a delimiter: a prefix is one entry and is never repeated.
    seen: list[str] = []
    token = None
    for _ in range(10):
        params = {"delimiter": "/", "max-keys": "2"}
        if token:
            params["continuation-token"] = token
        doc = _list(gcs_server, gcs_bucket, **params)
        seen += [k.text or "" for k in doc.iter(f"{NS}Key")]
        seen += [p.text or "" for p in doc.findall(f"{NS}CommonPrefixes/{NS}Prefix")]
        token = doc.findtext(f"{NS}NextContinuationToken")
        if doc.findtext(f"{NS}IsTruncated") == "false":
            assert token is None
            break
    assert sorted(seen) == ["a.txt", "d/", "f/", "z"]
    assert [
        k.text for k in _list(gcs_server, gcs_bucket, **{"start-after": "d/2"}).iter(f"{NS}Key")
    ] == ["d/e/3", "f/4", "z"]
    bad = requests.get(
        _url(gcs_server, gcs_bucket), params={"list-type": "2", "continuation-token": "%%"}
    )
    assert bad.status_code == 400


@pytest.mark.parametrize("limit", [1, 2, 3, 10])
def test_page_visits_every_entry_once(gcs_server: GCSServer, gcs_bucket: str, limit: int) -> None:
    for name in ["a", "b/1", "b/2", "b/3", "c", "d/1"]:
        gcs_server.put_object(gcs_bucket, name, b"")
    objects = gcs_server._state.store.list(gcs_bucket)
    after, entries = "", []
    while True:
        got = page(objects, "", "/", after, limit)
        assert len(got.objects) + len(got.prefixes) <= limit
        entries += [o.name for o in got.objects] + got.prefixes
        if got.next_after is None:
            break
        after = got.next_after
    assert sorted(entries) == ["a", "b/", "c", "d/"]
