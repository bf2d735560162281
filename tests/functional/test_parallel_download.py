"""ParallelDownload against the loopback server: round trips, ranges, gzip, faults, resume."""

from __future__ import annotations

import base64
import gzip
import hashlib
import itertools
import os
import pathlib
import signal
import subprocess
import sys
import time
import urllib.parse

import pytest
import requests

from resumable_media import DataCorruption, InvalidResponse, RetryStrategy, checksums, transports
from resumable_media.parallel import ParallelDownload, ParallelUpload
from resumable_media.parallel.journal import Journal
from resumable_media.parallel.sink import temp_path_for
from support import logged_requests

CHUNK = 256 * 1024
FAST_RETRY = RetryStrategy(max_retries=6, initial_delay=0.01, max_sleep=0.05, jitter_s=0)
HELPER = pathlib.Path(__file__).with_name("_parallel_crash_helper.py")


def _media_url(server, bucket: str, name: str) -> str:
    quoted = urllib.parse.quote(name, safe="")
    return f"{server.endpoint}/download/storage/v1/b/{bucket}/o/{quoted}?alt=media"


def _put(server, bucket: str, name: str, data: bytes, **kwargs) -> str:
    server.put_object(bucket, name, data, **kwargs)
    return _media_url(server, bucket, name)


def _leftovers(dest: pathlib.Path) -> list[str]:
    return sorted(p.name for p in dest.parent.iterdir() if p.name.startswith(dest.name))


@pytest.mark.parametrize("write_mode", ["pwrite", "mmap"])
@pytest.mark.parametrize(
    "size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK + 7, 9 * CHUNK + 123]
)
def test_round_trip_sizes(gcs_server, gcs_bucket, tmp_path, size, write_mode):
    data = os.urandom(size)
    url = _put(gcs_server, gcs_bucket, "obj", data)
    dest = tmp_path / "out.bin"
    calls: list[tuple[int, int | None]] = []
    result = ParallelDownload(url, dest, chunk_size=CHUNK, write_mode=write_mode).consume(
        transports.anonymous(), progress=lambda done, total: calls.append((done, total))
    )
    assert dest.read_bytes() == data
    assert result.bytes == size
    assert result.verified
    assert result.crc32c == checksums.crc32c_to_b64(checksums.crc32c(data))
    assert result.generation is not None
    assert calls and calls[-1] == (size, size)
    assert _leftovers(dest) == ["out.bin"]
    assert oct(dest.stat().st_mode & 0o777) == oct(0o600)


@pytest.mark.parametrize("write_mode", ["pwrite", "mmap"])
def test_process_pool_and_md5(gcs_server, gcs_bucket, tmp_path, write_mode):
    data = os.urandom(11 * CHUNK + 5)
    url = _put(gcs_server, gcs_bucket, "obj", data)
    dest = tmp_path / "out.bin"
    download = ParallelDownload(
        url,
        dest,
        chunk_size=CHUNK,
        processes=2,
        threads_per_process=2,
        checksum="md5",
        write_mode=write_mode,
    )
    result = download.consume(transports.anonymous())
    assert dest.read_bytes() == data
    assert result.verified and result.md5 is not None
    # The pool is persistent: a second object reuses it.
    other = os.urandom(5 * CHUNK)
    url2 = _put(gcs_server, gcs_bucket, "obj2", other)
    ParallelDownload(url2, dest, chunk_size=CHUNK, processes=2, threads_per_process=2).consume(
        transports.anonymous()
    )
    assert dest.read_bytes() == other


def test_later_ranges_pin_generation(gcs_server, gcs_bucket, tmp_path):
    data = os.urandom(6 * CHUNK)
    url = _put(gcs_server, gcs_bucket, "obj", data)
    gcs_server.clear_requests()
    result = ParallelDownload(url, tmp_path / "o", chunk_size=CHUNK).consume(transports.anonymous())
    gets = [r for r in logged_requests(gcs_server) if r.method == "GET"]
    assert len(gets) == 6
    assert "generation=" not in gets[0].path
    assert all(f"generation={result.generation}" in r.path for r in gets[1:])
    assert not any(
        "/o/obj?" in r.path and r.method == "GET" and "alt=media" not in r.path for r in gets
    )


