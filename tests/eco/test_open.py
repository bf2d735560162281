"""resumable_media.open: a seekable read-ahead reader and a streaming writer."""

from __future__ import annotations

import io
import os

import pytest
from _eco_support import records

import resumable_media
from resumable_media import common
from resumable_media.testing import GCSServer

MIB = 1 << 20


@pytest.fixture(autouse=True)
def _emulator(gcs_server: GCSServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_server.endpoint)


def test_sequential_read_is_verified(gcs_server: GCSServer, gcs_bucket: str) -> None:
    data = os.urandom(5 * MIB + 3)
    gcs_server.put_object(gcs_bucket, "r.bin", data)
    gcs_server.clear_requests()
    with resumable_media.open(f"gs://{gcs_bucket}/r.bin", "rb", chunk_size=MIB) as f:
        assert isinstance(f, io.BufferedReader)
        assert f.read() == data
        assert f.raw.verified
        assert f.read() == b""
    ranged = records(gcs_server, lambda r: bool(r.headers.get("range")) and gcs_bucket in r.path, 6)
    assert len(ranged) == 6  # one GET per chunk, no metadata request
    generation = gcs_server.requests[0].path
    assert all("generation=" in r.path for r in ranged[1:]), generation


def test_small_reads_lines_and_seek(gcs_server: GCSServer, gcs_bucket: str) -> None:
    lines = b"".join(b"line %d\n" % i for i in range(200_000))
    gcs_server.put_object(gcs_bucket, "lines.txt", lines)
    with resumable_media.open(f"gs://{gcs_bucket}/lines.txt", "rb", chunk_size=256 * 1024) as f:
        assert f.readline() == b"line 0\n"
        assert f.read(5) == b"line "
        assert f.seek(-7, os.SEEK_END) == len(lines) - 7
        assert f.read() == lines[-7:]
        f.seek(1_000_000)
        assert f.tell() == 1_000_000
        assert f.read(1000) == lines[1_000_000:1_001_000]
        assert not f.raw.verified  # chunks were skipped: nothing checked yet
        f.seek(0)
        assert list(f)[:3] == [b"line 0\n", b"line 1\n", b"line 2\n"]
        assert f.raw.verified  # every chunk has now been read once, in order
        buffer = bytearray(10)
        f.seek(3)
        assert f.readinto(buffer) == 10 and bytes(buffer) == lines[3:13]


def test_empty_object_and_errors(gcs_server: GCSServer, gcs_bucket: str) -> None:
    gcs_server.put_object(gcs_bucket, "empty", b"")
    with resumable_media.open(f"gs://{gcs_bucket}/empty", "rb") as f:
        assert f.read() == b""
    gcs_server.put_object(gcs_bucket, "one-chunk", b"abc")
    with resumable_media.open(f"gs://{gcs_bucket}/one-chunk", "rb") as f:
        assert f.read() == b"abc" and f.raw.verified
        f.seek(1)  # the consumed chunk is fetched again
        assert f.read() == b"bc"
    with pytest.raises(common.InvalidResponse, match="404"):
        resumable_media.open(f"gs://{gcs_bucket}/missing", "rb")
    with pytest.raises(ValueError, match="mode must be"):
        resumable_media.open(f"gs://{gcs_bucket}/x", "r+")
    with pytest.raises(ValueError, match="names a bucket"):
        resumable_media.open(f"gs://{gcs_bucket}/", "rb")


def test_corrupted_read_raises_before_eof(gcs_server: GCSServer, gcs_bucket: str) -> None:
    data = os.urandom(3 * MIB)
    gcs_server.put_object(gcs_bucket, "bad.bin", data)
    test_id = gcs_server.create_retry_test({"storage.objects.get": ["return-corrupted-data"]})
    got = bytearray()
    with (
        pytest.raises(common.DataCorruption, match=r"bad\.bin"),
        resumable_media.open(
            f"gs://{gcs_bucket}/bad.bin", "rb", chunk_size=MIB, headers={"x-retry-test-id": test_id}
        ) as f,
    ):
        while piece := f.read(100_000):
            got += piece
    assert len(got) < len(data)  # the reader never reached a clean EOF


