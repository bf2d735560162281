"""Work that follows a download's completed chunks in order: MD5, and early write-back.

Invariants: both helpers only ever read bytes of chunks already reported complete (so
they never see a half-written chunk), read through ``os.preadv`` into one reused 1 MiB
buffer (memory stays constant whatever the object size), and run on their own thread
so the network threads never wait for them.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading

from resumable_media.parallel.plan import Chunk

__all__ = ["BackgroundSync", "OrderedMd5"]

_LOGGER = logging.getLogger(__name__)

_BUFFER = 2**20


class OrderedMd5:
    """MD5 of the temporary file, computed chunk by chunk in object order as chunks complete.

    Args:
        fd: The temporary file (read with ``preadv``; the offset is never moved).
        chunks: The layout.
    """

    def __init__(self, fd: int, chunks: list[Chunk]) -> None:
        self._fd = fd
        self._chunks = chunks
        self._complete = [False] * len(chunks)
        self._condition = threading.Condition()
        self._cancelled = False
        self._error: BaseException | None = None
        self._md5 = hashlib.md5()
        self._thread = threading.Thread(target=self._run, name="resumable-media-md5", daemon=True)
        self._thread.start()

    def completed(self, index: int) -> None:
        """Mark chunk ``index`` as fully written."""
        with self._condition:
            self._complete[index] = True
            self._condition.notify()

    def cancel(self) -> None:
        """Stop hashing (the download failed)."""
        with self._condition:
            self._cancelled = True
            self._condition.notify()
        self._thread.join()

    def result(self) -> bytes:
        """Wait for every chunk to be hashed and return the MD5 digest.

        Raises:
            OSError: If reading the temporary file failed.
        """
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._md5.digest()

    def _run(self) -> None:
        buffer = bytearray(_BUFFER)
        view = memoryview(buffer)
        try:
            for index, chunk in enumerate(self._chunks):
                with self._condition:
                    while not self._complete[index] and not self._cancelled:
                        self._condition.wait()
                    if self._cancelled:
                        return
                position = chunk.offset
                end = chunk.offset + chunk.length
                while position < end:
                    want = min(_BUFFER, end - position)
                    count = os.preadv(self._fd, [view[:want]], position)
                    if count <= 0:
                        raise OSError(f"short read of the temporary file at {position}")
                    self._md5.update(view[:count])
                    position += count
        except BaseException as exc:  # surfaced by result()
            self._error = exc


class BackgroundSync:
    """Flushes the temporary file to disk while the download runs, so the final fsync is short.

    Args:
        fd: The temporary file.
        threshold: Bytes completed since the last flush that trigger the next one.
    """

    def __init__(self, fd: int, threshold: int = 64 * 2**20) -> None:
        self._fd = fd
        self._threshold = threshold
        self._pending = 0
        self._stopped = False
        self._condition = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="resumable-media-sync", daemon=True)
        self._thread.start()

    def completed(self, length: int) -> None:
        """Account for ``length`` more bytes written."""
        with self._condition:
            self._pending += length
            if self._pending >= self._threshold:
                self._condition.notify()

    def stop(self) -> None:
        """Stop flushing (the final fsync is the caller's)."""
        with self._condition:
            self._stopped = True
            self._condition.notify()
        self._thread.join()

    def _run(self) -> None:
        while True:
            with self._condition:
                while self._pending < self._threshold and not self._stopped:
                    self._condition.wait()
                if self._stopped:
                    return
                self._pending = 0
            try:
                os.fdatasync(self._fd)
            except OSError as exc:  # the final fsync reports real failures
                _LOGGER.debug("background fdatasync failed: %s", exc)
                return
