"""The state machines of the protocol objects: legal sequences, refusals, failure.

Every step is checked against the object's ``TRANSITIONS`` table: the call must be listed
for the state it starts in, and the state it leaves must be one the table allows.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resumable_media import checksums, common
from resumable_media._protocol import download as download_module
from resumable_media._protocol import resumable as resumable_module
from resumable_media._protocol import upload as upload_module
from resumable_media._protocol import xml_mpu as xml_mpu_module
from resumable_media._protocol.download import DownloadProtocol, DownloadState
from resumable_media._protocol.resumable import ResumableUploadProtocol, UploadState
from resumable_media._protocol.state import ProtocolStateError
from resumable_media._protocol.upload import (
    MultipartUploadProtocol,
    SimpleUploadProtocol,
    SingleShotState,
)
from resumable_media._protocol.xml_mpu import (
    ContainerState,
    PartState,
    XMLMPUContainerProtocol,
    XMLMPUPartProtocol,
)

URL = "https://storage.example/download/storage/v1/b/bkt/o/obj?alt=media"
DATA = b"0123456789" * 10


def _stepped(
    table: dict[tuple[Any, str], frozenset[Any]], obj: Any, call: str, run: Callable[[], Any]
) -> Any:
    """Run one call and check both ends of it against ``table``."""
    before = obj.state
    try:
        return run()
    finally:
        if _now(obj) is not before or (before, call) in table:
            assert (before, call) in table, f"{call}() ran in {before.name}"
            after = obj.state
            assert after in table[(before, call)], f"{call}(): {before.name} -> {after.name}"


def _now(obj: Any) -> Any:
    """The object's state, read afresh (so a type checker does not narrow it across calls)."""
    return obj.state


def _headers_200(data: bytes = DATA) -> dict[str, str]:
    return {"content-length": str(len(data)), "x-goog-hash": "md5=" + _md5(data)}


def _md5(data: bytes) -> str:
    import base64
    import hashlib

    return base64.b64encode(hashlib.md5(data).digest()).decode()


def _dl_step(download: DownloadProtocol, call: str, *args: Any) -> Any:
    method = {"prepare": "_prepare_request"}.get(call, call)
    table = download_module.TRANSITIONS
    return _stepped(table, download, call, lambda: getattr(download, method)(*args))


# -- DownloadProtocol ------------------------------------------------------------------


def test_download_legal_sequence_with_a_resume() -> None:
    download = DownloadProtocol(URL, checksum="md5")
    assert (_now(download), download.finished) == (DownloadState.READY, False)
    first = _dl_step(download, "prepare")
    assert (_now(download), download.finished) == (DownloadState.SENT, False)
    assert _dl_step(download, "prepare_attempt", first) is first
    _dl_step(download, "process_response", None, 200, _headers_200())
    assert (_now(download), download.finished) == (DownloadState.RECEIVING, True)
    _dl_step(download, "feed", DATA[:40])
    # The body broke off: the next attempt resumes from byte 40.
    resumed = _dl_step(download, "prepare_attempt", first)
    assert _now(download) is DownloadState.RESENT
    assert resumed.headers["range"] == "bytes=40-"
    headers = {"content-range": f"bytes 40-{len(DATA) - 1}/{len(DATA)}"}
    _dl_step(download, "process_response", None, 206, headers)
    _dl_step(download, "feed", DATA[40:])
    _dl_step(download, "flush")
    _dl_step(download, "finish", None)
    assert _now(download) is DownloadState.COMPLETE
    with pytest.raises(ValueError, match=re.escape("A download can only be used once.")):
        download._prepare_request()


@pytest.mark.parametrize(
    ("call", "args", "state"),
    [
        ("feed", (b"x",), "SENT"),
        ("flush", (), "SENT"),
        ("finish", (None,), "SENT"),
    ],
)
def test_download_illegal_call_names_the_state(
    call: str, args: tuple[Any, ...], state: str
) -> None:
    download = DownloadProtocol(URL)
    download._prepare_request()
    with pytest.raises(ProtocolStateError, match=rf"{call}\(\) is not allowed in state {state}"):
        getattr(download, call)(*args)
    assert _now(download) is DownloadState.SENT  # a refused call changes nothing


