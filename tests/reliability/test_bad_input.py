"""Bad input: each case names the exception and message the caller gets, and checks nothing is lost.

Covers invalid ranges, chunk and part sizes, streams that cannot seek or are not at 0,
reuse of finished transfer objects, non-bytes data, metadata that is not JSON-serialisable,
invalid URLs and unknown checksum names.
Where a request could have been sent, the test also checks that none was (bad input is
refused before any I/O) or that nothing was left at the destination.
(Destinations: test_bad_destination.py; lying servers: test_lying_server.py.)
"""

from __future__ import annotations

import io
import os
import pathlib
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from rel_kinds import Env
from rel_support import DATA, FAST_RETRY, TIMEOUT

from resumable_media import checksums, transports
from resumable_media.parallel import ParallelDownload, ParallelUpload, PipelinedUpload, WorkerPool
from resumable_media.requests import (
    ChunkedDownload,
    Download,
    MultipartUpload,
    RawDownload,
    ResumableUpload,
    SimpleUpload,
    XMLMPUContainer,
    XMLMPUPart,
)

CHUNK = 256 * 1024


def exact(message: str) -> str:
    """A ``match=`` pattern for exactly ``message``."""
    return f"^{re.escape(message)}$"


DIVIDE = "256.0 KB must divide chunk size"
DOWNLOAD_CHECKSUM = "checksum must be ``'md5'``, ``'crc32c'`` or ``None``"
NOT_INITIATED = (
    "This upload has not been initiated. Please call initiate() before beginning to "
    "transmit chunks."
)


def _count(env: Env) -> int:
    return len(env.server.requests)


def _nothing_sent(env: Env, before: int) -> None:
    assert _count(env) == before, "bad input reached the server"


# ------------------------------------------------------------------------ ranges


def test_chunked_download_negative_start(env: Env) -> None:
    with pytest.raises(
        ValueError, match=exact("On a chunked download the starting value cannot be negative.")
    ):
        ChunkedDownload(env.media_url("obj"), CHUNK, io.BytesIO(), start=-1)


def test_parallel_download_negative_start(env: Env) -> None:
    with pytest.raises(ValueError, match=r"^start must be >= 0 .*got -5$"):
        ParallelDownload(env.media_url("obj"), env.workdir / "out", start=-5)


def test_parallel_download_inverted_range(env: Env) -> None:
    with pytest.raises(ValueError, match=re.escape("end (10) must be >= start (100)")):
        ParallelDownload(env.media_url("obj"), env.workdir / "out", start=100, end=10)


def test_download_suffix_range_with_end(env: Env, session: requests.Session) -> None:
    before = _count(env)
    download = Download(env.media_url("obj"), io.BytesIO(), start=-10, end=5)
    with pytest.raises(ValueError, match=re.escape("A suffix range (negative start) cannot have")):
        download.consume(session)
    _nothing_sent(env, before)


def test_download_inverted_range(env: Env, session: requests.Session) -> None:
    # "bytes=100-10" is not a valid range; a server ignores it and sends the whole object,
    # which must not be written to the stream as if it were bytes 100..10.
    stream = io.BytesIO()
    download = Download(env.media_url("obj"), stream, start=100, end=10, retry=FAST_RETRY)
    with pytest.raises(ValueError, match=r"end.*start|start.*end"):
        download.consume(session, timeout=TIMEOUT)
    assert stream.getvalue() == b""


def test_chunked_download_inverted_range(env: Env, session: requests.Session) -> None:
    stream = io.BytesIO()
    with pytest.raises(ValueError, match=r"end.*start|start.*end"):
        download = ChunkedDownload(env.media_url("obj"), CHUNK, stream, start=100, end=10)
        download.consume_next_chunk(session, timeout=TIMEOUT)
    assert stream.getvalue() == b""


# ------------------------------------------------------------------------ sizes


@pytest.mark.parametrize("chunk_size", [1000, CHUNK + 1, 0, -CHUNK])
def test_resumable_chunk_size_not_multiple(env: Env, chunk_size: int) -> None:
    with pytest.raises(ValueError, match=exact(DIVIDE)):
        ResumableUpload(env.upload_url("resumable"), chunk_size)


@pytest.mark.parametrize("chunk_size", [300_000, 0])
def test_pipelined_chunk_size_not_multiple(env: Env, chunk_size: int) -> None:
    with pytest.raises(ValueError, match=exact(DIVIDE)):
        PipelinedUpload(env.upload_url("resumable"), chunk_size)