@pytest.mark.parametrize(
    ("start", "end"), [(0, 0), (5, CHUNK * 3 + 10), (CHUNK, None), (100, 10**9)]
)
def test_start_end_ranges(gcs_server, gcs_bucket, tmp_path, start, end):
    data = os.urandom(5 * CHUNK + 3)
    url = _put(gcs_server, gcs_bucket, "obj", data)
    dest = tmp_path / "part"
    result = ParallelDownload(url, dest, chunk_size=CHUNK, start=start, end=end).consume(
        transports.anonymous()
    )
    expected = data[start : None if end is None else end + 1]
    assert dest.read_bytes() == expected
    assert result.bytes == len(expected)
    assert result.verified == (start == 0 and (end is None or end >= len(data) - 1))


def test_unknown_write_mode_is_rejected_before_any_request(gcs_server, gcs_bucket, tmp_path):
    url = _put(gcs_server, gcs_bucket, "obj", b"x" * 10)
    gcs_server.clear_requests()
    with pytest.raises(ValueError, match="write_mode must be one of"):
        ParallelDownload(url, tmp_path / "out", write_mode="splice")
    assert logged_requests(gcs_server) == []


def test_start_beyond_end_is_an_error(gcs_server, gcs_bucket, tmp_path):
    url = _put(gcs_server, gcs_bucket, "obj", b"abc")
    with pytest.raises(Exception, match="beyond the end"):
        ParallelDownload(url, tmp_path / "x", start=10).consume(transports.anonymous())
    assert not (tmp_path / "x").exists()


def test_gzip_stored_object_single_stream(gcs_server, gcs_bucket, tmp_path):
    raw = os.urandom(1000) * 700
    url = _put(gcs_server, gcs_bucket, "z.txt", gzip.compress(raw), content_encoding="gzip")
    dest = tmp_path / "z.txt"
    result = ParallelDownload(url, dest, chunk_size=CHUNK).consume(transports.anonymous())
    assert dest.read_bytes() == raw
    assert result.verified and result.bytes == len(raw)


@pytest.mark.parametrize(
    "fault",
    [
        "return-broken-stream-after-100K",
        "return-503",
        "return-reset-connection",
    ],
)
@pytest.mark.parametrize("write_mode", ["pwrite", "mmap"])
def test_faults_mid_chunk_recover(gcs_server, gcs_bucket, tmp_path, fault, write_mode):
    data = os.urandom(8 * CHUNK + 17)
    url = _put(gcs_server, gcs_bucket, "obj", data)
    test_id = gcs_server.create_retry_test(
        {"storage.objects.get": [fault, "return-broken-stream-after-50K", fault]}
    )
    dest = tmp_path / "out"
    gcs_server.clear_requests()
    result = ParallelDownload(
        url,
        dest,
        chunk_size=CHUNK,
        headers={"x-retry-test-id": test_id},
        retry=FAST_RETRY,
        write_mode=write_mode,
    ).consume(transports.anonymous())
    assert dest.read_bytes() == data
    assert result.verified
    assert gcs_server.retry_test(test_id)["completed"]
    starts = [
        int(r.headers["range"].removeprefix("bytes=").split("-")[0])
        for r in logged_requests(gcs_server)
        if r.method == "GET" and "range" in r.headers
    ]
    # The chunk broken after 50K resumed from the bytes it had, not from its start.
    assert 50 * 1024 in {start % CHUNK for start in starts}


def test_corrupted_data_raises_and_leaves_nothing(gcs_server, gcs_bucket, tmp_path):
    data = os.urandom(6 * CHUNK)
    url = _put(gcs_server, gcs_bucket, "obj", data)
    test_id = gcs_server.create_retry_test({"storage.objects.get": ["return-corrupted-data"]})
    dest = tmp_path / "out"
    with pytest.raises(DataCorruption, match="Checksum mismatch"):
        ParallelDownload(url, dest, chunk_size=CHUNK, headers={"x-retry-test-id": test_id}).consume(
            transports.anonymous()
        )
    assert _leftovers(dest) == []


