"""SimpleUpload, MultipartUpload and the XML multipart upload against the loopback server."""

from __future__ import annotations

import base64
import hashlib
import http
import json
import os
import re
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from _requests_support import FAST, no_jitter, session_for  # noqa: F401

import resumable_media
from resumable_media import checksums, common
from resumable_media._protocol.request import RequestSpec
from resumable_media.requests import (
    MultipartUpload,
    SimpleUpload,
    XMLMPUContainer,
    XMLMPUPart,
)


def _media_url(server: Any, bucket: str, name: str) -> str:
    quoted = urllib.parse.quote(name, safe="")
    return f"{server.endpoint}/upload/storage/v1/b/{bucket}/o?uploadType=media&name={quoted}"


def _multipart_url(server: Any, bucket: str) -> str:
    return f"{server.endpoint}/upload/storage/v1/b/{bucket}/o?uploadType=multipart"


def test_simple_upload(gcs_server: Any, gcs_bucket: str) -> None:
    data = b"Some not too large content."
    upload = SimpleUpload(_media_url(gcs_server, gcs_bucket, "a b"))
    response = upload.transmit(session_for(gcs_server), data, "text/plain")
    assert upload.finished and response.status_code == 200
    resource = response.json()
    assert resource["name"] == "a b" and resource["bucket"] == gcs_bucket
    assert resource["contentType"] == "text/plain"
    assert resource["md5Hash"] == base64.b64encode(hashlib.md5(data).digest()).decode()
    assert int(resource["size"]) == len(data)
    assert gcs_server.object_bytes(gcs_bucket, "a b") == data
    assert upload._headers == {"content-type": "text/plain"}
    with pytest.raises(ValueError, match=re.escape("An upload can only be used once.")):
        upload.transmit(session_for(gcs_server), data, "text/plain")


def test_simple_upload_rejects_non_bytes(gcs_server: Any, gcs_bucket: str) -> None:
    upload = SimpleUpload(_media_url(gcs_server, gcs_bucket, "x"))
    with pytest.raises(TypeError) as info:
        upload.transmit(session_for(gcs_server), "text", "text/plain")  # type: ignore[arg-type]
    assert info.value.args == ("`data` must be bytes, received", str)


def test_simple_upload_failure_tombstones(gcs_server: Any, gcs_bucket: str) -> None:
    session = session_for(gcs_server, {"storage.objects.insert": ["return-503"]})
    upload = SimpleUpload(_media_url(gcs_server, gcs_bucket, "x"), retry=None)
    with pytest.raises(resumable_media.InvalidResponse) as info:
        upload.transmit(session, b"data", "text/plain")
    assert info.value.args == (
        "Request failed with status code",
        503,
        "Expected one of",
        http.HTTPStatus.OK,
    )
    assert info.value.response.status_code == 503
    assert upload.finished
    assert not gcs_server.has_object(gcs_bucket, "x")


def test_simple_upload_retries(gcs_server: Any, gcs_bucket: str) -> None:
    session = session_for(
        gcs_server, {"storage.objects.insert": ["return-503", "return-reset-connection"]}
    )
    upload = SimpleUpload(_media_url(gcs_server, gcs_bucket, "r"), retry=FAST)
    upload.transmit(session, b"retried", "text/plain")
    assert gcs_server.object_bytes(gcs_bucket, "r") == b"retried"


@pytest.mark.parametrize(("checksum", "key"), [("md5", "md5Hash"), ("crc32c", "crc32c")])
def test_multipart_upload_with_checksum(
    gcs_server: Any, gcs_bucket: str, checksum: common.Checksum, key: str
) -> None:
    data = os.urandom(70000)
    metadata: dict[str, Any] = {"name": "m", "metadata": {"color": "grurple"}}
    upload = MultipartUpload(_multipart_url(gcs_server, gcs_bucket), checksum=checksum)
    gcs_server.clear_requests()
    response = upload.transmit(session_for(gcs_server), data, metadata, "image/png")
    resource = response.json()
    assert resource["metadata"] == {"color": "grurple"}
    assert resource["contentType"] == "image/png"
    assert metadata[key] == resource[key]
    assert gcs_server.object_bytes(gcs_bucket, "m") == data
    content_type = gcs_server.wait_for_requests(1)[-1].headers["content-type"]
    assert re.fullmatch(r'multipart/related; boundary="={15}\d{19}=="', content_type)


def test_multipart_checksum_mismatch_is_400(gcs_server: Any, gcs_bucket: str) -> None:
    metadata = {"name": "bad", "crc32c": checksums.crc32c_to_b64(12345)}
    upload = MultipartUpload(_multipart_url(gcs_server, gcs_bucket))
    with pytest.raises(resumable_media.InvalidResponse) as info:
        upload.transmit(session_for(gcs_server), b"payload", metadata, "text/plain")
    assert info.value.response.status_code == 400
    assert info.value.args[1] == 400
    assert "CRC32C" in info.value.response.text
    assert not gcs_server.has_object(gcs_bucket, "bad")


def _xml_url(server: Any, bucket: str, name: str) -> str:
    return f"{server.endpoint}/{bucket}/{urllib.parse.quote(name, safe='/')}"