@pytest.mark.parametrize("chunk_size", [0, -5])
def test_chunked_download_nonpositive_chunk_size(
    env: Env, session: requests.Session, chunk_size: int
) -> None:
    stream = io.BytesIO()
    with pytest.raises(ValueError, match="chunk_size"):
        download = ChunkedDownload(env.media_url("obj"), chunk_size, stream)
        download.consume_next_chunk(session, timeout=TIMEOUT)
    assert stream.getvalue() == b""


def test_parallel_download_zero_chunk_size(env: Env) -> None:
    with pytest.raises(ValueError, match=exact("chunk_size must be positive, got 0")):
        ParallelDownload(env.media_url("obj"), env.workdir / "out", chunk_size=0)


def test_parallel_upload_zero_part_size(env: Env) -> None:
    with pytest.raises(ValueError, match=exact("part_size must be positive, got 0")):
        ParallelUpload(env.xml_url("obj"), env.workdir / "src", part_size=0)


def test_worker_pool_negative_processes() -> None:
    with pytest.raises(ValueError, match="need processes >= 0 and threads_per_process >= 1"):
        WorkerPool(processes=-1)


def test_resumable_negative_total_bytes(env: Env, session: requests.Session) -> None:
    before = _count(env)
    upload = ResumableUpload(env.upload_url("resumable"), CHUNK)
    with pytest.raises(ValueError, match="total_bytes"):
        upload.initiate(session, io.BytesIO(DATA), {"name": "neg"}, "text/plain", total_bytes=-1)
    _nothing_sent(env, before)


# ------------------------------------------------------------------------ streams


def test_resumable_stream_not_at_beginning(env: Env, session: requests.Session) -> None:
    stream = io.BytesIO(DATA)
    stream.seek(10)
    before = _count(env)
    upload = ResumableUpload(env.upload_url("resumable"), CHUNK)
    with pytest.raises(ValueError, match=exact("Stream must be at beginning.")):
        upload.initiate(session, stream, {"name": "x"}, "text/plain")
    _nothing_sent(env, before)


@pytest.fixture
def pipe_reader() -> Iterator[io.BufferedReader]:
    read_fd, write_fd = os.pipe()
    os.write(write_fd, DATA[:1000])
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as reader:
        yield reader


def test_resumable_size_of_non_seekable_stream(
    env: Env, session: requests.Session, pipe_reader: io.BufferedReader
) -> None:
    # stream_final=True needs the size, i.e. a seek to the end: impossible on a pipe.
    before = _count(env)
    upload = ResumableUpload(env.upload_url("resumable"), CHUNK)
    with pytest.raises(OSError, match="seek"):
        upload.initiate(session, pipe_reader, {"name": "pipe"}, "text/plain")
    _nothing_sent(env, before)


class _ForwardOnly(io.RawIOBase):
    """A stream that knows its position but cannot seek (like an HTTP response body)."""

    def __init__(self, data: bytes) -> None:
        self._inner = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        return self._inner.tell()

    def seek(self, offset: int, whence: int = 0) -> int:
        raise io.UnsupportedOperation("seek")

    def readinto(self, buffer: Any) -> int:
        return self._inner.readinto(buffer)


def test_resumable_auto_recover_needs_seekable_stream(env: Env, session: requests.Session) -> None:
    # Automatic recovery rewinds the stream; a stream that cannot seek must be refused up
    # front, not discovered at the first fault half-way through the upload.
    before = _count(env)
    upload = ResumableUpload(env.upload_url("resumable"), CHUNK, auto_recover=True)
    stream = _ForwardOnly(DATA)
    with pytest.raises(ValueError, match="seekable"):
        upload.initiate(session, stream, {"name": "fwd"}, "text/plain", stream_final=False)  # type: ignore[arg-type]
    _nothing_sent(env, before)


def test_pipelined_upload_missing_source(env: Env, session: requests.Session) -> None:
    before = _count(env)
    upload = PipelinedUpload(env.upload_url("resumable"), CHUNK)
    missing = env.workdir / "missing.bin"
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        upload.transmit(session, missing, {"name": "m"}, "text/plain")
    _nothing_sent(env, before)


def test_parallel_upload_missing_source(env: Env) -> None:
    before = _count(env)
    missing = env.workdir / "missing.bin"
    upload = ParallelUpload(env.xml_url("m"), missing, processes=0)
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        upload.transmit(transports.anonymous(), "text/plain")
    _nothing_sent(env, before)


# ------------------------------------------------------------------------ reuse


@pytest.mark.parametrize("cls", [Download, RawDownload])
def test_download_used_twice(env: Env, session: requests.Session, cls: type[Download]) -> None:
    download = cls(env.media_url("obj"), io.BytesIO())
    download.consume(session)
    with pytest.raises(ValueError, match=exact("A download can only be used once.")):
        download.consume(session)


