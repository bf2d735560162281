# Test data and independent verification for the benchmark.
#
# Invariants: verification never trusts the client under test -- it re-reads the
# destination file (or the server's stored object) and hashes it with
# google-crc32c, a library none of the measured resumable-media code paths use
# for this purpose; a mismatch always raises VerificationError naming the case's
# file or object, the expected and the actual values.
"""Random test data, CRC32C of files, and byte-exactness checks for benchmark outputs."""

from __future__ import annotations

import base64
import os
import struct
from pathlib import Path
from typing import Any

import google_crc32c

__all__ = [
    "VerificationError",
    "crc32c_b64",
    "file_crc32c",
    "verify_download",
    "verify_object",
    "write_random_file",
]

_BLOCK = 8 << 20


class VerificationError(Exception):
    """A benchmark case produced bytes that differ from the object's (size or CRC32C)."""


def _extend(crc: int, data: bytes) -> int:
    return int(google_crc32c.extend(crc, data))


def write_random_file(path: Path, size_bytes: int) -> int:
    """Write ``size_bytes`` of random data to ``path`` and return its CRC32C.

    Args:
        path: Destination file (created or truncated).
        size_bytes: How many bytes to write.

    Returns:
        The CRC32C (Castagnoli) of the written bytes, as an int.
    """
    crc = 0
    remaining = size_bytes
    with open(path, "wb") as out:
        while remaining:
            block = os.urandom(min(_BLOCK, remaining))
            out.write(block)
            crc = _extend(crc, block)
            remaining -= len(block)
    return crc


def file_crc32c(path: Path) -> tuple[int, int]:
    """Return ``(size, crc32c)`` of the file at ``path``, read in 8 MiB blocks.

    Raises:
        OSError: If the file cannot be read.
    """
    crc = 0
    size = 0
    with open(path, "rb", buffering=0) as stream:
        while block := stream.read(_BLOCK):
            crc = _extend(crc, block)
            size += len(block)
    return size, crc


def crc32c_b64(crc: int) -> str:
    """Return the CRC32C as GCS shows it: 4 big-endian bytes, base64."""
    return base64.b64encode(struct.pack(">I", crc)).decode("ascii")


def verify_download(path: Path, size_bytes: int, crc: int) -> None:
    """Check that the download at ``path`` holds exactly the object's bytes.

    Args:
        path: The file a download case wrote.
        size_bytes: The object's size.
        crc: The object's CRC32C.

    Raises:
        VerificationError: If the file is missing, or its size or CRC32C differ.
    """
    if not path.is_file():
        raise VerificationError(f"wrong bytes: the download produced no file at {path}")
    actual_size, actual_crc = file_crc32c(path)
    if actual_size != size_bytes:
        raise VerificationError(
            f"wrong bytes: {path.name} has {actual_size} bytes, the object has {size_bytes}"
        )
    if actual_crc != crc:
        raise VerificationError(
            f"wrong bytes: {path.name} has crc32c {crc32c_b64(actual_crc)}, "
            f"the object has {crc32c_b64(crc)}"
        )


def verify_object(name: str, stored: dict[str, Any] | None, size_bytes: int, crc: int) -> None:
    """Check that an uploaded object holds exactly the source's bytes.

    Args:
        name: The object name (for messages).
        stored: ``{"size": int, "crc32c": int}`` of the stored object, or None if it does
            not exist.
        size_bytes: The source's size.
        crc: The source's CRC32C.

    Raises:
        VerificationError: If the object is missing, or its size or CRC32C differ.
    """
    if stored is None:
        raise VerificationError(f"wrong bytes: the upload left no object {name!r} on the server")
    if stored["size"] != size_bytes:
        raise VerificationError(
            f"wrong bytes: object {name!r} has {stored['size']} bytes, the source has {size_bytes}"
        )
    if stored["crc32c"] != crc:
        raise VerificationError(
            f"wrong bytes: object {name!r} has crc32c {crc32c_b64(stored['crc32c'])}, "
            f"the source has {crc32c_b64(crc)}"
        )