def test_streaming_write_of_unknown_size(gcs_server: GCSServer, gcs_bucket: str) -> None:
    data = os.urandom(3 * MIB + 99)
    url = f"gs://{gcs_bucket}/w.bin"
    seen: list[int] = []
    gcs_server.clear_requests()
    with resumable_media.open(
        url,
        "wb",
        chunk_size=MIB,
        content_type="text/plain",
        metadata={"k": "v"},
        progress=lambda done, total: seen.append(done),
    ) as f:
        for start in range(0, len(data), 65_536):
            f.write(data[start : start + 65_536])
        assert not gcs_server.has_object(gcs_bucket, "w.bin")  # only close finalizes
    assert gcs_server.object_bytes(gcs_bucket, "w.bin") == data
    assert f.result is not None and f.result.verified
    assert seen[-1] == len(data)
    with resumable_media.open(url, "rb") as back:
        assert back.read() == data and back.raw.verified
    # the final request carried the CRC32C of everything written
    final = records(gcs_server, lambda r: r.method == "PUT" and r.status in (200, 201), 1)
    assert final[-1].headers.get("x-goog-hash", "").startswith("crc32c=")


def test_exception_inside_with_creates_no_object(gcs_server: GCSServer, gcs_bucket: str) -> None:
    with (
        pytest.raises(RuntimeError, match="boom"),
        resumable_media.open(f"gs://{gcs_bucket}/aborted.bin", "wb", chunk_size=MIB) as f,
    ):
        f.write(os.urandom(2 * MIB + 5))
        raise RuntimeError("boom")
    assert not gcs_server.has_object(gcs_bucket, "aborted.bin")


def test_failed_upload_raises_on_close_and_creates_no_object(
    gcs_server: GCSServer, gcs_bucket: str
) -> None:
    test_id = gcs_server.create_retry_test({"storage.objects.insert": ["return-400-after-512K"]})
    f = resumable_media.open(
        f"gs://{gcs_bucket}/refused.bin",
        "wb",
        chunk_size=256 * 1024,
        headers={"x-retry-test-id": test_id},
    )
    with pytest.raises(common.InvalidResponse):  # from a later write, or at the latest close
        for _ in range(16):
            f.write(os.urandom(256 * 1024))
        f.close()
    with pytest.raises(common.InvalidResponse):
        f.close()  # the failure stays; the upload is never finalized
    assert f.closed
    assert not gcs_server.has_object(gcs_bucket, "refused.bin")


def test_precondition_on_write(gcs_server: GCSServer, gcs_bucket: str) -> None:
    gcs_server.put_object(gcs_bucket, "exists.bin", b"old")
    f = resumable_media.open(f"gs://{gcs_bucket}/exists.bin", "wb", if_generation_match=0)
    f.write(b"new")
    with pytest.raises(common.InvalidResponse, match="412"):
        f.close()
    assert gcs_server.object_bytes(gcs_bucket, "exists.bin") == b"old"


def test_read_all_after_a_partial_read_and_corruption(
    gcs_server: GCSServer, gcs_bucket: str
) -> None:
    data = os.urandom(4 * MIB + 3)
    gcs_server.put_object(gcs_bucket, "all.bin", data)
    url = f"gs://{gcs_bucket}/all.bin"
    with resumable_media.open(url, "rb", chunk_size=MIB) as f:
        assert f.read(MIB + 10) == data[: MIB + 10]
        assert f.read() == data[MIB + 10 :] and f.raw.verified
        assert f.tell() == len(data)
    test_id = gcs_server.create_retry_test({"storage.objects.get": ["return-corrupted-data"]})
    with (
        resumable_media.open(url, "rb", chunk_size=MIB, headers={"x-retry-test-id": test_id}) as f,
        pytest.raises(common.DataCorruption),
    ):
        f.read()