def test_simple_upload_used_twice(env: Env, session: requests.Session) -> None:
    upload = SimpleUpload(env.upload_url("media", "twice"))
    upload.transmit(session, b"abc", "text/plain")
    with pytest.raises(ValueError, match=exact("An upload can only be used once.")):
        upload.transmit(session, b"abc", "text/plain")


def test_multipart_upload_used_twice(env: Env, session: requests.Session) -> None:
    upload = MultipartUpload(env.upload_url("multipart"))
    upload.transmit(session, b"abc", {"name": "twice"}, "text/plain")
    with pytest.raises(ValueError, match=exact("An upload can only be used once.")):
        upload.transmit(session, b"abc", {"name": "twice"}, "text/plain")


def test_resumable_initiated_twice(env: Env, session: requests.Session) -> None:
    upload = ResumableUpload(env.upload_url("resumable"), CHUNK)
    upload.initiate(session, io.BytesIO(DATA), {"name": "r"}, "text/plain")
    with pytest.raises(ValueError, match=exact("This upload has already been initiated.")):
        upload.initiate(session, io.BytesIO(DATA), {"name": "r"}, "text/plain")


def test_resumable_after_finish(env: Env, session: requests.Session) -> None:
    upload = ResumableUpload(env.upload_url("resumable"), CHUNK)
    upload.initiate(session, io.BytesIO(DATA), {"name": "r"}, "text/plain")
    upload.transmit(session)
    with pytest.raises(ValueError, match=exact("Upload has finished.")):
        upload.transmit_next_chunk(session)


def test_resumable_chunk_before_initiate(env: Env, session: requests.Session) -> None:
    upload = ResumableUpload(env.upload_url("resumable"), CHUNK)
    with pytest.raises(ValueError, match=exact(NOT_INITIATED)):
        upload.transmit_next_chunk(session)


def test_chunked_download_after_finish(env: Env, session: requests.Session) -> None:
    download = ChunkedDownload(env.media_url("obj"), 4 * CHUNK, io.BytesIO())
    download.consume_next_chunk(session)
    assert download.finished
    with pytest.raises(ValueError, match=exact("Download has finished.")):
        download.consume_next_chunk(session)


def test_xml_part_uploaded_twice(env: Env, session: requests.Session) -> None:
    source = env.workdir / "part.bin"
    source.write_bytes(DATA)
    container = XMLMPUContainer(env.xml_url("mpu"), str(source))
    container.initiate(session, "application/octet-stream")
    assert container.upload_id is not None
    part = XMLMPUPart(env.xml_url("mpu"), container.upload_id, str(source), 0, len(DATA), 1)
    part.upload(session)
    with pytest.raises(ValueError, match=exact("This part has already been uploaded.")):
        part.upload(session)


def test_xml_finalize_before_initiate(env: Env, session: requests.Session) -> None:
    container = XMLMPUContainer(env.xml_url("mpu"), "unused")
    with pytest.raises(ValueError, match=exact("This upload has not yet been initiated.")):
        container.finalize(session)


# ------------------------------------------------------------------------ data and metadata


@pytest.mark.parametrize("data", ["text", bytearray(b"abc"), memoryview(b"abc"), None])
def test_simple_upload_non_bytes(env: Env, session: requests.Session, data: Any) -> None:
    before = _count(env)
    upload = SimpleUpload(env.upload_url("media", "nb"))
    with pytest.raises(TypeError) as caught:
        upload.transmit(session, data, "text/plain")
    assert caught.value.args == ("`data` must be bytes, received", type(data))
    _nothing_sent(env, before)


def test_multipart_non_bytes(env: Env, session: requests.Session) -> None:
    upload = MultipartUpload(env.upload_url("multipart"))
    with pytest.raises(TypeError) as caught:
        upload.transmit(session, "text", {"name": "nb"}, "text/plain")  # type: ignore[arg-type]
    assert caught.value.args == ("`data` must be bytes, received", str)
    # Refused input does not use the object up: a corrected call goes through.
    upload.transmit(session, b"text", {"name": "nb"}, "text/plain")
    assert env.server.object_bytes(env.bucket, "nb") == b"text"


_NOT_JSON = "Object of type set is not JSON serializable"


def test_multipart_metadata_not_json(env: Env, session: requests.Session) -> None:
    before = _count(env)
    upload = MultipartUpload(env.upload_url("multipart"))
    with pytest.raises(TypeError, match=_NOT_JSON):
        upload.transmit(session, b"abc", {"name": "j", "metadata": {"k": {1}}}, "text/plain")
    _nothing_sent(env, before)


