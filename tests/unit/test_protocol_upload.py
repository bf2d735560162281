"""Unit tests of the upload protocol objects (simple, multipart, resumable, XML MPU)."""

from __future__ import annotations

import http
import json
import random
import re
from typing import Any, Literal

import pytest

from resumable_media import checksums, common
from resumable_media._protocol import upload as upload_module
from resumable_media._protocol.resumable import ResumableUploadProtocol
from resumable_media._protocol.upload import MultipartUploadProtocol, SimpleUploadProtocol
from resumable_media._protocol.xml_mpu import XMLMPUContainerProtocol, XMLMPUPartProtocol

URL = "https://up.example/upload/storage/v1/b/bkt/o?uploadType=resumable"
CHUNK = common.UPLOAD_CHUNK_SIZE


def test_simple_upload_request_and_reuse() -> None:
    headers: dict[str, Any] = {"x-goog-meta-a": "b"}
    upload = SimpleUploadProtocol("u", headers)
    with pytest.raises(TypeError) as info:
        upload._prepare_request("text", "text/plain")  # type: ignore[arg-type]
    assert info.value.args == ("`data` must be bytes, received", str)
    spec = upload._prepare_request(b"data", "text/plain")
    assert (spec.method, spec.url, spec.body) == ("POST", "u", b"data")
    assert headers == {"x-goog-meta-a": "b", "content-type": "text/plain"}
    with pytest.raises(common.InvalidResponse) as error:
        upload.process_response("r", 500)
    assert error.value.args == (
        "Request failed with status code",
        500,
        "Expected one of",
        http.HTTPStatus.OK,
    )
    assert upload.finished
    with pytest.raises(ValueError, match=re.escape("An upload can only be used once.")):
        upload._prepare_request(b"data", "text/plain")


def test_multipart_body_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(upload_module.random, "randrange", lambda n: 5249979066121302517)  # type: ignore[attr-defined]
    metadata: dict[str, Any] = {"name": "a.txt"}
    spec = MultipartUploadProtocol("u")._prepare_request(b"DATA", metadata, "text/plain")
    assert spec.body == (
        b"--===============5249979066121302517==\r\n"
        b"content-type: application/json; charset=UTF-8\r\n\r\n"
        b'{"name": "a.txt"}\r\n'
        b"--===============5249979066121302517==\r\n"
        b"content-type: text/plain\r\n\r\nDATA\r\n"
        b"--===============5249979066121302517==--"
    )
    assert spec.headers["content-type"] == (
        b'multipart/related; boundary="===============5249979066121302517=="'
    )
    assert metadata == {"name": "a.txt"}


def test_boundary_shape() -> None:
    random.seed(3)
    assert re.fullmatch(rb"={15}\d{19}==", upload_module.get_boundary())


@pytest.mark.parametrize(("checksum", "key"), [("md5", "md5Hash"), ("crc32c", "crc32c")])
def test_multipart_checksum_written_into_metadata(
    checksum: Literal["md5", "crc32c"], key: str
) -> None:
    metadata: dict[str, Any] = {"name": "n", key: "user value"}
    MultipartUploadProtocol("u", checksum=checksum)._prepare_request(b"abc", metadata, "a/b")
    hasher = checksums.new_hasher(checksum)
    hasher.update(b"abc")
    assert metadata[key] == hasher.b64digest()


def _initiated(total: int | None, checksum: common.Checksum = None) -> ResumableUploadProtocol:
    upload = ResumableUploadProtocol(URL, CHUNK, checksum=checksum, headers={"h": "v"})
    spec = upload._prepare_initiate_request(0, {"name": "n"}, "text/plain", total)
    assert json.loads(bytes(spec.body or b"")) == {"name": "n"}
    upload._process_initiate_response(None, 200, {"location": URL + "&upload_id=1"})
    return upload


def test_resumable_initiate_headers_and_errors() -> None:
    with pytest.raises(ValueError, match=re.escape("256.0 KB must divide chunk size")):
        ResumableUploadProtocol(URL, 1000)
    upload = ResumableUploadProtocol(URL, CHUNK, headers={"h": "v"})
    with pytest.raises(ValueError, match=re.escape("Stream must be at beginning.")):
        upload._prepare_initiate_request(3, {}, "text/plain")
    spec = upload._prepare_initiate_request(0, {}, "text/plain", 10)
    assert spec.headers == {
        "h": "v",
        "content-type": "application/json; charset=UTF-8",
        "x-upload-content-type": "text/plain",
        "x-upload-content-length": "10",
    }
    with pytest.raises(common.InvalidResponse) as info:
        upload._process_initiate_response(None, 200, {})
    assert info.value.args == ("Response headers must contain header", "location")
    upload._process_initiate_response(None, 201, {"location": "L"})
    assert upload.resumable_url == "L"
    with pytest.raises(ValueError, match=re.escape("This upload has already been initiated.")):
        upload._prepare_initiate_request(0, {}, "text/plain")