def test_download_calls_before_the_first_request_are_refused() -> None:
    download = DownloadProtocol(URL)
    with pytest.raises(ProtocolStateError, match=r"prepare_attempt.*in state READY"):
        download.prepare_attempt(object())  # type: ignore[arg-type]
    with pytest.raises(ProtocolStateError, match=r"process_response.*in state READY"):
        download.process_response(None, 200, {})


def test_download_answer_twice_is_refused_while_receiving() -> None:
    download = DownloadProtocol(URL, checksum=None)
    download._prepare_request()
    download.process_response(None, 200, {})
    with pytest.raises(ProtocolStateError, match="in state RECEIVING"):
        download.process_response(None, 200, {})


@pytest.mark.parametrize("where", ["status", "feed", "finish"])
def test_download_any_exception_moves_to_failed(where: str) -> None:
    download = DownloadProtocol(URL, checksum="md5")
    first = download._prepare_request()
    if where == "status":
        with pytest.raises(common.InvalidResponse):
            _dl_step(download, "process_response", None, 404, {})
    elif where == "feed":
        _dl_step(download, "process_response", None, 200, {"content-encoding": "gzip"})
        with pytest.raises(common.DataCorruption):
            _dl_step(download, "feed", b"not gzip at all")
    else:
        _dl_step(download, "process_response", None, 200, _headers_200())
        _dl_step(download, "feed", DATA[::-1])
        with pytest.raises(common.DataCorruption):
            _dl_step(download, "finish", None)
    assert (_now(download), download.finished) == (DownloadState.FAILED, True)
    with pytest.raises(ProtocolStateError, match=r"feed.*in state FAILED"):
        download.feed(b"x")
    # Only a new attempt may follow.
    _dl_step(download, "prepare_attempt", first)
    assert _now(download) is DownloadState.RESENT


_DOWNLOAD_CALLS = st.sampled_from(["prepare_attempt", "ok", "bad", "feed", "flush", "finish"])


@settings(deadline=None)
@given(calls=st.lists(_DOWNLOAD_CALLS, max_size=12))
def test_download_every_sequence_stays_inside_the_table(calls: list[str]) -> None:
    download = DownloadProtocol(URL, checksum="md5")
    first = _dl_step(download, "prepare")
    for call in calls:
        args: dict[str, tuple[Any, ...]] = {
            "prepare_attempt": (first,),
            "ok": (None, 200, _headers_200()),
            "bad": (None, 503, {}),
            "feed": (DATA[:7],),
            "flush": (),
            "finish": (None,),
        }
        name = "process_response" if call in ("ok", "bad") else call
        try:
            _dl_step(download, name, *args[call])
        except ProtocolStateError as exc:
            assert f"in state {download.state.name}" in str(exc)
        except (ValueError, ConnectionError, common.InvalidResponse, common.DataCorruption):
            assert _now(download) is DownloadState.FAILED


def test_download_a_new_attempt_is_legal_in_every_state_after_the_first_request() -> None:
    # The retry drivers (and the fuzz tests) rely on prepare_attempt never being refused.
    for state in DownloadState:
        legal = (state, "prepare_attempt") in download_module.TRANSITIONS
        assert legal is (state is not DownloadState.READY), state


# -- ResumableUploadProtocol -------------------------------------------------------------

CHUNK = common.UPLOAD_CHUNK_SIZE
UPLOAD_URL = "https://storage.example/upload/storage/v1/b/bkt/o?uploadType=resumable"
SESSION = "https://storage.example/session/1"


def _up_step(upload: ResumableUploadProtocol, call: str, method: str, *args: Any) -> Any:
    run = lambda: getattr(upload, method)(*args)  # noqa: E731
    return _stepped(resumable_module.TRANSITIONS, upload, call, run)


def _initiated(total: int | None = 2 * CHUNK) -> ResumableUploadProtocol:
    upload = ResumableUploadProtocol(UPLOAD_URL, CHUNK, "crc32c")
    _up_step(upload, "prepare_initiate", "_prepare_initiate_request", 0, {}, "a/b", total)
    assert _now(upload) is UploadState.INITIATING
    _up_step(
        upload, "process_initiate", "_process_initiate_response", None, 200, {"location": SESSION}
    )
    assert _now(upload) is UploadState.READY
    return upload


