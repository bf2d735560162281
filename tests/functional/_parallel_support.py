"""Helpers shared by the accelerator's functional tests."""

from __future__ import annotations

import io
import os
import time
from typing import Any


def logged_requests(server: Any) -> list[Any]:
    """The server's request log once it stops growing (it logs just after answering)."""
    previous = -1
    deadline = time.monotonic() + 3
    records = server.requests
    while len(records) != previous and time.monotonic() < deadline:
        previous = len(records)
        time.sleep(0.1)
        records = server.requests
    return records


def resumable_url(server: Any, bucket: str) -> str:
    """The JSON API URL that starts a resumable upload into ``bucket``."""
    return f"{server.endpoint}/upload/storage/v1/b/{bucket}/o?uploadType=resumable"


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