def test_resumable_chunk_sequence_known_size() -> None:
    total = 2 * CHUNK + 5
    upload = _initiated(total, checksum="crc32c")
    data = bytes(range(256)) * (total // 256) + b"x" * (total % 256)
    position = 0
    ranges = []
    while not upload.finished:
        size = upload.next_read_size(position)
        payload = data[position : position + size]
        spec = upload._prepare_chunk_request(position, payload)
        ranges.append(spec.headers["content-range"])
        assert spec.headers["h"] == "v" and spec.headers["content-type"] == "text/plain"
        position += len(payload)
        if position < total:
            assert "x-goog-hash" not in spec.headers
            assert (
                upload._process_chunk_response(None, 308, {"range": f"bytes=0-{position - 1}"}) == 0
            )
        else:
            crc = checksums.crc32c_to_b64(checksums.crc32c(data))
            assert spec.headers["x-goog-hash"] == f"crc32c={crc}"
            body = json.dumps({"crc32c": crc}).encode()
            upload._process_chunk_response(None, 200, {}, body)
    assert ranges == [
        f"bytes 0-{CHUNK - 1}/{total}",
        f"bytes {CHUNK}-{2 * CHUNK - 1}/{total}",
        f"bytes {2 * CHUNK}-{total - 1}/{total}",
    ]
    assert upload.bytes_uploaded == total
    with pytest.raises(ValueError, match=re.escape("Upload has finished.")):
        upload.next_read_size(position)


def test_resumable_unknown_size_on_boundary() -> None:
    upload = _initiated(None)
    spec = upload._prepare_chunk_request(0, b"a" * CHUNK)
    assert spec.headers["content-range"] == f"bytes 0-{CHUNK - 1}/*"
    upload._process_chunk_response(None, 308, {"range": f"bytes=0-{CHUNK - 1}"})
    spec = upload._prepare_chunk_request(CHUNK, b"")
    assert spec.headers["content-range"] == f"bytes */{CHUNK}"
    upload._process_chunk_response(None, 200, {}, b"{}")
    assert upload.finished and upload.total_bytes is None


def test_resumable_stream_errors() -> None:
    empty = _initiated(0)
    with pytest.raises(ValueError, match="Stream specified as empty"):
        empty._prepare_chunk_request(0, b"x")
    known = _initiated(10)
    with pytest.raises(ValueError, match="Stream is already exhausted"):
        known._prepare_chunk_request(0, b"")
    with pytest.raises(ValueError, match=re.escape("had 4 bytes read from it while 0 bytes")):
        known._prepare_chunk_request(4, b"abc")
    fresh = ResumableUploadProtocol(URL, CHUNK)
    with pytest.raises(ValueError, match=re.escape("This upload has not been initiated.")):
        fresh.next_read_size(0)


def test_resumable_308_errors_make_invalid() -> None:
    upload = _initiated(3 * CHUNK)
    upload._prepare_chunk_request(0, b"a" * CHUNK)
    with pytest.raises(common.InvalidResponse) as info:
        upload._process_chunk_response(None, 308, {})
    assert info.value.args == ("Response headers must contain header", "range")
    assert upload.invalid
    with pytest.raises(ValueError, match=re.escape("Upload is in an invalid state.")):
        upload.next_read_size(0)
    upload._process_recover_response(None, 308, {})
    assert (upload.invalid, upload.bytes_uploaded) == (False, 0)
    upload._prepare_chunk_request(0, b"a" * CHUNK)
    with pytest.raises(common.InvalidResponse) as info:
        upload._process_chunk_response(None, 308, {"range": "bytes 0-5"})
    assert info.value.args == (
        'Unexpected "range" header',
        "bytes 0-5",
        'Expected to be of the form "bytes=0-{end}"',
    )
    assert upload.invalid


def test_resumable_partial_persist_reports_unsent() -> None:
    upload = _initiated(2 * CHUNK)
    upload._prepare_chunk_request(0, b"a" * CHUNK)
    assert upload._process_chunk_response(None, 308, {"range": "bytes=0-99"}) == CHUNK - 100
    assert upload.bytes_uploaded == 100


def test_resumable_checksum_skips_resent_bytes() -> None:
    data = b"0123456789" * 60000
    upload = _initiated(len(data), checksum="md5")
    upload._prepare_chunk_request(0, data[:CHUNK])
    upload._process_chunk_response(None, 308, {"range": "bytes=0-999"})
    upload._prepare_chunk_request(1000, data[1000 : 1000 + CHUNK])
    upload._process_chunk_response(None, 308, {"range": f"bytes=0-{1000 + CHUNK - 1}"})
    spec = upload._prepare_chunk_request(1000 + CHUNK, data[1000 + CHUNK :])
    hasher = checksums.new_hasher("md5")
    hasher.update(data)
    assert spec.headers["x-goog-hash"] == "md5=" + hasher.b64digest()


def test_resumable_final_checksum_problems() -> None:
    upload = _initiated(3, checksum="md5")
    upload._prepare_chunk_request(0, b"abc")
    with pytest.raises(common.InvalidResponse) as info:
        upload._process_chunk_response(None, 200, {"h": "1"}, b"{}")
    assert info.value.args == (
        "Response metadata had no ``md5Hash`` value; checksum could not be validated.",
        {"h": "1"},
    )
    other = _initiated(3, checksum="crc32c")
    other._prepare_chunk_request(0, b"abc")
    with pytest.raises(common.DataCorruption) as corrupt:
        other._process_chunk_response(None, 200, {}, b'{"crc32c": "AAAAAA=="}')
    local = checksums.crc32c_to_b64(checksums.crc32c(b"abc"))
    assert corrupt.value.args == (
        f"The computed ``CRC32C`` checksum, ``{local}``, and the checksum reported by the "
        "remote host, ``AAAAAA==``, did not match.",
    )


def test_recover_request_and_answers() -> None:
    upload = _initiated(10)
    spec = upload._prepare_recover_request()
    assert (spec.method, spec.body, spec.headers) == ("PUT", None, {"content-range": "bytes */*"})
    assert upload._process_recover_response(None, 308, {"range": "bytes=0-4"}) == 5
    with pytest.raises(common.InvalidResponse):
        upload._process_recover_response(None, 200, {})
    assert upload._process_status_response(None, 200, {}, b'{"size": "10"}') == 10
    assert upload.finished


def test_xml_container_steps() -> None:
    container = XMLMPUContainerProtocol("https://b.example/obj", "f", {"h": "v"})
    with pytest.raises(ValueError, match="not yet been initiated"):
        container._prepare_finalize_request()
    spec = container._prepare_initiate_request("text/plain")
    assert spec.url == "https://b.example/obj?uploads"
    assert spec.headers == {"h": "v", "content-type": "text/plain"}
    body = (
        b'<?xml version="1.0" encoding="UTF-8"?><InitiateMultipartUploadResult '
        b'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><UploadId>UP1</UploadId>'
        b"</InitiateMultipartUploadResult>"
    )
    container._process_initiate_response(None, 200, body)
    assert container.upload_id == "UP1"
    container.register_part(2, '"e2"')
    container.register_part(1, '"e1"')
    spec = container._prepare_finalize_request()
    assert spec.url == "https://b.example/obj?uploadId=UP1"
    assert spec.body == (
        b'<CompleteMultipartUpload><Part><PartNumber>2</PartNumber><ETag>"e2"</ETag></Part>'
        b'<Part><PartNumber>1</PartNumber><ETag>"e1"</ETag></Part></CompleteMultipartUpload>'
    )
    container._process_finalize_response(None, 200)
    assert container.finished
    assert container._prepare_cancel_request().method == "DELETE"
    with pytest.raises(common.InvalidResponse):
        container._process_cancel_response(None, 200)


def test_xml_part_checksum_and_etag() -> None:
    part = XMLMPUPartProtocol("https://b.example/o", "U", "f", 0, 3, 4, checksum="crc32c")
    spec = part._prepare_upload_request(b"abc")
    crc = checksums.crc32c_to_b64(checksums.crc32c(b"abc"))
    assert spec.url == "https://b.example/o?partNumber=4&uploadId=U"
    assert spec.headers == {"x-goog-hash": f"crc32c={crc}"}
    with pytest.raises(common.InvalidResponse) as info:
        part._process_upload_response(None, 200, {"etag": '"x"'})
    assert info.value.args[0].startswith("Response metadata had no ``crc32c`` value")
    # Each answer is judged for a request that is out: a refused part is uploaded again.
    part._prepare_upload_request(b"abc")
    with pytest.raises(common.DataCorruption):
        part._process_upload_response(None, 200, {"x-goog-hash": "crc32c=AAAAAA==", "etag": "e"})
    error = b"<Error><Code>BadDigest</Code><Message>no</Message></Error>"
    part._prepare_upload_request(b"abc")
    with pytest.raises(common.DataCorruption, match="Error code: BadDigest"):
        part._process_upload_response(None, 400, {}, error)
    part._prepare_upload_request(b"abc")
    part._process_upload_response(None, 200, {"x-goog-hash": f"crc32c={crc}", "etag": '"t"'})
    assert part.finished and part.etag == '"t"'
    with pytest.raises(ValueError, match="already been uploaded"):
        part._prepare_upload_request(b"abc")