def test_finalized_but_unverified_upload_is_deleted(gcs_server: GCSServer, gcs_bucket: str) -> None:
    from resumable_media import _streams, transports

    class LyingUpload:  # finalizes an object with other bytes, then reports the mismatch
        chunk_size = 256 * 1024
        headers: dict[str, str] = {}
        resumable_url = None

        def transmit(self, transport: object, source: object, *args: object, **kw: object) -> None:
            view = memoryview(bytearray(1 << 20))
            while source.readinto(view):  # type: ignore[attr-defined]
                pass
            gcs_server.put_object(gcs_bucket, "lie.bin", b"not what was written")
            raise common.DataCorruption(None, "the uploaded object's crc32c differs")

    url = f"{gcs_server.endpoint}/storage/v1/b/{gcs_bucket}/o/lie.bin"
    writer = _streams.ObjectWriter(
        LyingUpload(),
        transports.anonymous(),
        {"name": "lie.bin"},
        "application/octet-stream",
        name=f"gs://{gcs_bucket}/lie.bin",
        object_url=url,
    )
    writer.write(b"the real data")
    with pytest.raises(common.DataCorruption):
        writer.close()
    assert not gcs_server.has_object(gcs_bucket, "lie.bin")


def _ranges(gcs_server: GCSServer, name: str) -> list[str]:
    return [r.headers.get("range", "") for r in gcs_server.requests if f"/o/{name}" in r.path]


@pytest.mark.parametrize("known", [False, True], ids=["discovered", "known"])
def test_the_first_window_starts_while_the_first_body_is_stalled(
    gcs_server: GCSServer, gcs_bucket: str, known: bool
) -> None:
    import threading
    import time

    data = os.urandom(4 * MIB)
    meta = gcs_server.put_object(gcs_bucket, "w.bin", data)
    # The first GET's headers go out at once, then its body stalls for 3 s.
    test_id = gcs_server.create_retry_test({"storage.objects.get": ["stall-for-3s-after-0K"]})
    gcs_server.clear_requests()
    began = time.monotonic()
    f = resumable_media.open(
        f"gs://{gcs_bucket}/w.bin",
        "rb",
        chunk_size=MIB,
        threads=4,
        headers={"x-retry-test-id": test_id},
        size=len(data) if known else None,
        generation=int(meta["generation"]) if known else None,
    )
    assert time.monotonic() - began < 2  # open() waited for headers at most, not a body
    if known:
        assert _ranges(gcs_server, "w.bin") == []  # nothing is sent before the first read
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(f.read()))
    reader.start()
    # The other chunks of the window are asked for during the stall, not after it.
    others = records(gcs_server, lambda r: "/o/w.bin" in r.path, 4, timeout_s=2.0)
    assert len(others) == 4, [r.headers.get("range") for r in others]
    assert time.monotonic() - began < 3
    reader.join(30)
    assert got == [data] and f.raw.verified
    f.close()
    assert sorted(_ranges(gcs_server, "w.bin")) == [
        f"bytes={i * MIB}-{(i + 1) * MIB - 1}" for i in range(4)
    ]
    assert all(f"generation={meta['generation']}" in r.path for r in others[1:])


