"""CRC32C suite run against every backend (native, google-crc32c, crcmod, python)."""

from __future__ import annotations

import mmap
import os
import pathlib
import random
from collections.abc import Callable

import google_crc32c
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resumable_media import checksums
from resumable_media.checksums import BACKENDS, Backend

NATIVE_REQUIRED = os.environ.get("RESUMABLE_MEDIA_NATIVE", "").strip().lower() == "required"


def _load(name: str) -> Backend:
    try:
        return checksums.backend(name)
    except ImportError as exc:
        if name == "native" and not NATIVE_REQUIRED:
            pytest.skip(f"native extension not built: {exc}")
        raise


@pytest.fixture(params=BACKENDS)
def impl(request: pytest.FixtureRequest) -> Backend:
    return _load(request.param)


def _reference(data: bytes) -> int:
    return int(google_crc32c.value(data))


# RFC 3720, appendix B.4.
RFC3720_VECTORS = [
    (bytes(32), 0x8A9136AA),
    (b"\xff" * 32, 0x62A8AB43),
    (bytes(range(32)), 0x46DD794E),
    (bytes(range(31, -1, -1)), 0x113FDB5C),
    (b"123456789", 0xE3069283),
]


@pytest.mark.parametrize(("data", "expected"), RFC3720_VECTORS)
def test_rfc3720_vectors(impl: Backend, data: bytes, expected: int) -> None:
    assert impl.crc32c(data) == expected


def test_empty_input(impl: Backend) -> None:
    assert impl.crc32c(b"") == 0
    assert impl.crc32c(b"", 0x12345678) == 0x12345678
    assert impl.crc32c(memoryview(b"")) == 0


def test_random_data_matches_google_crc32c(impl: Backend) -> None:
    rng = random.Random(1234)
    size = 4096 if impl.name == "python" else 1 << 20
    for length in (1, 3, 7, 8, 9, 15, 16, 17, 255, 256, 257, 1023, 4095, size - 1, size + 5):
        data = rng.randbytes(length)
        assert impl.crc32c(data) == _reference(data), length


def test_all_odd_lengths_and_types(impl: Backend) -> None:
    data = random.Random(7).randbytes(300)
    for length in range(1, 300, 2):
        expected = _reference(data[:length])
        assert impl.crc32c(data[:length]) == expected
        assert impl.crc32c(bytearray(data[:length])) == expected


def test_unaligned_memoryview_slices(impl: Backend) -> None:
    data = random.Random(11).randbytes(70_000)
    view = memoryview(bytearray(data))
    for start in range(0, 17):
        for stop in (start + 1, start + 63, start + 4097, len(data) - start):
            assert impl.crc32c(view[start:stop]) == _reference(data[start:stop]), (start, stop)


def test_mmap_input(impl: Backend, tmp_path: pathlib.Path) -> None:
    data = random.Random(5).randbytes(3 * mmap.PAGESIZE + 123)
    path = tmp_path / "blob"
    path.write_bytes(data)
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        assert impl.crc32c(m) == _reference(data)
        view = memoryview(m)
        try:
            assert impl.crc32c(view[1:-1]) == _reference(data[1:-1])
        finally:
            view.release()


def test_incremental_equals_one_shot(impl: Backend) -> None:
    data = random.Random(3).randbytes(10_000)
    for step in (1, 7, 64, 1000, 4099):
        crc = 0
        for i in range(0, len(data), step):
            crc = impl.crc32c(data[i : i + step], crc)
        assert crc == _reference(data), step


def test_multibyte_item_buffers(impl: Backend) -> None:
    import array

    arr = array.array("I", range(1000))
    assert impl.crc32c(arr) == _reference(arr.tobytes())


@settings(max_examples=60, deadline=None)
@given(a=st.binary(max_size=300), b=st.binary(max_size=300))
def test_combine_property(a: bytes, b: bytes) -> None:
    for name in checksums.available_backends():
        impl = checksums.backend(name)
        combined = impl.crc32c_combine(impl.crc32c(a), impl.crc32c(b), len(b))
        assert combined == _reference(a + b), name