def test_resumable_metadata_not_json(env: Env, session: requests.Session) -> None:
    before = _count(env)
    upload = ResumableUpload(env.upload_url("resumable"), CHUNK)
    with pytest.raises(TypeError, match=_NOT_JSON):
        upload.initiate(session, io.BytesIO(DATA), {"name": "j", "x": {1}}, "text/plain")
    _nothing_sent(env, before)
    assert upload.resumable_url is None


def test_pipelined_metadata_not_json(env: Env, session: requests.Session) -> None:
    before = _count(env)
    upload = PipelinedUpload(env.upload_url("resumable"), CHUNK)
    with pytest.raises(TypeError, match=_NOT_JSON):
        upload.transmit(session, io.BytesIO(DATA), {"name": "j", "x": {1}}, "text/plain")
    _nothing_sent(env, before)


# ------------------------------------------------------------------------ URLs


def test_download_url_without_scheme(session: requests.Session) -> None:
    download = Download("not a url", io.BytesIO(), retry=FAST_RETRY)
    # requests/urllib3 versions differ on which of the two it is (urllib3 2.8 parses the host
    # first); either way it is a clear, non-retried error that names the URL.
    with pytest.raises(
        (requests.exceptions.MissingSchema, requests.exceptions.InvalidURL), match="not a url"
    ):
        download.consume(session)


def test_simple_upload_malformed_url(session: requests.Session) -> None:
    upload = SimpleUpload("http://[::1/upload", retry=FAST_RETRY)
    with pytest.raises(requests.exceptions.InvalidURL):
        upload.transmit(session, b"abc", "text/plain")


def test_parallel_download_unsupported_scheme(tmp_path: pathlib.Path) -> None:
    destination = tmp_path / "out.bin"
    download = ParallelDownload("ftp://example.invalid/o", destination, retry=FAST_RETRY)
    with pytest.raises(requests.exceptions.InvalidSchema, match="No connection adapters"):
        download.consume(transports.anonymous())
    assert list(tmp_path.iterdir()) == []


def test_download_connection_refused(session: requests.Session) -> None:
    # Retried (a connection error), then given up after FAST_RETRY's 6 retries.
    probe = __import__("socket").socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    stream = io.BytesIO()
    download = Download(f"http://127.0.0.1:{port}/o?alt=media", stream, retry=FAST_RETRY)
    with pytest.raises(requests.exceptions.ConnectionError, match="Connection refused"):
        download.consume(session, timeout=TIMEOUT)
    assert stream.getvalue() == b""


def test_cli_gs_url_without_bucket(env: Env) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "resumable_media",
            "cp",
            "--endpoint",
            env.endpoint,
            str(env.workdir / "x"),
            "gs://",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "gs://" in proc.stderr and "bucket" in proc.stderr.lower()


# ------------------------------------------------------------------------ checksum names


def test_download_unknown_checksum(env: Env) -> None:
    with pytest.raises(ValueError, match=exact(DOWNLOAD_CHECKSUM)):
        Download(env.media_url("obj"), io.BytesIO(), checksum="sha1")  # type: ignore[arg-type]


def test_chunked_download_unknown_checksum(env: Env) -> None:
    with pytest.raises(ValueError, match=exact(DOWNLOAD_CHECKSUM)):
        ChunkedDownload(env.media_url("obj"), CHUNK, io.BytesIO(), checksum="sha1")  # type: ignore[arg-type]


@pytest.mark.parametrize("cls", [ResumableUpload, MultipartUpload])
def test_upload_unknown_checksum(env: Env, cls: Any) -> None:
    # Upstream's message for uploads too (google-resumable-media uses one for both).
    with pytest.raises(ValueError, match=exact(DOWNLOAD_CHECKSUM)):
        if cls is ResumableUpload:
            cls(env.upload_url("resumable"), CHUNK, checksum="sha256")  # type: ignore[arg-type]
        else:
            cls(env.upload_url("multipart"), checksum="sha256")


def test_parallel_download_unknown_checksum(env: Env) -> None:
    with pytest.raises(ValueError, match="not 'bogus'"):
        ParallelDownload(env.media_url("obj"), env.workdir / "o", checksum="bogus")  # type: ignore[arg-type]


def test_pipelined_unknown_checksum(env: Env) -> None:
    with pytest.raises(ValueError, match="not 'sha1'"):
        PipelinedUpload(env.upload_url("resumable"), CHUNK, checksum="sha1")  # type: ignore[arg-type]


def test_parallel_upload_md5(env: Env) -> None:
    with pytest.raises(ValueError, match="multipart objects have no MD5"):
        ParallelUpload(env.xml_url("o"), env.workdir / "o", checksum="md5")


def test_new_hasher_unknown_name() -> None:
    with pytest.raises(ValueError, match=re.escape("unknown checksum 'sha1'; expected")):
        checksums.new_hasher("sha1")
