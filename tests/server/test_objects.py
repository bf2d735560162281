"""Buckets, listing, deletion and compose on the loopback server, over real HTTP."""

from __future__ import annotations

import base64
import os
from typing import Any

import google_crc32c
import requests

from resumable_media.testing import GCSServer


def b64crc(data: bytes) -> str:
    return base64.b64encode(google_crc32c.value(data).to_bytes(4, "big")).decode()


def test_bucket_create_and_get(gcs_server: GCSServer) -> None:
    base = f"{gcs_server.endpoint}/storage/v1/b"
    created = requests.post(f"{base}?project=p", json={"name": "made-by-http"})
    assert created.status_code == 200
    assert created.json()["name"] == "made-by-http"
    assert requests.post(f"{base}?project=p", json={"name": "made-by-http"}).status_code == 409
    got = requests.get(f"{base}/made-by-http")
    assert got.status_code == 200 and got.json()["kind"] == "storage#bucket"
    missing = requests.get(f"{base}/never-made")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == 404
    bad = requests.post(base, data=b"{oops", headers={"Content-Type": "application/json"})
    assert bad.status_code == 400
    assert requests.post(base, json={"noname": 1}).status_code == 400


def test_list_with_prefix_delimiter_and_pages(gcs_server: GCSServer, gcs_bucket: str) -> None:
    for name in ("a/1", "a/2", "a/sub/3", "b/4", "c"):
        gcs_server.put_object(gcs_bucket, name, name.encode())
    url = f"{gcs_server.endpoint}/storage/v1/b/{gcs_bucket}/o"
    every = requests.get(url).json()
    assert [o["name"] for o in every["items"]] == ["a/1", "a/2", "a/sub/3", "b/4", "c"]
    assert every["items"][0]["size"] == "3"
    pre = requests.get(url, params={"prefix": "a/", "delimiter": "/"}).json()
    assert [o["name"] for o in pre["items"]] == ["a/1", "a/2"]
    assert pre["prefixes"] == ["a/sub/"]
    page = requests.get(url, params={"maxResults": 2}).json()
    assert [o["name"] for o in page["items"]] == ["a/1", "a/2"]
    rest = requests.get(url, params={"pageToken": page["nextPageToken"]}).json()
    assert [o["name"] for o in rest["items"]] == ["a/sub/3", "b/4", "c"]
    assert "nextPageToken" not in rest
    assert requests.get(f"{gcs_server.endpoint}/storage/v1/b/nobucket/o").status_code == 404


def test_delete(gcs_server: GCSServer, gcs_bucket: str) -> None:
    res = gcs_server.put_object(gcs_bucket, "d/x", b"bye")
    url = f"{gcs_server.endpoint}/storage/v1/b/{gcs_bucket}/o/d%2Fx"
    assert requests.delete(url + "?ifGenerationMatch=1").status_code == 412
    assert gcs_server.has_object(gcs_bucket, "d/x")
    assert requests.delete(url + f"?ifGenerationMatch={res['generation']}").status_code == 204
    assert not gcs_server.has_object(gcs_bucket, "d/x")
    gone = requests.delete(url)
    assert gone.status_code == 404
    assert gone.json()["error"]["message"] == f"No such object: {gcs_bucket}/d/x"


def test_compose(gcs_server: GCSServer, gcs_bucket: str) -> None:
    parts = [os.urandom(1000 + i) for i in range(3)]
    gens = [
        gcs_server.put_object(gcs_bucket, f"p{i}", p)["generation"] for i, p in enumerate(parts)
    ]
    url = f"{gcs_server.endpoint}/storage/v1/b/{gcs_bucket}/o/out%2Fall/compose"
    body: dict[str, Any] = {
        "sourceObjects": [
            {"name": "p0", "objectPreconditions": {"ifGenerationMatch": gens[0]}},
            {"name": "p1", "generation": gens[1]},
            {"name": "p2"},
        ],
        "destination": {"contentType": "text/plain", "metadata": {"x": "y"}},
    }
    resp = requests.post(url, json=body)
    assert resp.status_code == 200, resp.text
    doc = resp.json()
    whole = b"".join(parts)
    assert doc["name"] == "out/all" and doc["size"] == str(len(whole))
    assert doc["crc32c"] == b64crc(whole) and "md5Hash" not in doc
    assert doc["componentCount"] == 3 and doc["metadata"] == {"x": "y"}
    media = requests.get(doc["mediaLink"])
    assert media.content == whole
    assert media.headers["x-goog-hash"] == f"crc32c={b64crc(whole)}"
    body["sourceObjects"][0] = {"name": "p0", "objectPreconditions": {"ifGenerationMatch": 1}}
    assert requests.post(url, json=body).status_code == 412
    assert requests.post(url, json={"sourceObjects": [{"name": "nope"}]}).status_code == 404
    assert requests.post(url, json={"sourceObjects": []}).status_code == 400
    too_many = {"sourceObjects": [{"name": "p0"}] * 33}
    assert requests.post(url, json=too_many).status_code == 400