def test_combine_empty_parts(impl: Backend) -> None:
    crc = impl.crc32c(b"abc")
    assert impl.crc32c_combine(crc, 0, 0) == crc
    assert impl.crc32c_combine(0, crc, 3) == crc


# --- combine beyond 4 GiB against an independent slow method ------------------


def _gf2_matrix_times(mat: list[int], vec: int) -> int:
    total = 0
    i = 0
    while vec:
        if vec & 1:
            total ^= mat[i]
        vec >>= 1
        i += 1
    return total


def _gf2_matrix_square(mat: list[int]) -> list[int]:
    return [_gf2_matrix_times(mat, mat[n]) for n in range(32)]


def _matrix_combine(crc1: int, crc2: int, len2: int) -> int:
    """zlib <= 1.2.11-style combine with 32x32 GF(2) matrices (independent of the library)."""
    if len2 == 0:
        return crc1
    odd = [0x82F63B78] + [1 << n for n in range(31)]  # operator for one zero bit
    even = _gf2_matrix_square(odd)  # two zero bits
    odd = _gf2_matrix_square(even)  # four zero bits
    while True:
        even = _gf2_matrix_square(odd)
        if len2 & 1:
            crc1 = _gf2_matrix_times(even, crc1)
        len2 >>= 1
        if not len2:
            break
        odd = _gf2_matrix_square(even)
        if len2 & 1:
            crc1 = _gf2_matrix_times(odd, crc1)
        len2 >>= 1
        if not len2:
            break
    return crc1 ^ crc2


def test_matrix_reference_is_sound() -> None:
    a, b = b"hello, ", b"world" * 99
    assert _matrix_combine(_reference(a), _reference(b), len(b)) == _reference(a + b)


@pytest.mark.parametrize(
    "length",
    [2**32 - 1, 2**32, 2**32 + 1, 5 * 2**30 + 12345, 2**40 + 7, 2**47 - 3, 2**62 + 1, 2**63 - 1],
)
def test_combine_huge_lengths(impl: Backend, length: int) -> None:
    rng = random.Random(length)
    for _ in range(3):
        a, b = rng.getrandbits(32), rng.getrandbits(32)
        assert impl.crc32c_combine(a, b, length) == _matrix_combine(a, b, length)


def test_combine_many_matches_concatenation() -> None:
    rng = random.Random(9)
    chunks = [rng.randbytes(rng.randrange(0, 3000)) for _ in range(50)]
    parts = [(checksums.crc32c(c), len(c)) for c in chunks]
    assert checksums.crc32c_combine_many(parts) == _reference(b"".join(chunks))
    assert checksums.crc32c_combine_many([]) == 0


# --- bad input ------------------------------------------------------------------

BAD_BUFFERS: list[tuple[object, str]] = [
    (12345, "int"),
    ("text", "str"),
    (None, "NoneType"),
    ([1, 2, 3], "list"),
]


@pytest.mark.parametrize(("bad", "type_name"), BAD_BUFFERS)
def test_non_buffer_is_type_error_naming_type(impl: Backend, bad: object, type_name: str) -> None:
    with pytest.raises(TypeError, match=type_name):
        impl.crc32c(bad)  # type: ignore[arg-type]


def test_non_contiguous_buffer_is_clear_error(impl: Backend) -> None:
    view = memoryview(bytearray(range(100)))[::2]
    with pytest.raises(BufferError, match="contiguous"):
        impl.crc32c(view)


def test_negative_length_is_value_error(impl: Backend) -> None:
    with pytest.raises(ValueError, match="length"):
        impl.crc32c_combine(1, 2, -1)


@pytest.mark.parametrize("bad_value", [-1, 2**32, 2**64])
def test_out_of_range_crc_is_value_error(impl: Backend, bad_value: int) -> None:
    with pytest.raises(ValueError):
        impl.crc32c(b"x", bad_value)
    with pytest.raises(ValueError):
        impl.crc32c_combine(bad_value, 0, 1)
    with pytest.raises(ValueError):
        impl.crc32c_combine(0, bad_value, 1)


def test_live_backend_matches_implementation() -> None:
    live: Callable[..., int] = checksums.crc32c
    assert checksums.implementation in BACKENDS
    assert live is checksums.backend(checksums.implementation).crc32c
