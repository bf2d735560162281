"""The server's benchmark mode without upload MD5: CRC32C still checked, no md5Hash claimed."""

from __future__ import annotations

import base64
import hashlib
import os

import google_crc32c
import requests

from resumable_media.testing import GCSServer


def _crc_b64(data: bytes) -> str:
    return base64.b64encode(google_crc32c.value(data).to_bytes(4, "big")).decode()


def test_resumable_upload_without_md5_keeps_crc32c_and_checks_it() -> None:
    data = os.urandom(3 * 262144 + 11)
    with GCSServer(upload_md5=False) as srv, requests.Session() as s:
        srv.create_bucket("bkt")
        base = f"{srv.endpoint}/upload/storage/v1/b/bkt/o?uploadType=resumable"
        loc = s.post(base, json={"name": "obj"}).headers["Location"]
        r = s.put(
            loc,
            data=data,
            headers={"content-range": f"bytes 0-{len(data) - 1}/{len(data)}"},
        )
        assert r.status_code == 200, r.text
        doc = r.json()
        assert doc["crc32c"] == _crc_b64(data)
        assert "md5Hash" not in doc
        assert srv.object_bytes("bkt", "obj") == data

        # A wrong CRC32C on the final chunk is still refused in this mode.
        loc = s.post(base, json={"name": "bad"}).headers["Location"]
        r = s.put(
            loc,
            data=data,
            headers={
                "content-range": f"bytes 0-{len(data) - 1}/{len(data)}",
                "x-goog-hash": f"crc32c={_crc_b64(data + b'x')}",
            },
        )
        assert r.status_code == 400
        assert not srv.has_object("bkt", "bad")


def test_client_sent_md5_is_still_verified_in_md5_free_mode() -> None:
    data = os.urandom(100_000)
    good = base64.b64encode(hashlib.md5(data).digest()).decode()
    bad = base64.b64encode(hashlib.md5(data + b"x").digest()).decode()
    with GCSServer(upload_md5=False) as srv, requests.Session() as s:
        srv.create_bucket("bkt")
        url = f"{srv.endpoint}/upload/storage/v1/b/bkt/o?uploadType=media&name=m"
        r = s.post(url, data=data, headers={"x-goog-hash": f"md5={bad}"})
        assert r.status_code == 400
        r = s.post(url, data=data, headers={"x-goog-hash": f"md5={good}"})
        assert r.status_code == 200
        assert r.json()["md5Hash"] == good


def test_xml_part_without_md5_has_crc_etag_and_completes() -> None:
    data = os.urandom(300_000)
    with GCSServer(upload_md5=False) as srv, requests.Session() as s:
        srv.create_bucket("bkt")
        url = f"{srv.endpoint}/bkt/xml-obj"
        r = s.post(url + "?uploads")
        upload_id = r.text.split("<UploadId>")[1].split("</UploadId>")[0]
        r = s.put(f"{url}?partNumber=1&uploadId={upload_id}", data=data)
        assert r.status_code == 200
        assert r.headers["x-goog-hash"] == f"crc32c={_crc_b64(data)}"
        etag = r.headers["ETag"]
        assert etag == f'"{google_crc32c.value(data):08x}"'
        body = (
            "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>"
            f"<ETag>{etag}</ETag></Part></CompleteMultipartUpload>"
        )
        r = s.post(f"{url}?uploadId={upload_id}", data=body)
        assert r.status_code == 200, r.text
        assert srv.object_bytes("bkt", "xml-obj") == data


def test_default_server_still_reports_md5_for_resumable_uploads(
    gcs_server: GCSServer, gcs_bucket: str
) -> None:
    data = os.urandom(262144 + 5)
    with requests.Session() as s:
        base = f"{gcs_server.endpoint}/upload/storage/v1/b/{gcs_bucket}/o?uploadType=resumable"
        loc = s.post(base, json={"name": "o"}).headers["Location"]
        r = s.put(loc, data=data, headers={"content-range": f"bytes 0-{len(data) - 1}/{len(data)}"})
    assert r.json()["md5Hash"] == base64.b64encode(hashlib.md5(data).digest()).decode()