def test_resumable_legal_sequence() -> None:
    upload = _initiated()
    data = bytes(2 * CHUNK)
    size = _up_step(upload, "next_read_size", "next_read_size", 0)
    _up_step(upload, "prepare_chunk", "_prepare_chunk_request", 0, data[:size])
    assert _now(upload) is UploadState.SENT
    # A retryable failure leaves the chunk out, to be sent again as is.
    with pytest.raises(common.InvalidResponse):
        _up_step(upload, "process_chunk", "_process_chunk_response", None, 503, {})
    assert (_now(upload), upload.invalid) == (UploadState.SENT, False)
    range_header = {"range": f"bytes=0-{CHUNK - 1}"}
    _up_step(upload, "process_chunk", "_process_chunk_response", None, 308, range_header)
    assert _now(upload) is UploadState.READY and upload.bytes_uploaded == CHUNK
    _up_step(upload, "prepare_chunk", "_prepare_chunk_request", CHUNK, data[CHUNK:])
    body = b'{"crc32c": "' + checksums.crc32c_to_b64(checksums.crc32c(data)).encode() + b'"}'
    _up_step(upload, "process_chunk", "_process_chunk_response", None, 200, {}, body)
    assert (_now(upload), upload.finished) == (UploadState.FINISHED, True)


def test_resumable_failure_is_invalid_and_recover_makes_it_ready() -> None:
    upload = _initiated()
    upload._prepare_chunk_request(0, bytes(CHUNK))
    with pytest.raises(common.InvalidResponse):
        _up_step(upload, "process_chunk", "_process_chunk_response", None, 400, {})
    assert (_now(upload), upload.invalid) == (UploadState.FAILED, True)
    # Upstream's refusal, in its exact words and type.
    with pytest.raises(ValueError) as refused:
        upload.next_read_size(0)
    assert type(refused.value) is ValueError
    assert str(refused.value) == "Upload is in an invalid state. To recover call `recover()`."
    _up_step(upload, "prepare_recover", "_prepare_recover_request")
    _up_step(upload, "process_recover", "_process_recover_response", None, 308, {})
    assert (_now(upload), upload.invalid) == (UploadState.READY, False)


def test_resumable_upstream_refusals_keep_their_words() -> None:
    fresh = ResumableUploadProtocol(UPLOAD_URL, CHUNK)
    with pytest.raises(ValueError, match=r"^This upload has not been initiated\. Please call"):
        fresh.next_read_size(0)
    with pytest.raises(ValueError, match=r"^This upload has not been initiated"):
        fresh._prepare_recover_request()
    upload = _initiated(CHUNK)
    with pytest.raises(ValueError, match=r"^This upload has already been initiated\.$"):
        upload._prepare_initiate_request(0, {}, "a/b")
    upload._prepare_chunk_request(0, bytes(CHUNK))
    upload._checksum_type = None  # finish without a checksum to compare
    upload._process_chunk_response(None, 200, {}, b"{}")
    assert _now(upload) is UploadState.FINISHED
    with pytest.raises(ValueError, match=r"^Upload has finished\.$"):
        upload.next_read_size(CHUNK)
    assert _now(upload) is UploadState.FINISHED  # a refused call changes nothing


def test_resumable_illegal_call_names_the_state() -> None:
    upload = _initiated()
    with pytest.raises(
        ProtocolStateError, match=r"process_chunk\(\) is not allowed in state READY"
    ):
        upload._process_chunk_response(None, 308, {})
    assert _now(upload) is UploadState.READY
    with pytest.raises(
        ProtocolStateError, match=r"process_buffer\(\) is not allowed in state READY"
    ):
        upload.process_buffer_response(None, 308, {}, lambda: None)
    fresh = ResumableUploadProtocol(UPLOAD_URL, CHUNK)
    fresh._prepare_initiate_request(0, {}, "a/b", 1)
    with pytest.raises(
        ProtocolStateError, match=r"use_session\(\) is not allowed in state INITIATING"
    ):
        fresh.use_session(SESSION)
    assert _now(fresh) is UploadState.INITIATING


