"""XML API multipart upload and XML object reads on the loopback server, over real HTTP."""

from __future__ import annotations

import base64
import hashlib
import os
import re

import google_crc32c
import requests

from resumable_media.testing import GCSServer


def b64crc(data: bytes) -> str:
    return base64.b64encode(google_crc32c.value(data).to_bytes(4, "big")).decode()


def start(server: GCSServer, bucket: str, name: str) -> tuple[str, str]:
    url = f"{server.endpoint}/{bucket}/{name}"
    resp = requests.post(
        url + "?uploads", headers={"Content-Type": "text/plain", "x-goog-meta-k": "v"}
    )
    assert resp.status_code == 200
    assert 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"' in resp.text
    match = re.search(r"<UploadId>([^<]+)</UploadId>", resp.text)
    assert match
    return url, match[1]


def complete_xml(parts: list[tuple[int, str]]) -> bytes:
    inner = "".join(f"<Part><PartNumber>{n}</PartNumber><ETag>{e}</ETag></Part>" for n, e in parts)
    return f"<CompleteMultipartUpload>{inner}</CompleteMultipartUpload>".encode()


def test_multipart_upload_roundtrip(gcs_server: GCSServer, gcs_bucket: str) -> None:
    url, upload_id = start(gcs_server, gcs_bucket, "dir/mpu")
    parts = [os.urandom(300_000), os.urandom(200_000), os.urandom(5)]
    etags = []
    for number, data in enumerate(parts, 1):
        resp = requests.put(f"{url}?partNumber={number}&uploadId={upload_id}", data=data)
        assert resp.status_code == 200
        assert resp.headers["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
        assert resp.headers["x-goog-hash"].startswith(f"crc32c={b64crc(data)},md5=")
        etags.append((number, resp.headers["ETag"]))
    done = requests.post(f"{url}?uploadId={upload_id}", data=complete_xml(etags))
    assert done.status_code == 200, done.text
    assert "<CompleteMultipartUploadResult" in done.text
    whole = b"".join(parts)
    assert gcs_server.object_bytes(gcs_bucket, "dir/mpu") == whole
    got = requests.get(url)
    assert got.content == whole
    assert got.headers["x-goog-hash"] == f"crc32c={b64crc(whole)}"  # composite: no md5
    assert got.headers["Content-Type"] == "text/plain" and got.headers["x-goog-meta-k"] == "v"
    ranged = requests.get(url, headers={"Range": "bytes=10-19"})
    assert ranged.status_code == 206 and ranged.content == whole[10:20]
    assert requests.post(f"{url}?uploadId={upload_id}", data=complete_xml(etags)).status_code == 404


def test_part_hash_mismatch_and_bad_complete(gcs_server: GCSServer, gcs_bucket: str) -> None:
    url, upload_id = start(gcs_server, gcs_bucket, "bad")
    resp = requests.put(
        f"{url}?partNumber=1&uploadId={upload_id}",
        data=b"part",
        headers={"x-goog-hash": f"crc32c={b64crc(b'other')}"},
    )
    assert resp.status_code == 400 and "<Code>BadDigest</Code>" in resp.text
    md5_of_other = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    bad_md5 = requests.put(
        f"{url}?partNumber=1&uploadId={upload_id}",
        data=b"part",
        headers={"Content-MD5": md5_of_other},
    )
    assert bad_md5.status_code == 400 and "<Code>BadDigest</Code>" in bad_md5.text
    ok = requests.put(f"{url}?partNumber=1&uploadId={upload_id}", data=b"part")
    assert ok.status_code == 200
    assert requests.post(f"{url}?uploadId={upload_id}", data=b"<not xml").status_code == 400
    missing = complete_xml([(1, ok.headers["ETag"]), (2, '"abc"')])
    assert requests.post(f"{url}?uploadId={upload_id}", data=missing).status_code == 400
    assert requests.put(f"{url}?partNumber=0&uploadId={upload_id}", data=b"x").status_code == 400
    assert not gcs_server.has_object(gcs_bucket, "bad")


def test_abort_then_complete_is_404(gcs_server: GCSServer, gcs_bucket: str) -> None:
    url, upload_id = start(gcs_server, gcs_bucket, "aborted")
    part = requests.put(f"{url}?partNumber=1&uploadId={upload_id}", data=b"x")
    assert requests.delete(f"{url}?uploadId={upload_id}").status_code == 204
    again = requests.post(
        f"{url}?uploadId={upload_id}", data=complete_xml([(1, part.headers["ETag"])])
    )
    assert again.status_code == 404 and "<Code>NoSuchUpload</Code>" in again.text
    assert requests.get(url).status_code == 404
    assert requests.post(f"{gcs_server.endpoint}/no-bucket/x?uploads").status_code == 404
