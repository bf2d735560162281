"""Pure-Python CRC-32C and the GF(2) arithmetic behind ``crc32c_combine``.

Invariants:
- Polynomials are 32-bit ints in reflected (LSB-first) order: bit 31 is x^0.
- Combining multiplies by x^(8n) mod P with square-and-multiply over a table of
  x^(2^k) mod P: O(log n) multiplies, never hashing zeros, no 32x32 matrices.
- Argument checks live here so every backend rejects bad input identically:
  a non-buffer is a ``TypeError`` naming its type, a non-contiguous buffer a
  ``BufferError``, a negative length or out-of-range CRC a ``ValueError``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing_extensions import Buffer

MASK32 = 0xFFFFFFFF
# CRC-32C (Castagnoli) polynomial 0x1EDC6F41, bit-reversed.
POLY_REFLECTED = 0x82F63B78
_X0 = 1 << 31  # the polynomial "1" in reflected order
_CHUNK = 1 << 16


def as_bytes_view(data: Buffer) -> memoryview:
    """Return a flat unsigned-byte view of ``data`` without copying it.

    Raises:
        TypeError: ``data`` does not support the buffer protocol.
        BufferError: ``data`` is not C-contiguous.
    """
    try:
        view = memoryview(data)
    except TypeError:
        raise TypeError(
            "crc32c() argument must be a bytes-like object (bytes, bytearray, "
            f"memoryview, mmap), not {type(data).__name__!r}"
        ) from None
    if not view.c_contiguous:
        raise BufferError(
            "crc32c() needs a C-contiguous buffer; copy non-contiguous data first "
            "(e.g. bytes(view))"
        )
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view


def check_crc(value: int, what: str) -> int:
    """Return ``value`` if it is a 32-bit CRC.

    Raises:
        TypeError: not an int.
        ValueError: outside [0, 2**32).
    """
    if not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__!r}")
    if not 0 <= value <= MASK32:
        raise ValueError(f"{what} must be a 32-bit unsigned CRC, got {value}")
    return value


def check_length(length: int) -> int:
    """Return ``length`` if it is a byte count.

    Raises:
        TypeError: not an int.
        ValueError: negative, or not below 2**64.
    """
    if not isinstance(length, int):
        raise TypeError(f"length_b must be an int, not {type(length).__name__!r}")
    if not 0 <= length < 1 << 64:
        raise ValueError(f"length_b must be a byte count (0 <= length < 2**64), got {length}")
    return length


def _make_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ POLY_REFLECTED if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_TABLE = _make_table()


def multmodp(a: int, b: int) -> int:
    """Return a(x) * b(x) mod P(x) for reflected 32-bit polynomials."""
    product = 0
    bit = _X0
    while a:
        if a & bit:
            product ^= b
            a ^= bit
        bit >>= 1
        b = (b >> 1) ^ POLY_REFLECTED if b & 1 else b >> 1
    return product


def _make_x2n_table() -> tuple[int, ...]:
    # Entry k is x^(2^k) mod P.  67 entries cover 8 * (2**64 - 1) bits, so no
    # assumption about the multiplicative order of x is needed.
    table = [_X0 >> 1]  # x^1
    for _ in range(66):
        table.append(multmodp(table[-1], table[-1]))
    return tuple(table)


_X2N = _make_x2n_table()


def x8nmodp(length: int) -> int:
    """Return x^(8 * length) mod P: the operator that shifts a CRC past ``length`` bytes."""
    result = _X0
    k = 3  # 8 * length = length * 2^3
    while length:
        if length & 1:
            result = multmodp(_X2N[k], result)
        length >>= 1
        k += 1
    return result


def crc32c(data: Buffer, value: int = 0) -> int:
    """Return the CRC-32C of ``data``, continuing from ``value`` (table-driven, slow)."""
    view = as_bytes_view(data)
    crc = check_crc(value, "value") ^ MASK32
    table = _TABLE
    for start in range(0, len(view), _CHUNK):
        for byte in view[start : start + _CHUNK].tobytes():
            crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ MASK32


def crc32c_combine(crc_a: int, crc_b: int, length_b: int) -> int:
    """Return the CRC of A+B given CRC(A), CRC(B) and len(B), in O(log len(B))."""
    check_crc(crc_a, "crc_a")
    check_crc(crc_b, "crc_b")
    if check_length(length_b) == 0:
        return crc_a
    return multmodp(x8nmodp(length_b), crc_a) ^ crc_b