def test_resumable_a_refused_initiate_is_failed_and_may_be_initiated_again() -> None:
    upload = ResumableUploadProtocol(UPLOAD_URL, CHUNK)
    upload._prepare_initiate_request(0, {}, "a/b", 1)
    with pytest.raises(common.InvalidResponse):
        _up_step(upload, "process_initiate", "_process_initiate_response", None, 403, {})
    assert (_now(upload), upload.invalid) == (UploadState.FAILED, True)
    _up_step(upload, "prepare_initiate", "_prepare_initiate_request", 0, {}, "a/b", 1)
    assert _now(upload) is UploadState.INITIATING


_UPLOAD_ANSWERS = st.sampled_from(
    [
        (308, {"range": f"bytes=0-{CHUNK - 1}"}),
        (308, {}),
        (308, {"range": "nonsense"}),
        (503, {}),
        (400, {}),
        (200, {}),
    ]
)


@settings(deadline=None)
@given(
    steps=st.lists(
        st.one_of(st.sampled_from(["chunk", "recover", "query"]), _UPLOAD_ANSWERS), max_size=10
    )
)
def test_resumable_every_sequence_stays_inside_the_table(steps: list[Any]) -> None:
    upload = _initiated(2 * CHUNK)
    data = bytes(2 * CHUNK)
    for item in steps:
        try:
            if item == "chunk":
                start = upload.bytes_uploaded
                size = _up_step(upload, "next_read_size", "next_read_size", start)
                _up_step(
                    upload,
                    "prepare_chunk",
                    "_prepare_chunk_request",
                    start,
                    data[start : start + size],
                )
            elif item == "recover":
                _up_step(upload, "prepare_recover", "_prepare_recover_request")
                _up_step(upload, "process_recover", "_process_recover_response", None, 308, {})
            elif item == "query":
                _up_step(upload, "process_status", "_process_status_response", None, 308, {}, b"")
            else:
                status, headers = item
                _up_step(
                    upload, "process_chunk", "_process_chunk_response", None, status, headers, b"{}"
                )
        except ProtocolStateError as exc:
            assert f"in state {upload.state.name}" in str(exc)
        except (ValueError, common.InvalidResponse, common.DataCorruption):
            pass
        assert upload.invalid is (_now(upload) is UploadState.FAILED)
        assert upload.finished is (_now(upload) is UploadState.FINISHED)


# -- one-shot uploads, XML multipart container and part ------------------------------------


def test_single_shot_sequence_failure_and_refusals() -> None:
    table = upload_module.SINGLE_SHOT_TRANSITIONS
    upload = SimpleUploadProtocol("https://u.example/o?uploadType=media")
    with pytest.raises(
        ProtocolStateError, match=r"process_response\(\) is not allowed in state READY"
    ):
        upload.process_response(None, 200)
    _stepped(table, upload, "prepare", lambda: upload._prepare_request(b"x", "a/b"))
    assert (_now(upload), upload.finished) == (SingleShotState.SENT, False)
    # Any rejection is FAILED, and tombstones the upload (upstream's ``finished``) ...
    with pytest.raises(common.InvalidResponse):
        _stepped(table, upload, "process_response", lambda: upload.process_response(None, 503))
    assert (_now(upload), upload.finished) == (SingleShotState.FAILED, True)
    with pytest.raises(ValueError, match=r"^An upload can only be used once\.$"):
        upload._prepare_request(b"x", "a/b")
    # ... but the answer to a resend of the same request is judged.
    _stepped(table, upload, "process_response", lambda: upload.process_response(None, 200))
    assert _now(upload) is SingleShotState.FINISHED
    with pytest.raises(ProtocolStateError, match="in state FINISHED"):
        upload.process_response(None, 200)
    multipart = MultipartUploadProtocol("https://u.example/o?uploadType=multipart")
    with pytest.raises(TypeError):
        multipart._prepare_request("text", {}, "a/b")  # type: ignore[arg-type]
    assert _now(multipart) is SingleShotState.READY  # a refused argument changes nothing


