"""CRC32C of local files, computed natively and remembered by (path, size, mtime_ns, inode).

Invariants:
- A cached value is used only when all four of path, size, mtime (ns) and inode are
  unchanged; any change means the file is read and hashed again.
- The cache is an SQLite file in the command's state directory, so its size on disk grows
  with the files seen but the process's memory does not; writes are batched (one commit per
  ``BATCH`` records and at close).  A cache that cannot be opened or written only costs
  re-hashing: it never fails a sync.
- Hashing maps the file and runs the native CRC32C over it in one call (GIL released).
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import os
import pathlib
import sqlite3

from resumable_media import checksums

__all__ = ["ChecksumCache", "file_crc32c"]

_LOGGER = logging.getLogger(__name__)
BATCH = 500
"""int: Records written per commit."""


def file_crc32c(path: str | os.PathLike[str]) -> str:
    """The base64 CRC32C of a local file's bytes, as Cloud Storage reports it.

    Raises:
        OSError: When the file cannot be read.
    """
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size == 0:
            return checksums.crc32c_to_b64(checksums.crc32c(b""))
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as view:
            return checksums.crc32c_to_b64(checksums.crc32c(view))


class ChecksumCache:
    """Remembered CRC32C values of local files.

    Args:
        path: The SQLite file (created, with its directory, when missing); None keeps
            nothing between runs.
    """

    def __init__(self, path: pathlib.Path | None) -> None:
        self.path = path
        self.hashed = 0
        """int: Files read and hashed by :meth:`crc32c` (cache misses)."""
        self._pending = 0
        self._db: sqlite3.Connection | None = None
        if path is not None:
            try:
                path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                self._db = sqlite3.connect(str(path), timeout=30)
                self._db.execute(
                    "CREATE TABLE IF NOT EXISTS crc32c (path TEXT PRIMARY KEY, size INTEGER, "
                    "mtime_ns INTEGER, inode INTEGER, crc32c TEXT)"
                )
            except sqlite3.Error as exc:
                _LOGGER.warning("checksum cache %s unusable (%s); hashing every file", path, exc)
                self._db = None

    def lookup(self, path: str, size: int, mtime_ns: int, inode: int) -> str | None:
        """The cached CRC32C of ``path`` if its identity is unchanged, else None."""
        if self._db is None:
            return None
        try:
            row = self._db.execute(
                "SELECT size, mtime_ns, inode, crc32c FROM crc32c WHERE path = ?", (path,)
            ).fetchone()
        except sqlite3.Error:
            return None
        if row is None or tuple(row[:3]) != (size, mtime_ns, inode):
            return None
        return str(row[3])

    def store(self, path: str, size: int, mtime_ns: int, inode: int, crc32c: str) -> None:
        """Remember ``crc32c`` for this identity of ``path``."""
        if self._db is None:
            return
        try:
            self._db.execute(
                "INSERT OR REPLACE INTO crc32c VALUES (?, ?, ?, ?, ?)",
                (path, size, mtime_ns, inode, crc32c),
            )
            self._pending += 1
            if self._pending >= BATCH:
                self._db.commit()
                self._pending = 0
        except sqlite3.Error as exc:
            _LOGGER.warning("cannot update the checksum cache: %s", exc)

    def crc32c(self, path: str, size: int, mtime_ns: int, inode: int) -> str:
        """The CRC32C of ``path``: cached when unchanged, else hashed (and remembered).

        Raises:
            OSError: When the file must be hashed and cannot be read.
        """
        cached = self.lookup(path, size, mtime_ns, inode)
        if cached is not None:
            return cached
        value = file_crc32c(path)
        self.hashed += 1
        info = os.stat(path)
        if (info.st_size, info.st_mtime_ns, info.st_ino) == (size, mtime_ns, inode):
            self.store(path, size, mtime_ns, inode, value)
        return value

    def close(self) -> None:
        """Commit and close."""
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.commit()
                self._db.close()
            self._db = None
