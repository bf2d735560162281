"""Native extension specifics: kernels, GIL release, argument handling, 64-bit lengths."""

from __future__ import annotations

import mmap
import os
import random
import threading
import time
from collections.abc import Iterator
from types import ModuleType

import google_crc32c
import pytest

from resumable_media import checksums

NATIVE_REQUIRED = os.environ.get("RESUMABLE_MEDIA_NATIVE", "").strip().lower() == "required"


@pytest.fixture(scope="module")
def native() -> ModuleType:
    try:
        from resumable_media import _crc32c
    except ImportError as exc:
        if NATIVE_REQUIRED:
            raise
        pytest.skip(f"native extension not built: {exc}")
    return _crc32c


def _zero_mapping(size: int) -> mmap.mmap:
    """A read-only private anonymous mapping: reads hit the kernel's zero page,
    so even GiB-sized buffers use no real memory and no commit charge (a shared
    one would allocate pages)."""
    m = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ)
    if hasattr(mmap, "MADV_HUGEPAGE"):
        m.madvise(mmap.MADV_HUGEPAGE)  # huge zero page: far fewer faults
    return m


def test_native_required_means_native_is_live() -> None:
    if not NATIVE_REQUIRED:
        pytest.skip("RESUMABLE_MEDIA_NATIVE=required is not set")
    assert checksums.implementation == "native"


def test_kernel_attributes(native: ModuleType) -> None:
    assert native.kernel in native.available_kernels
    assert native.available_kernels[-1] == "slice8"
    assert set(native.available_kernels) <= {"sse4.2-3way", "armv8-3way", "slice8"}
    assert native.gil_release_threshold > 0


def test_every_kernel_matches_google_crc32c(native: ModuleType) -> None:
    rng = random.Random(42)
    # Lengths straddle the 3-way round sizes (3 x 256 B, 3 x 64 KiB) and the 8-byte steps.
    long_round = 3 * 65536
    lengths = [0, 1, 7, 8, 9, 767, 768, 769, 100_003, long_round - 1, long_round, long_round + 769]
    data = rng.randbytes(max(lengths) + 16)
    view = memoryview(data)
    for kernel in native.available_kernels:
        for length in lengths:
            for offset in range(9):
                expected = google_crc32c.value(data[offset : offset + length])
                got = native.crc32c_with_kernel(kernel, view[offset : offset + length])
                assert got == expected, (kernel, length, offset)


def test_kernels_continue_from_value(native: ModuleType) -> None:
    data = random.Random(8).randbytes(50_000)
    for kernel in native.available_kernels:
        crc = native.crc32c_with_kernel(kernel, data[:12_345])
        crc = native.crc32c_with_kernel(kernel, data[12_345:], value=crc)
        assert crc == google_crc32c.value(data)


def test_single_buffer_beyond_4gib(native: ModuleType) -> None:
    # A 5 GiB (+ odd bytes) buffer in one call, from an unaligned offset: any
    # 32-bit length truncation would hash ~1 GiB and give a different CRC.
    size = 5 * 2**30 + 12_345
    zeros = bytes(1 << 20)
    expected = 0
    for _ in range((size - 1) >> 20):
        expected = google_crc32c.extend(expected, zeros)
    expected = google_crc32c.extend(expected, bytes((size - 1) & ((1 << 20) - 1)))
    m = _zero_mapping(size)
    view = memoryview(m)
    try:
        assert native.crc32c(view[1:]) == expected
    finally:
        view.release()
        m.close()


def test_unknown_kernel_is_value_error(native: ModuleType) -> None:
    with pytest.raises(ValueError, match="not available"):
        native.crc32c_with_kernel("avx512-magic", b"x")


def test_keyword_arguments(native: ModuleType) -> None:
    crc_a = native.crc32c(data=b"12345")
    assert native.crc32c(b"6789", value=crc_a) == 0xE3069283
    assert native.crc32c_combine(crc_a=crc_a, crc_b=native.crc32c(b"6789"), length_b=4) == (
        0xE3069283
    )
    with pytest.raises(TypeError, match="unexpected keyword"):
        native.crc32c(b"x", crc=1)
    with pytest.raises(TypeError, match="multiple values"):
        native.crc32c(b"x", 0, value=0)
    with pytest.raises(TypeError, match="missing required"):
        native.crc32c_combine(1, 2)
    with pytest.raises(TypeError, match="at most"):
        native.crc32c(b"x", 0, 0)


