"""Worker-to-parent messages: frozen dataclasses whose failures survive pickling."""

from __future__ import annotations

import dataclasses
import pickle
from typing import Any

import pytest
import requests

from resumable_media import common
from resumable_media._transport import is_retryable_error
from resumable_media.parallel import ParallelDownload, ParallelUpload, PipelinedUpload
from resumable_media.parallel.messages import JobDone, JobFailed, JobProgress, RemoteError


def _response(status: int, body: bytes) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.url = "http://h/b/o?uploadId=1"
    response._content = body
    return response


def _round_trip(exc: BaseException) -> BaseException:
    message = JobFailed(transfer_id=3, index=2, error=RemoteError.of(exc))
    copy: JobFailed = pickle.loads(pickle.dumps(message))
    assert copy == message or copy.error.kind == message.error.kind
    return copy.error.rebuild("chunk 2")


def test_invalid_response_keeps_class_args_status_url_and_body() -> None:
    body = b"<Error><Code>SlowDown</Code></Error>" + b"x" * 1000
    original = common.InvalidResponse(
        _response(503, body), "Request failed with status code", 503, "Expected one of", 200
    )
    rebuilt = _round_trip(original)
    assert type(rebuilt) is common.InvalidResponse
    assert rebuilt.args == original.args
    assert rebuilt.response.status_code == 503
    assert rebuilt.response.url == "http://h/b/o?uploadId=1"
    assert (
        rebuilt.response.text.startswith("<Error><Code>SlowDown")
        and len(rebuilt.response.text) == 500
    )
    assert is_retryable_error(rebuilt)


def test_data_corruption_keeps_its_message() -> None:
    rebuilt = _round_trip(common.DataCorruption(_response(200, b""), "Checksum mismatch ..."))
    assert type(rebuilt) is common.DataCorruption and rebuilt.args == ("Checksum mismatch ...",)


def test_connection_failures_arrive_as_connection_error() -> None:
    rebuilt = _round_trip(requests.exceptions.ConnectionError("reset by peer"))
    assert isinstance(rebuilt, ConnectionError) and "reset by peer" in str(rebuilt)


def test_other_errors_keep_their_class_when_they_pickle() -> None:
    rebuilt = _round_trip(FileNotFoundError(2, "No such file", "/x/y"))
    assert type(rebuilt) is FileNotFoundError and rebuilt.filename == "/x/y"

    class Local(Exception):  # cannot be pickled by reference
        pass

    rebuilt = _round_trip(Local("boom"))
    assert type(rebuilt) is RuntimeError and "Local: boom" in str(rebuilt)


def test_messages_are_frozen() -> None:
    progress = JobProgress(transfer_id=1, index=0, done=5, crc=7)
    with pytest.raises(dataclasses.FrozenInstanceError):
        progress.done = 6  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(JobDone(transfer_id=1, index=0, done=5, crc=7))).etag is None


@pytest.mark.parametrize(
    "make",
    [
        lambda **kw: ParallelDownload("http://h/o", "/tmp/x", **kw),
        lambda **kw: ParallelUpload("http://h/b/o", "/tmp/x", **kw),
        lambda **kw: PipelinedUpload("http://h/u", 256 * 1024, **kw),
    ],
)
def test_retry_none_is_one_attempt_and_the_default_is_a_fresh_strategy(make: Any) -> None:
    assert make(retry=None).retry is None
    first, second = make().retry, make().retry
    assert isinstance(first, common.RetryStrategy) and first is not second
