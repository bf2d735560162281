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
    "verify_download_tree",
    "verify_object",
    "verify_objects",
    "write_random_file",
    "write_random_tree",
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


def write_random_tree(folder: Path, names: list[str], size_bytes: int) -> dict[str, int]:
    """Write one random file of ``size_bytes`` per name under ``folder``; return their CRC32Cs.

    Args:
        folder: Directory to create (its parents must exist).
        names: Flat file names.
        size_bytes: Size of every file.

    Returns:
        ``{name: crc32c}``.
    """
    folder.mkdir()
    crcs: dict[str, int] = {}
    for name in names:
        crcs[name] = write_random_file(folder / name, size_bytes)
    return crcs


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


def _first(items: list[str], limit: int = 3) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def verify_download_tree(folder: Path, expected: dict[str, tuple[int, int]]) -> None:
    """Check that ``folder`` holds exactly the expected files, each with the object's bytes.

    Args:
        folder: The directory a many-object download case wrote.
        expected: ``{relative name: (size, crc32c)}`` of every object.

    Raises:
        VerificationError: If the directory is missing, a file is missing, extra (a temp
            file or a journal counts) or has the wrong size or CRC32C.
    """
    if not folder.is_dir():
        raise VerificationError(f"wrong bytes: the download produced no directory at {folder}")
    found = {p.relative_to(folder).as_posix(): p for p in folder.rglob("*") if not p.is_dir()}
    missing = sorted(set(expected) - set(found))
    if missing:
        raise VerificationError(
            f"wrong bytes: {len(missing)} of {len(expected)} objects were not downloaded "
            f"({_first(missing)})"
        )
    extra = sorted(set(found) - set(expected))
    if extra:
        raise VerificationError(f"the download left files behind: {_first(extra)}")
    for name, (size, crc) in expected.items():
        actual_size, actual_crc = file_crc32c(found[name])
        if actual_size != size:
            raise VerificationError(
                f"wrong bytes: {name} has {actual_size} bytes, the object has {size}"
            )
        if actual_crc != crc:
            raise VerificationError(
                f"wrong bytes: {name} has crc32c {crc32c_b64(actual_crc)}, "
                f"the object has {crc32c_b64(crc)}"
            )


def verify_objects(
    prefix: str, stored: dict[str, tuple[int, int]], expected: dict[str, tuple[int, int]]
) -> None:
    """Check that the server holds exactly the expected objects under ``prefix``.

    Zero-byte directory markers (``name/``, as pyarrow writes them) are not objects here.

    Args:
        prefix: The upload prefix, ending with ``/``.
        stored: ``{full object name: (size, crc32c)}`` listed under the prefix.
        expected: ``{relative name: (size, crc32c)}`` of every source file.

    Raises:
        VerificationError: If an object is missing, extra, or has the wrong size or CRC32C.
    """
    got = {
        name[len(prefix) :]: value
        for name, value in stored.items()
        if not (name.endswith("/") and value[0] == 0)
    }
    missing = sorted(set(expected) - set(got))
    if missing:
        raise VerificationError(
            f"wrong bytes: {len(missing)} of {len(expected)} files were not uploaded under "
            f"{prefix} ({_first(missing)})"
        )
    extra = sorted(set(got) - set(expected))
    if extra:
        raise VerificationError(f"the upload created unexpected objects: {_first(extra)}")
    for name, (size, crc) in expected.items():
        actual_size, actual_crc = got[name]
        if actual_size != size:
            raise VerificationError(
                f"wrong bytes: object {prefix}{name} has {actual_size} bytes, the source has {size}"
            )
        if actual_crc != crc:
            raise VerificationError(
                f"wrong bytes: object {prefix}{name} has crc32c {crc32c_b64(actual_crc)}, "
                f"the source has {crc32c_b64(crc)}"
            )