_INITIATED = (
    b'<InitiateMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
    b"<UploadId>UP</UploadId></InitiateMultipartUploadResult>"
)


def test_container_sequence_and_failures() -> None:
    table = xml_mpu_module.CONTAINER_TRANSITIONS
    container = XMLMPUContainerProtocol("https://b.example/o", "f")
    assert _now(container) is ContainerState.NEW
    with pytest.raises(ValueError, match=r"^This upload has not yet been initiated\.$"):
        container._prepare_cancel_request()
    with pytest.raises(
        ProtocolStateError, match=r"process_initiate\(\) is not allowed in state NEW"
    ):
        container._process_initiate_response(None, 200, _INITIATED)
    _stepped(
        table, container, "prepare_initiate", lambda: container._prepare_initiate_request("a/b")
    )
    with pytest.raises(common.InvalidResponse):  # retryable: the request stays out
        container._process_initiate_response(None, 503, b"")
    assert _now(container) is ContainerState.INITIATING
    with pytest.raises(common.InvalidResponse):  # a 200 without an id fails the step for good
        container._process_initiate_response(None, 200, b"<x/>")
    assert _now(container) is ContainerState.FAILED
    container._prepare_initiate_request("a/b")  # as upstream: initiate again
    container._process_initiate_response(None, 200, _INITIATED)
    assert _now(container) is ContainerState.ACTIVE and container.upload_id == "UP"
    _stepped(table, container, "register_part", lambda: container.register_part(1, "e"))
    _stepped(table, container, "prepare_finalize", container._prepare_finalize_request)
    with pytest.raises(common.InvalidResponse):
        _stepped(
            table,
            container,
            "process_finalize",
            lambda: container._process_finalize_response(None, 400),
        )
    assert (_now(container), container.finished) == (ContainerState.FAILED, False)
    with pytest.raises(ProtocolStateError, match=r"process_finalize.*in state FAILED"):
        container._process_finalize_response(None, 200)
    _stepped(table, container, "prepare_cancel", container._prepare_cancel_request)
    _stepped(
        table, container, "process_cancel", lambda: container._process_cancel_response(None, 204)
    )
    assert _now(container) is ContainerState.CANCELLED
    with pytest.raises(
        ProtocolStateError, match=r"prepare_object\(\) is not allowed in state CANCELLED"
    ):
        container._prepare_object_request()


def test_container_completed_stays_finished() -> None:
    container = XMLMPUContainerProtocol("https://b.example/o", "f", upload_id="UP")
    assert _now(container) is ContainerState.ACTIVE
    container._prepare_finalize_request()
    container._process_finalize_response(None, 200)
    assert container.finished
    container._prepare_object_request()
    with pytest.raises(common.InvalidResponse):
        container._process_object_response(None, 404, {})
    container._prepare_cancel_request()  # upstream lets a completed upload be aborted again
    with pytest.raises(common.InvalidResponse):
        container._process_cancel_response(None, 404)
    assert (_now(container), container.finished) == (ContainerState.FINISHED, True)


def test_part_sequence_failure_and_refusals() -> None:
    table = xml_mpu_module.PART_TRANSITIONS
    part = XMLMPUPartProtocol("https://b.example/o", "UP", "f", 0, 1, 1)
    with pytest.raises(
        ProtocolStateError, match=r"process_upload\(\) is not allowed in state READY"
    ):
        part._process_upload_response(None, 200, {"etag": "e"})
    _stepped(table, part, "prepare_upload", lambda: part._prepare_upload_request(b"x"))
    with pytest.raises(common.InvalidResponse):
        part._process_upload_response(None, 503, {})
    assert _now(part) is PartState.SENT
    with pytest.raises(common.InvalidResponse):  # a 200 without an ETag
        _stepped(
            table, part, "process_upload", lambda: part._process_upload_response(None, 200, {})
        )
    assert (_now(part), part.finished) == (PartState.FAILED, False)
    part._prepare_upload_request(b"x")
    part._process_upload_response(None, 200, {"etag": "e"})
    assert _now(part) is PartState.FINISHED and part.etag == "e"
    with pytest.raises(ValueError, match=r"^This part has already been uploaded\.$"):
        part._prepare_upload_request(b"x")