@pytest.mark.parametrize("checksum", [None, "md5", "crc32c", "auto"])
def test_xml_mpu_round_trip(
    gcs_server: Any, gcs_bucket: str, tmp_path: Path, checksum: common.Checksum
) -> None:
    data = os.urandom(700000)
    path = tmp_path / "source.bin"
    path.write_bytes(data)
    url = _xml_url(gcs_server, gcs_bucket, "dir/mpu.bin")
    session = session_for(gcs_server)
    container = XMLMPUContainer(url, str(path))
    with pytest.raises(ValueError, match=re.escape("This upload has not yet been initiated.")):
        container.finalize(session)
    container.initiate(session, "application/octet-stream")
    assert container.upload_id
    with pytest.raises(ValueError, match=re.escape("This upload has already been initiated.")):
        container.initiate(session, "application/octet-stream")
    bounds = [(0, 300000), (300000, 600000), (600000, len(data))]
    for number, (start, end) in enumerate(bounds, 1):
        part = XMLMPUPart(
            url, _upload_id(container), str(path), start, end, number, checksum=checksum
        )
        part.upload(session)
        assert part.finished and part.etag
        assert (part.start, part.end, part.part_number) == (start, end, number)
        container.register_part(part.part_number, part.etag)
        with pytest.raises(ValueError, match=re.escape("This part has already been uploaded.")):
            part.upload(session)
    container.finalize(session)
    assert container.finished
    assert gcs_server.object_bytes(gcs_bucket, "dir/mpu.bin") == data


def _upload_id(container: XMLMPUContainer) -> str:
    assert container.upload_id is not None, "initiate() sets the upload id"
    return container.upload_id


def test_xml_mpu_part_sends_checksum(gcs_server: Any, gcs_bucket: str, tmp_path: Path) -> None:
    path = tmp_path / "p.bin"
    path.write_bytes(b"part bytes")
    url = _xml_url(gcs_server, gcs_bucket, "p")
    session = session_for(gcs_server)
    container = XMLMPUContainer(url, str(path))
    container.initiate(session, "text/plain")
    gcs_server.clear_requests()
    XMLMPUPart(url, _upload_id(container), str(path), 0, 10, 1, checksum="crc32c").upload(session)
    sent = gcs_server.wait_for_requests(1)[-1].headers["x-goog-hash"]
    assert sent == "crc32c=" + checksums.crc32c_to_b64(checksums.crc32c(b"part bytes"))


def test_xml_mpu_bad_part_checksum(gcs_server: Any, gcs_bucket: str, tmp_path: Path) -> None:
    path = tmp_path / "p.bin"
    path.write_bytes(b"part bytes")
    url = _xml_url(gcs_server, gcs_bucket, "p")
    session = session_for(gcs_server)
    container = XMLMPUContainer(url, str(path))
    container.initiate(session, "text/plain")

    class WrongHash(XMLMPUPart):
        def _prepare_upload_request(self, payload: bytes | memoryview) -> RequestSpec:
            spec = super()._prepare_upload_request(payload)
            spec.headers["x-goog-hash"] = "md5=" + base64.b64encode(b"0" * 16).decode()
            return spec

    part = WrongHash(url, _upload_id(container), str(path), 0, 10, 1, checksum="md5")
    with pytest.raises(resumable_media.DataCorruption, match="Checksum mismatch"):
        part.upload(session)
    assert not part.finished


def test_xml_mpu_cancel_then_finalize_404(gcs_server: Any, gcs_bucket: str, tmp_path: Path) -> None:
    path = tmp_path / "c.bin"
    path.write_bytes(b"cancel me")
    url = _xml_url(gcs_server, gcs_bucket, "c")
    session = session_for(gcs_server)
    container = XMLMPUContainer(url, str(path))
    container.initiate(session, "text/plain")
    part = XMLMPUPart(url, _upload_id(container), str(path), 0, 9, 1)
    part.upload(session)
    container.register_part(1, part.etag)
    response = container.cancel(session)
    assert response.status_code == 204
    with pytest.raises(resumable_media.InvalidResponse) as info:
        container.finalize(session)
    assert info.value.args[1] == 404
    assert not gcs_server.has_object(gcs_bucket, "c")


def test_xml_mpu_existing_upload_id(gcs_server: Any, gcs_bucket: str, tmp_path: Path) -> None:
    path = tmp_path / "e.bin"
    path.write_bytes(b"existing id")
    url = _xml_url(gcs_server, gcs_bucket, "e")
    session = session_for(gcs_server)
    first = XMLMPUContainer(url, str(path))
    first.initiate(session, "text/plain")
    part = XMLMPUPart(url, _upload_id(first), str(path), 0, 11, 1, checksum="md5")
    part.upload(session)
    second = XMLMPUContainer(url, str(path), upload_id=first.upload_id)
    second.register_part(1, part.etag)
    second.finalize(session)
    assert gcs_server.object_bytes(gcs_bucket, "e") == b"existing id"
    assert json.loads(json.dumps({"ok": True}))["ok"]
