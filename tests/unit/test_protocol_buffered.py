"""ResumableUploadProtocol with chunks from caller-owned buffers (PipelinedUpload's mode)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from resumable_media import common
from resumable_media._protocol.resumable import ResumableUploadProtocol, check_final_resource

CHUNK = 256 * 1024
SESSION = "http://h/upload?upload_id=abc"


def _session(headers: dict[str, str] | None = None) -> ResumableUploadProtocol:
    protocol = ResumableUploadProtocol("http://h/upload?uploadType=resumable", CHUNK, None, headers)
    protocol.use_session(SESSION)
    return protocol


def _json(value: object) -> Callable[[], object]:
    return lambda: value


def test_any_acknowledged_slice_goes_out_with_open_or_final_size() -> None:
    protocol = _session({"x-goog-user-project": "p"})
    body = memoryview(b"x" * 100)
    spec = protocol.prepare_buffer_request(0, 100, body, final=False)
    assert (spec.method, spec.url, spec.body) == ("PUT", SESSION, body)
    assert spec.headers == {"x-goog-user-project": "p", "content-range": "bytes 0-99/*"}
    assert protocol.process_buffer_response(None, 308, {"range": "bytes=0-59"}, _json(None)) == 60
    final = protocol.prepare_buffer_request(
        60, 40, body[60:], final=True, hashes={"crc32c": "AA=="}
    )
    assert final.headers["content-range"] == "bytes 60-99/100"
    assert final.headers["x-goog-hash"] == "crc32c=AA=="
    resource = {"size": "100"}
    assert protocol.process_buffer_response(None, 201, {}, _json(resource)) == resource
    assert protocol.finished


def test_an_empty_final_request_completes_on_a_chunk_boundary() -> None:
    protocol = _session()
    protocol.prepare_status_query()  # an answer is judged only for a request that is out
    protocol.process_buffer_response(None, 308, {"range": f"bytes=0-{CHUNK - 1}"}, _json(None))
    spec = protocol.prepare_buffer_request(CHUNK, 0, memoryview(b""), final=True)
    assert spec.headers["content-range"] == f"bytes */{CHUNK}"
    with pytest.raises(ValueError, match="already exhausted"):
        _session().prepare_buffer_request(0, 0, b"", final=False)


def test_the_start_must_be_what_the_server_acknowledged() -> None:
    protocol = _session()
    with pytest.raises(ValueError, match="has had 10 bytes read"):
        protocol.prepare_buffer_request(10, 5, b"x" * 5, final=False)


def test_a_308_without_range_means_nothing_is_persisted_and_status_query_has_headers() -> None:
    protocol = _session({"a": "b"})
    query = protocol.prepare_status_query()
    assert (query.body, query.headers) == (b"", {"a": "b", "content-range": "bytes */*"})
    assert protocol.process_buffer_response(None, 308, {}, _json(None)) == 0


def test_refusals_carry_the_response_and_a_body_excerpt() -> None:
    class Response:
        status_code = 403
        text = "<Error>denied</Error>" * 100

    protocol = _session()
    protocol.prepare_status_query()
    with pytest.raises(common.InvalidResponse) as caught:
        protocol.process_buffer_response(Response(), 403, {}, _json(None))
    assert caught.value.response.status_code == 403
    assert caught.value.args[:5] == (
        "Request failed with status code",
        403,
        "Expected one of",
        200,
        201,
    )
    assert len(caught.value.args[-1]) == 500
    with pytest.raises(common.InvalidResponse, match="range"):
        protocol.process_buffer_response(None, 308, {"range": "bytes=5-9"}, _json(None))


def test_a_cut_final_body_is_a_connection_error() -> None:
    def broken() -> object:
        raise ValueError("truncated JSON")

    protocol = _session()
    protocol.prepare_buffer_request(0, 1, b"x", final=True)
    with pytest.raises(ConnectionError, match="not valid JSON"):
        protocol.process_buffer_response(None, 200, {}, broken)
    assert not protocol.finished  # the object exists, but this answer did not say so


def test_the_final_resource_is_checked_against_what_was_sent() -> None:
    local: dict[str, str | None] = {"crc32c": "AAAAAA==", "md5Hash": None}
    assert check_final_resource(None, {"size": "3", "crc32c": "AAAAAA=="}, 3, local)
    assert not check_final_resource(None, {"size": "3"}, 3, local)
    with pytest.raises(common.DataCorruption, match="has 4 bytes but 3 were sent"):
        check_final_resource("r", {"size": "4"}, 3, local)
    with pytest.raises(common.DataCorruption, match="crc32c is BBBBBB=="):
        check_final_resource("r", {"crc32c": "BBBBBB=="}, 3, local)
