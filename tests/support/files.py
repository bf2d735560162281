"""Local sources with faults: files that fail partway like a bad disk."""

from __future__ import annotations

import io
import os
from typing import Any

__all__ = ["DiesAfter"]


class DiesAfter(io.RawIOBase):
    """A seekable file that fails (like a disk error) once ``limit`` bytes were read."""

    def __init__(self, path: str | os.PathLike[str], limit: int) -> None:
        self._file = open(path, "rb")  # noqa: SIM115 - closed in close()
        self._limit = limit

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def readinto(self, buffer: Any) -> int:
        if self._file.tell() >= self._limit:
            raise OSError(5, "simulated read failure")
        view = memoryview(buffer)[: self._limit - self._file.tell()]
        return self._file.readinto(view)

    def close(self) -> None:
        self._file.close()
        super().close()
