"""The seed classes compose their protocol object: upstream names are there, core names are not."""

from __future__ import annotations

import io

import pytest

from resumable_media import common, requests
from resumable_media._protocol.resumable import ResumableUploadProtocol, UploadState
from resumable_media._protocol.upload import MultipartUploadProtocol, SimpleUploadProtocol
from resumable_media._protocol.xml_mpu import XMLMPUContainerProtocol, XMLMPUPartProtocol

CHUNK = common.UPLOAD_CHUNK_SIZE
UPSTREAM = {
    requests.SimpleUpload: ("upload_url", "finished", "transmit", "_headers", "_prepare_request"),
    requests.MultipartUpload: ("upload_url", "finished", "transmit", "_prepare_request"),
    requests.ResumableUpload: (
        "upload_url",
        "chunk_size",
        "resumable_url",
        "bytes_uploaded",
        "total_bytes",
        "finished",
        "invalid",
        "initiate",
        "transmit_next_chunk",
        "recover",
        "_stream",
        "_content_type",
        "_bytes_uploaded",
        "_bytes_checksummed",
        "_checksum_type",
        "_checksum_object",
        "_total_bytes",
        "_resumable_url",
        "_invalid",
        "_headers",
        "_retry_strategy",
        "_prepare_initiate_request",
        "_process_initiate_response",
        "_prepare_recover_request",
        "_process_recover_response",
    ),
    requests.XMLMPUContainer: (
        "upload_url",
        "upload_id",
        "finished",
        "initiate",
        "register_part",
        "finalize",
        "cancel",
        "_parts",
        "_filename",
    ),
    requests.XMLMPUPart: (
        "upload_url",
        "upload_id",
        "filename",
        "start",
        "end",
        "part_number",
        "etag",
        "finished",
        "upload",
    ),
}
CORE_ONLY = (
    "state",
    "next_read_size",
    "use_session",
    "prepare_buffer_request",
    "process_buffer_response",
    "prepare_status_query",
    "prepare_cancel_request",
    "prepare_delete_generation",
    "process_response",
    "_prepare_object_request",
    "_enter",
    "_fail",
    "local_checksum",
)
PROTOCOLS = (
    SimpleUploadProtocol,
    MultipartUploadProtocol,
    ResumableUploadProtocol,
    XMLMPUContainerProtocol,
    XMLMPUPartProtocol,
)


def _instances() -> list[object]:
    return [
        requests.SimpleUpload("u"),
        requests.MultipartUpload("u"),
        requests.ResumableUpload("u", CHUNK),
        requests.XMLMPUContainer("u", "f"),
        requests.XMLMPUPart("u", "id", "f", 0, 1, 1),
    ]


@pytest.mark.parametrize("upload", _instances(), ids=lambda u: type(u).__name__)
def test_upstream_names_are_there_and_core_names_are_not(upload: object) -> None:
    for name in UPSTREAM[type(upload)]:  # type: ignore[index]
        assert hasattr(upload, name), name
    for name in CORE_ONLY:
        assert not hasattr(upload, name), name
    assert not isinstance(upload, PROTOCOLS)  # composed, not inherited


def test_delegates_read_and_write_the_one_protocol_state() -> None:
    upload = requests.ResumableUpload("http://h/u?uploadType=resumable", CHUNK, "crc32c")
    assert upload._protocol.state is UploadState.NEW
    upload._bytes_checksummed = 7  # tests and upstream callers set these
    assert upload._protocol._bytes_checksummed == 7
    with pytest.raises(AttributeError):
        upload.finished = True  # type: ignore[misc]
    with pytest.raises(ValueError, match=r"^This upload has not been initiated\."):
        upload.transmit_next_chunk(object())  # type: ignore[arg-type]
    stream = io.BytesIO(b"x")
    stream.read()
    with pytest.raises(ValueError, match=r"^Stream must be at beginning\.$"):
        upload.initiate(object(), stream, {}, "a/b")  # type: ignore[arg-type]
    assert upload._protocol.state is UploadState.NEW  # a refused call changes nothing
