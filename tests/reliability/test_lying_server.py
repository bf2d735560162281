"""A lying server: every transfer kind must refuse answers that contradict its request.

The peer is a real HTTP server on a loopback socket (``rel_liar``) that sends exactly the
wrong thing on purpose: a Content-Range that does not match the request, a body shorter than
its Content-Length, a total size that changes between chunks, a malformed or repeated
x-goog-hash, a 308 without Range in the middle of an upload, a 308 claiming more than was
sent, a 200 on a chunk while bytes remain.  Each case names the exception expected, checks
that nothing wrong was kept (stream, destination file) and that nothing hangs.
"""

from __future__ import annotations

import io
import json
import pathlib
import re
import threading
from collections.abc import Callable
from typing import Any

import pytest
import requests
from rel_liar import Reply, Request, lying_server
from rel_support import FAST_RETRY, TIMEOUT

from resumable_media import DataCorruption, InvalidResponse, checksums, transports
from resumable_media.common import Checksum
from resumable_media.parallel import ParallelDownload, PipelinedUpload
from resumable_media.requests import ChunkedDownload, Download, ResumableUpload, _send

CHUNK = 256 * 1024
DATA = bytes((i * 7 + i // 251) % 256 for i in range(4 * CHUNK))  # 1 MiB, not periodic
CRC = checksums.crc32c_to_b64(checksums.crc32c(DATA))
CONNECTION_ERRORS = _send.CONNECTION_ERROR_CLASSES


def _range(request: Request) -> tuple[int, int]:
    match = re.fullmatch(r"bytes=(\d+)-(\d*)", request.headers.get("range", "bytes=0-"))
    assert match, request.headers
    start = int(match[1])
    end = int(match[2]) if match[2] else len(DATA) - 1
    return start, min(end, len(DATA) - 1)


def _partial(start: int, end: int, *, total: int = len(DATA), **headers: str) -> Reply:
    """An honest 206 for bytes start..end, unless the caller overrides the total/headers."""
    base = {
        "Content-Range": f"bytes {start}-{end}/{total}",
        "x-goog-generation": "1",
        "x-goog-hash": f"crc32c={CRC}",
    }
    base.update(headers)
    return Reply(206, base, DATA[start : end + 1])


def _run_bounded(func: Callable[[], Any], seconds: float = 10) -> BaseException | None:
    """Run ``func`` in a thread; fail if it has not finished after ``seconds`` (a hang)."""
    outcome: list[BaseException | None] = []

    def target() -> None:
        try:
            func()
        except BaseException as exc:
            outcome.append(exc)
        else:
            outcome.append(None)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert outcome, f"the transfer was still running after {seconds} s: it hangs"
    return outcome[0]


# ------------------------------------------------------------------------ Content-Range


def test_chunked_download_content_range_not_requested() -> None:
    # Asked for bytes 0-262143, told "here are bytes 262144-524287": must not be written at 0.
    def answer(request: Request) -> Reply:
        start, end = _range(request)
        return _partial(start + CHUNK, end + CHUNK)

    stream = io.BytesIO()
    with lying_server(answer) as liar, requests.Session() as session:
        download = ChunkedDownload(
            f"{liar.endpoint}/o", CHUNK, stream, end=2 * CHUNK - 1, retry=FAST_RETRY
        )
        with pytest.raises(InvalidResponse):
            download.consume_next_chunk(session, timeout=TIMEOUT)
    assert stream.getvalue() == b""
    assert download.invalid


def test_download_content_range_not_requested() -> None:
    def answer(request: Request) -> Reply:
        start, end = _range(request)
        return _partial(start + 100, end + 100)

    stream = io.BytesIO()
    with lying_server(answer) as liar, requests.Session() as session:
        download = Download(f"{liar.endpoint}/o", stream, start=0, end=CHUNK - 1, retry=FAST_RETRY)
        with pytest.raises(InvalidResponse):
            download.consume(session, timeout=TIMEOUT)
    assert stream.getvalue() == b""


def test_parallel_download_content_range_not_requested(tmp_path: pathlib.Path) -> None:
    def answer(request: Request) -> Reply:
        start, end = _range(request)
        shift = 1 if start >= 2 * CHUNK else 0  # only the third range lies
        return _partial(start + shift, end + shift if end + shift < len(DATA) else end)

    destination = tmp_path / "out.bin"
    with lying_server(answer) as liar:
        download = ParallelDownload(
            f"{liar.endpoint}/o", destination, chunk_size=CHUNK, processes=0, retry=FAST_RETRY
        )
        with pytest.raises(InvalidResponse):
            download.consume(transports.anonymous())
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------ short bodies


def _short_body(request: Request) -> Reply:
    start, end = _range(request)
    reply = _partial(start, end)
    reply.send_length, reply.body, reply.close = (
        len(reply.body),
        reply.body[: len(reply.body) // 2],
        True,
    )
    return reply


def test_download_body_shorter_than_content_length() -> None:
    stream = io.BytesIO()
    with lying_server(_short_body) as liar, requests.Session() as session:
        download = Download(f"{liar.endpoint}/o", stream, start=0, retry=FAST_RETRY)
        with pytest.raises(CONNECTION_ERRORS):
            download.consume(session, timeout=TIMEOUT)
        # Retried (a broken connection is transient), resuming, then given up: 1 + 6 tries.
        assert len(liar.requests) == 1 + (FAST_RETRY.max_retries or 0)


def test_chunked_download_body_shorter_than_content_length() -> None:
    stream = io.BytesIO()
    with lying_server(_short_body) as liar, requests.Session() as session:
        download = ChunkedDownload(f"{liar.endpoint}/o", CHUNK, stream, retry=FAST_RETRY)
        with pytest.raises(CONNECTION_ERRORS):
            download.consume_next_chunk(session, timeout=TIMEOUT)
        assert len(liar.requests) == 1 + (FAST_RETRY.max_retries or 0)
    assert stream.getvalue() == b"", "a partial chunk was written"


# ------------------------------------------------------------------------ changing totals


def _shrinking_total(request: Request) -> Reply:
    # The first chunk says the object has 1 MiB; later ones say 512 KiB -- and no hash is
    # sent (as for composite objects), so only the total can reveal the lie.
    start, end = _range(request)
    total = len(DATA) if start == 0 else 2 * CHUNK
    return _partial(start, min(end, total - 1), total=total, **{"x-goog-hash": ""})


def test_chunked_download_total_changes_between_chunks() -> None:
    stream = io.BytesIO()
    with lying_server(_shrinking_total) as liar, requests.Session() as session:
        download = ChunkedDownload(f"{liar.endpoint}/o", CHUNK, stream, retry=FAST_RETRY)
        download.consume_next_chunk(session, timeout=TIMEOUT)
        with pytest.raises(InvalidResponse):
            download.consume_next_chunk(session, timeout=TIMEOUT)
    assert not download.finished


def test_parallel_download_total_changes_between_chunks(tmp_path: pathlib.Path) -> None:
    destination = tmp_path / "out.bin"
    with lying_server(_shrinking_total) as liar:
        download = ParallelDownload(
            f"{liar.endpoint}/o", destination, chunk_size=CHUNK, processes=0, retry=FAST_RETRY
        )
        with pytest.raises(InvalidResponse):
            download.consume(transports.anonymous())
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------ x-goog-hash


@pytest.mark.parametrize("value", ["crc32c=!!not-base64!!", "crc32c=", "crc32c"])
def test_download_malformed_goog_hash(value: str) -> None:
    def answer(request: Request) -> Reply:
        return Reply(200, {"x-goog-hash": value, "x-goog-generation": "1"}, DATA)

    stream = io.BytesIO()
    with lying_server(answer) as liar, requests.Session() as session:
        download = Download(f"{liar.endpoint}/o", stream, checksum="crc32c", retry=FAST_RETRY)
        with pytest.raises((InvalidResponse, DataCorruption), match=r"(?i)x-goog-hash|checksum"):
            download.consume(session, timeout=TIMEOUT)


def test_download_repeated_goog_hash() -> None:
    header = f"crc32c={CRC},crc32c=AAAAAA=="

    def answer(request: Request) -> Reply:
        return Reply(200, {"x-goog-hash": header}, DATA)

    with lying_server(answer) as liar, requests.Session() as session:
        download = Download(f"{liar.endpoint}/o", io.BytesIO(), checksum="crc32c")
        with pytest.raises(InvalidResponse) as caught:
            download.consume(session, timeout=TIMEOUT)
    assert caught.value.args == (
        "X-Goog-Hash header had multiple ``crc32c`` values.",
        header,
        [CRC, "AAAAAA=="],
    )


def test_parallel_download_malformed_goog_hash(tmp_path: pathlib.Path) -> None:
    def answer(request: Request) -> Reply:
        start, end = _range(request)
        headers: dict[str, Any] = {"x-goog-hash": "crc32c=@@@@"}
        return _partial(start, end, **headers)

    destination = tmp_path / "out.bin"
    with lying_server(answer) as liar:
        download = ParallelDownload(
            f"{liar.endpoint}/o", destination, chunk_size=CHUNK, processes=0, retry=FAST_RETRY
        )
        with pytest.raises((InvalidResponse, DataCorruption)):
            download.consume(transports.anonymous())
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------ uploads


class UploadLiar:
    """A resumable-upload endpoint; ``on_chunk(index, start, end, request)`` decides each PUT."""

    def __init__(self, on_chunk: Callable[[int, int, int, Request], Reply]) -> None:
        self.on_chunk = on_chunk
        self.endpoint = ""
        self.chunks = 0
        self.persisted = 0

    def __call__(self, request: Request) -> Reply:
        if request.method == "POST":
            return Reply(200, {"Location": f"{self.endpoint}/session?upload_id=x"})
        value = request.headers.get("content-range", "")
        match = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+|\*)", value)
        if match is None:  # a status query
            if self.persisted == 0:
                return Reply(308)
            return Reply(308, {"Range": f"bytes=0-{self.persisted - 1}"})
        index = self.chunks
        self.chunks += 1
        return self.on_chunk(index, int(match[1]), int(match[2]), request)

    def honest(self, start: int, end: int) -> Reply:
        self.persisted = end + 1
        if end + 1 == len(DATA):
            crc = checksums.crc32c_to_b64(checksums.crc32c(DATA))
            return Reply(200, {}, json.dumps({"size": str(len(DATA)), "crc32c": crc}).encode())
        return Reply(308, {"Range": f"bytes=0-{end}"})


def _resumable(liar: UploadLiar, checksum: Checksum = "crc32c", **kwargs: Any) -> Any:
    with lying_server(liar) as server, requests.Session() as session:
        liar.endpoint = server.endpoint
        upload = ResumableUpload(
            f"{server.endpoint}/upload?uploadType=resumable",
            CHUNK,
            checksum=checksum,
            retry=FAST_RETRY,
            **kwargs,
        )
        upload.initiate(session, io.BytesIO(DATA), {"name": "o"}, "application/octet-stream")

        def run() -> None:
            upload.transmit(session, timeout=TIMEOUT)

        error = _run_bounded(run, 10)
        return upload, error


def _pipelined(liar: UploadLiar) -> BaseException | None:
    with lying_server(liar) as server, requests.Session() as session:
        liar.endpoint = server.endpoint
        upload = PipelinedUpload(
            f"{server.endpoint}/upload?uploadType=resumable",
            CHUNK,
            retry=FAST_RETRY,
            timeout=TIMEOUT,
        )
        return _run_bounded(
            lambda: upload.transmit(session, io.BytesIO(DATA), {"name": "o"}, "text/plain")
        )


def _no_range_after_first(liar: UploadLiar) -> Callable[[int, int, int, Request], Reply]:
    def on_chunk(index: int, start: int, end: int, request: Request) -> Reply:
        return liar.honest(start, end) if index == 0 else Reply(308)

    return on_chunk


def test_resumable_308_without_range_mid_upload() -> None:
    liar = UploadLiar(lambda *a: Reply(500))
    liar.on_chunk = _no_range_after_first(liar)
    upload, error = _resumable(liar)
    assert isinstance(error, InvalidResponse)
    assert error.args == ("Response headers must contain header", "range")
    assert upload.invalid and not upload.finished


def test_resumable_auto_recover_308_without_range_forever_terminates() -> None:
    # With automatic recovery a 308 without Range means "start over"; a server that says so
    # for ever must make the upload give up, not loop.
    liar = UploadLiar(lambda *a: Reply(500))
    liar.on_chunk = _no_range_after_first(liar)
    upload, error = _resumable(liar, auto_recover=True)
    assert isinstance(error, (InvalidResponse, *CONNECTION_ERRORS)), repr(error)
    assert not upload.finished
    assert liar.chunks < 50


def test_pipelined_308_without_range_mid_upload() -> None:
    liar = UploadLiar(lambda *a: Reply(500))
    liar.on_chunk = _no_range_after_first(liar)
    error = _pipelined(liar)
    assert isinstance(error, InvalidResponse), repr(error)
    assert "outside the buffered range" in str(error)


def _claims_more(liar: UploadLiar) -> Callable[[int, int, int, Request], Reply]:
    def on_chunk(index: int, start: int, end: int, request: Request) -> Reply:
        return Reply(308, {"Range": f"bytes=0-{end + CHUNK}"})  # more than was ever sent

    return on_chunk


@pytest.mark.parametrize("auto_recover", [False, True])
def test_resumable_308_claims_more_than_sent(auto_recover: bool) -> None:
    liar = UploadLiar(lambda *a: Reply(500))
    liar.on_chunk = _claims_more(liar)
    upload, error = _resumable(liar, auto_recover=auto_recover)
    assert isinstance(error, (InvalidResponse, ValueError)), repr(error)
    assert not upload.finished


def test_pipelined_308_claims_more_than_sent() -> None:
    liar = UploadLiar(lambda *a: Reply(500))
    liar.on_chunk = _claims_more(liar)
    error = _pipelined(liar)
    assert isinstance(error, InvalidResponse), repr(error)


def _early_200(liar: UploadLiar, consistent: bool) -> Callable[[int, int, int, Request], Reply]:
    # A 200 for the second chunk of four: "done", though half the bytes were never sent.
    # ``consistent``: the lie includes size and crc32c of what was received so far.
    def on_chunk(index: int, start: int, end: int, request: Request) -> Reply:
        if index == 0:
            return liar.honest(start, end)
        received = DATA[: end + 1]
        resource = {"name": "o"}
        if consistent:
            resource["size"] = str(len(received))
            resource["crc32c"] = checksums.crc32c_to_b64(checksums.crc32c(received))
        return Reply(200, {}, json.dumps(resource).encode())

    return on_chunk


@pytest.mark.parametrize("checksum", [None, "crc32c"])
@pytest.mark.parametrize("consistent", [False, True])
def test_resumable_200_while_bytes_remain(checksum: Checksum, consistent: bool) -> None:
    liar = UploadLiar(lambda *a: Reply(500))
    liar.on_chunk = _early_200(liar, consistent)
    upload, error = _resumable(liar, checksum=checksum)
    assert not upload.finished or error is not None
    assert isinstance(error, (InvalidResponse, DataCorruption)), (
        f"an upload that sent {2 * CHUNK} of {len(DATA)} bytes reported success"
    )


@pytest.mark.parametrize("consistent", [False, True])
def test_pipelined_200_while_bytes_remain(consistent: bool) -> None:
    liar = UploadLiar(lambda *a: Reply(500))
    liar.on_chunk = _early_200(liar, consistent)
    error = _pipelined(liar)
    assert isinstance(error, (InvalidResponse, DataCorruption)), (
        f"an upload that sent {2 * CHUNK} of {len(DATA)} bytes reported success"
    )


def test_resumable_final_checksum_mismatch() -> None:
    def on_chunk(index: int, start: int, end: int, request: Request) -> Reply:
        if end + 1 < len(DATA):
            return liar.honest(start, end)
        body = json.dumps({"size": str(len(DATA)), "crc32c": "AAAAAA=="}).encode()
        return Reply(200, {}, body)

    liar = UploadLiar(on_chunk)
    _, error = _resumable(liar)
    assert isinstance(error, DataCorruption)
    assert str(error) == (
        f"The computed ``CRC32C`` checksum, ``{CRC}``, and the checksum reported by the remote "
        "host, ``AAAAAA==``, did not match."
    )


def _never_advances(liar: UploadLiar) -> Callable[[int, int, int, Request], Reply]:
    # The first chunk is acknowledged; afterwards every PUT is answered "still 256 KiB":
    # the server keeps accepting bytes and never persists them.
    def on_chunk(index: int, start: int, end: int, request: Request) -> Reply:
        return liar.honest(start, end) if index == 0 else Reply(308, {"Range": "bytes=0-262143"})

    return on_chunk


def test_resumable_auto_recover_range_never_advances_terminates() -> None:
    liar = UploadLiar(lambda *a: Reply(500))
    liar.on_chunk = _never_advances(liar)
    upload, error = _resumable(liar, auto_recover=True)
    assert isinstance(error, (InvalidResponse, *CONNECTION_ERRORS)), repr(error)
    assert not upload.finished


def test_pipelined_range_never_advances_terminates() -> None:
    liar = UploadLiar(lambda *a: Reply(500))
    liar.on_chunk = _never_advances(liar)
    error = _pipelined(liar)
    assert isinstance(error, (InvalidResponse, *CONNECTION_ERRORS)), repr(error)