def test_corruption_keeps_existing_destination(gcs_server, gcs_bucket, tmp_path):
    url = _put(gcs_server, gcs_bucket, "obj", os.urandom(3 * CHUNK))
    dest = tmp_path / "out"
    dest.write_bytes(b"precious")
    test_id = gcs_server.create_retry_test({"storage.objects.get": ["return-corrupted-data"]})
    with pytest.raises(DataCorruption):
        ParallelDownload(url, dest, chunk_size=CHUNK, headers={"x-retry-test-id": test_id}).consume(
            transports.anonymous()
        )
    assert dest.read_bytes() == b"precious"
    assert _leftovers(dest) == ["out"]


def test_missing_object_is_fatal(gcs_server, gcs_bucket, tmp_path):
    url = _media_url(gcs_server, gcs_bucket, "nope")
    with pytest.raises(Exception, match="404"):
        ParallelDownload(url, tmp_path / "n").consume(transports.anonymous())
    assert list(tmp_path.iterdir()) == []


def test_unpicklable_factory_is_rejected(gcs_server, gcs_bucket, tmp_path):
    url = _put(gcs_server, gcs_bucket, "obj", b"x")
    with pytest.raises(TypeError, match="picklable"):
        ParallelDownload(url, tmp_path / "o", processes=1).consume(lambda: None)  # type: ignore[arg-type]
    # In this process a lambda is fine, but it must build a session.
    with pytest.raises(TypeError, match="returned a NoneType, not a session"):
        ParallelDownload(url, tmp_path / "o").consume(lambda: None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("signum", "processes"),
    [(signal.SIGKILL, 0), (signal.SIGINT, 0), (signal.SIGKILL, 1), (signal.SIGINT, 1)],
    ids=["kill-9", "ctrl-c", "kill-9-process-pool", "ctrl-c-process-pool"],
)
def test_interrupted_download_resumes_with_only_the_rest(
    gcs_server, gcs_bucket, tmp_path, signum, processes
):
    size = 16 * CHUNK
    data = os.urandom(size)
    url = _put(gcs_server, gcs_bucket, "big", data)
    dest = tmp_path / "big"
    journal_path = temp_path_for(dest) + ".journal"
    # The first request (chunk 0) stalls after 128 KiB, so the child is mid-transfer for sure.
    test_id = gcs_server.create_retry_test({"storage.objects.get": ["stall-for-6s-after-128K"]})
    child = subprocess.Popen(
        [sys.executable, str(HELPER), url, str(dest), str(CHUNK), test_id, str(processes)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group, like a shell job
    )
    try:
        deadline = time.monotonic() + 20
        done = 0
        while time.monotonic() < deadline:
            journal = Journal.load(journal_path)
            if journal is not None:
                done = sum(pair[0] for pair in journal.chunks)
                if done >= size - CHUNK:
                    break
            assert child.poll() is None, child.stderr.read() if child.stderr else ""
            time.sleep(0.05)
        assert done >= size - CHUNK, "the child made no progress"
        signalled = time.monotonic()
        if signum == signal.SIGINT:
            os.killpg(child.pid, signum)  # Ctrl-C reaches every process of the job
        else:
            child.send_signal(signum)
        _out, err = child.communicate(timeout=10)
        if signum == signal.SIGINT:
            # Ctrl-C: the parent cancels, keeps the resumable state, exits promptly.
            assert time.monotonic() - signalled < 4.5
            assert b"KeyboardInterrupt" in err
            assert os.path.exists(journal_path)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if child.stderr:
            child.stderr.close()
        _assert_group_exits(child.pid)  # no orphaned workers, even after kill -9
    assert not dest.exists()
    before = gcs_server.media_bytes_sent_for(gcs_bucket)
    result = ParallelDownload(url, dest, chunk_size=CHUNK).consume(transports.anonymous())
    fetched = gcs_server.media_bytes_sent_for(gcs_bucket) - before
    assert dest.read_bytes() == data
    assert result.verified
    assert fetched < size // 2, fetched
    assert _leftovers(dest) == ["big"]


def _assert_group_exits(pgid: int) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    os.killpg(pgid, signal.SIGKILL)
    pytest.fail("worker processes outlived the interrupted download")


def test_fatal_error_cancels_the_other_chunks_at_once(gcs_server, gcs_bucket, tmp_path):
    url = _put(gcs_server, gcs_bucket, "obj", os.urandom(8 * CHUNK))
    # Chunk 0 stalls for 8 s; chunk 1 gets a non-retryable 400.
    test_id = gcs_server.create_retry_test(
        {"storage.objects.get": ["stall-for-8s-after-64K", "return-400"]}
    )
    dest = tmp_path / "out"
    began = time.monotonic()
    with pytest.raises(InvalidResponse, match="400"):
        ParallelDownload(url, dest, chunk_size=CHUNK, headers={"x-retry-test-id": test_id}).consume(
            transports.anonymous()
        )
    assert time.monotonic() - began < 5
    assert _leftovers(dest) == []


def test_progress_keeps_coming_while_a_chunk_stalls(gcs_server, gcs_bucket, tmp_path):
    url = _put(gcs_server, gcs_bucket, "obj", os.urandom(6 * CHUNK))
    test_id = gcs_server.create_retry_test({"storage.objects.get": ["stall-for-2s-after-64K"]})
    stamps: list[float] = []
    ParallelDownload(
        url, tmp_path / "o", chunk_size=CHUNK, headers={"x-retry-test-id": test_id}
    ).consume(transports.anonymous(), progress=lambda done, total: stamps.append(time.monotonic()))
    assert stamps[-1] - stamps[0] > 1.5
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert max(gaps) < 0.25, max(gaps)  # at least 4 calls a second while busy


def test_md5_falls_back_to_crc32c_for_objects_without_md5(gcs_server, gcs_bucket, tmp_path):
    data = os.urandom(5 * CHUNK + 1)
    source = tmp_path / "src"
    source.write_bytes(data)
    ParallelUpload(f"{gcs_server.endpoint}/{gcs_bucket}/mpu", source, part_size=CHUNK).transmit(
        transports.anonymous(), "application/octet-stream"
    )
    url = _media_url(gcs_server, gcs_bucket, "mpu")
    with requests.get(url, timeout=10) as response:
        assert "md5=" not in response.headers["x-goog-hash"]
    result = ParallelDownload(url, tmp_path / "d", chunk_size=CHUNK, checksum="md5").consume(
        transports.anonymous()
    )
    assert (tmp_path / "d").read_bytes() == data
    assert result.verified  # by CRC32C
    assert result.md5 == base64.b64encode(hashlib.md5(data).digest()).decode()


def test_changed_generation_starts_over(gcs_server, gcs_bucket, tmp_path):
    first = os.urandom(6 * CHUNK)
    url = _put(gcs_server, gcs_bucket, "obj", first)
    dest = tmp_path / "out"
    # Fake an interrupted run of the old generation: a journal claiming chunk 0 is done.
    old = Journal(
        media_url=url,
        generation=1,
        size=len(first),
        start=0,
        end=len(first) - 1,
        chunk_size=CHUNK,
        crc32c=None,
        md5=None,
        chunks=[[CHUNK, checksums.crc32c(b"\0" * CHUNK)]] + [[0, 0]] * 5,
    )
    pathlib.Path(temp_path_for(dest)).write_bytes(b"\0" * len(first))
    old.save(temp_path_for(dest) + ".journal")
    result = ParallelDownload(url, dest, chunk_size=CHUNK).consume(transports.anonymous())
    assert dest.read_bytes() == first
    assert result.verified
    assert _leftovers(dest) == ["out"]


def test_journal_without_its_temp_file_is_ignored(gcs_server, gcs_bucket, tmp_path):
    data = os.urandom(6 * CHUNK)
    url = _put(gcs_server, gcs_bucket, "obj", data)
    dest = tmp_path / "out"
    stale = Journal(
        media_url=url,
        generation=None,
        size=len(data),
        start=0,
        end=len(data) - 1,
        chunk_size=CHUNK,
        crc32c=None,
        md5=None,
        chunks=[[CHUNK, 0]] * 6,
    )
    stale.save(temp_path_for(dest) + ".journal")  # but no temporary file
    before = gcs_server.media_bytes_sent_for(gcs_bucket)
    result = ParallelDownload(url, dest, chunk_size=CHUNK).consume(transports.anonymous())
    assert dest.read_bytes() == data and result.verified
    # One pass, no wasted restart.
    assert gcs_server.media_bytes_sent_for(gcs_bucket) - before == len(data)
    assert _leftovers(dest) == ["out"]