def test_combine_length_range(native: ModuleType) -> None:
    assert 0 <= native.crc32c_combine(1, 2, 2**64 - 1) < 2**32
    with pytest.raises(ValueError, match="length_b"):
        native.crc32c_combine(1, 2, 2**64)
    with pytest.raises(TypeError, match="float"):
        native.crc32c_combine(1, 2, 1.5)


def test_combine_many_bad_items(native: ModuleType) -> None:
    with pytest.raises(TypeError):
        native.crc32c_combine_many(5)
    with pytest.raises(TypeError, match="pairs"):
        native.crc32c_combine_many([7])
    with pytest.raises(ValueError, match="pairs"):
        native.crc32c_combine_many([(1, 2, 3)])
    with pytest.raises(ValueError, match="length"):
        native.crc32c_combine_many([(1, -2)])
    assert native.crc32c_combine_many(iter([[native.crc32c(b"ab"), 2]])) == native.crc32c(b"ab")


def test_closed_mmap_is_clear_error(native: ModuleType) -> None:
    m = mmap.mmap(-1, 4096)
    m.close()
    with pytest.raises(ValueError, match="closed"):
        native.crc32c(m)


def test_exporter_cannot_be_resized_while_hashing(native: ModuleType) -> None:
    # The buffer export is held for the whole call, so an mmap cannot be closed
    # under the kernel even though the GIL is released.
    m = _zero_mapping(64 << 20)
    started = threading.Event()
    result: list[int] = []

    def hash_it() -> None:
        started.set()
        result.append(native.crc32c_with_kernel("slice8", m))

    worker = threading.Thread(target=hash_it)
    worker.start()
    started.wait()
    closed_early = False
    try:
        m.close()
        closed_early = True  # the hash may already be over on a fast machine
    except BufferError:
        pass
    worker.join()
    if not closed_early:
        m.close()
    assert result == [google_crc32c.value(bytes(64 << 20))]


# --- the GIL is really released ------------------------------------------------


class _Spinner:
    """A Python thread that counts iterations and its longest stall."""

    def __init__(self) -> None:
        self.count = 0
        self.max_gap = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        last = time.perf_counter()
        while not self._stop.is_set():
            now = time.perf_counter()
            self.max_gap = max(self.max_gap, now - last)
            last = now
            self.count += 1

    def __enter__(self) -> _Spinner:
        self._thread.start()
        while self.count < 1000:  # running before the measurement starts
            time.sleep(0.001)
        self.count = 0
        self.max_gap = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture
def zero_mmap(native: ModuleType) -> Iterator[mmap.mmap]:
    # Size the buffer so a slice8 hash takes ~300 ms.
    probe = bytes(8 << 20)
    start = time.perf_counter()
    native.crc32c_with_kernel("slice8", probe)
    rate = len(probe) / max(time.perf_counter() - start, 1e-6)
    size = min(int(rate * 0.3), 1 << 30) // mmap.PAGESIZE * mmap.PAGESIZE
    m = _zero_mapping(max(size, 64 << 20))
    try:
        yield m
    finally:
        m.close()


def _hash_while_spinning(native: ModuleType, buf: mmap.mmap) -> tuple[float, int, float]:
    with _Spinner() as spinner:
        start = time.perf_counter()
        native.crc32c_with_kernel("slice8", buf)
        elapsed = time.perf_counter() - start
        count, max_gap = spinner.count, spinner.max_gap
    return elapsed, count, max_gap


def test_gil_released_while_hashing(native: ModuleType, zero_mmap: mmap.mmap) -> None:
    held_elapsed, held_count, held_gap = 0.0, 0, 0.0
    old = native._set_gil_release_threshold(1 << 62)  # baseline: GIL held throughout
    try:
        held_elapsed, held_count, held_gap = _hash_while_spinning(native, zero_mmap)
    finally:
        native._set_gil_release_threshold(old)
    elapsed, count, max_gap = _hash_while_spinning(native, zero_mmap)

    # Holding the GIL, the other thread is frozen for the whole call ...
    assert held_gap >= 0.8 * held_elapsed, (held_gap, held_elapsed)
    # ... releasing it, the other thread keeps running throughout.
    assert count >= 10_000, count
    assert max_gap < 0.5 * elapsed, (max_gap, elapsed)
    assert count > 3 * held_count, (count, held_count)