def test_known_size_small_empty_and_a_wrong_generation(
    gcs_server: GCSServer, gcs_bucket: str
) -> None:
    small = gcs_server.put_object(gcs_bucket, "small", b"abc")
    with resumable_media.open(
        f"gs://{gcs_bucket}/small", "rb", size=3, generation=int(small["generation"])
    ) as f:
        assert f.read() == b"abc" and f.raw.verified  # the hash came with the ranged GET
    empty = gcs_server.put_object(gcs_bucket, "empty", b"")
    with resumable_media.open(
        f"gs://{gcs_bucket}/empty",
        "rb",
        size=0,
        generation=int(empty["generation"]),
        crc32c=empty["crc32c"],
    ) as f:
        assert f.read() == b"" and f.raw.verified
    with (
        resumable_media.open(
            f"gs://{gcs_bucket}/empty", "rb", size=0, generation=1, crc32c="AAAAAQ=="
        ) as f,
        pytest.raises(common.DataCorruption, match="empty"),
    ):
        f.read()
    # A generation that is gone fails on the first read (nothing was sent before it).
    f = resumable_media.open(
        f"gs://{gcs_bucket}/small", "rb", size=3, generation=int(small["generation"]) + 7
    )
    with pytest.raises(common.InvalidResponse, match="404"):
        f.read()
    f.close()
    # A size other than the object's is refused by the Content-Range check.
    with (
        resumable_media.open(
            f"gs://{gcs_bucket}/small", "rb", size=2, generation=int(small["generation"])
        ) as f,
        pytest.raises(common.InvalidResponse),
    ):
        f.read()


def test_a_body_broken_mid_chunk_resumes_or_fails(gcs_server: GCSServer, gcs_bucket: str) -> None:
    data = os.urandom(2 * MIB + 5)
    gcs_server.put_object(gcs_bucket, "cut.bin", data)
    url = f"gs://{gcs_bucket}/cut.bin"
    test_id = gcs_server.create_retry_test(
        {"storage.objects.get": ["return-broken-stream-after-256K"]}
    )
    gcs_server.clear_requests()
    with resumable_media.open(url, "rb", chunk_size=MIB, headers={"x-retry-test-id": test_id}) as f:
        assert f.read() == data and f.raw.verified
    # The broken chunk was resumed from its first missing byte, not fetched again.
    assert "bytes=262144-1048575" in _ranges(gcs_server, "cut.bin")
    test_id = gcs_server.create_retry_test(
        {"storage.objects.get": ["return-broken-stream-after-256K"]}
    )
    with (
        resumable_media.open(
            url, "rb", chunk_size=MIB, retry=None, headers={"x-retry-test-id": test_id}
        ) as f,
        pytest.raises(Exception) as failed,
    ):
        f.read()
    assert not isinstance(failed.value, common.DataCorruption)
    assert not f.raw.verified


def test_read_everything_fills_one_result_and_large_readinto(
    gcs_server: GCSServer, gcs_bucket: str
) -> None:
    data = os.urandom(3 * MIB + 17)
    meta = gcs_server.put_object(gcs_bucket, "big.bin", data)
    url = f"gs://{gcs_bucket}/big.bin"
    with resumable_media.open(url, "rb", chunk_size=MIB) as f:
        buffer = bytearray(2 * MIB)
        f.seek(5)
        # Unaligned: the head and the tail chunk are copied, the tail kept for the next read.
        assert f.readinto(buffer) == 2 * MIB and bytes(buffer) == data[5 : 2 * MIB + 5]
        assert f.read(10) == data[2 * MIB + 5 : 2 * MIB + 15]
        f.seek(0)
        whole = bytearray(len(data) + 100)
        assert f.readinto(whole) == len(data) and bytes(whole[: len(data)]) == data
        assert f.raw.verified
    size, generation = len(data), int(meta["generation"])
    gcs_server.clear_requests()
    with resumable_media.open(url, "rb", chunk_size=MIB, size=size, generation=generation) as f:
        assert f.read() == data and f.raw.verified
    assert len(_ranges(gcs_server, "big.bin")) == 4  # every chunk once, straight into place
    with resumable_media.open(url, "rb", chunk_size=MIB, window=2) as f:
        while piece := f.read(MIB):  # streamed: a window of 2 ahead, one copy a chunk
            assert piece == data[f.tell() - len(piece) : f.tell()]
        assert f.raw.verified
