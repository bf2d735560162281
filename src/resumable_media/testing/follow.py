"""Background hashing of a resumable upload's committed bytes.

Invariants: the follower only ever reads the file below the committed size it was last given,
so a request that is rolled back (the file truncated to the committed size) never affects the
hashes; at most one follower thread runs per session and it exits once caught up; ``result()``
returns only when every committed byte has been hashed. Hashing off the request path lets the
server answer a chunk (308) as soon as it is on disk, while MD5 -- the slowest step -- keeps
running between chunks.
"""

from __future__ import annotations

import pathlib
import threading

from .store import Hashes

READ_BLOCK = 4 << 20


class FollowHasher:
    """Hashes the prefix ``[0, committed)`` of a growing file in a background thread."""

    def __init__(self, path: pathlib.Path, *, with_md5: bool = True) -> None:
        self.path = path
        self._hashes = Hashes() if with_md5 else Hashes(md5=None)
        self._target = 0
        self._cond = threading.Condition()
        self._running = False
        self._error: BaseException | None = None

    def advance(self, committed: int) -> None:
        """Record that the file's first ``committed`` bytes are final; hash them soon."""
        with self._cond:
            self._target = committed
            if not self._running and self._hashes.size < committed:
                self._running = True
                threading.Thread(target=self._run, name="upload-hasher", daemon=True).start()

    def _run(self) -> None:
        try:
            with open(self.path, "rb", buffering=0) as f:
                while True:
                    with self._cond:
                        target = self._target
                        if self._hashes.size >= target or self._error is not None:
                            self._running = False
                            self._cond.notify_all()
                            return
                    f.seek(self._hashes.size)
                    while self._hashes.size < target:
                        block = f.read(min(READ_BLOCK, target - self._hashes.size))
                        if not block:
                            raise OSError(f"{self.path} is shorter than its committed size")
                        self._hashes.update(block)
        except BaseException as exc:
            with self._cond:
                self._error = exc
                self._running = False
                self._cond.notify_all()

    def result(self) -> Hashes:
        """Wait until every committed byte is hashed; returns the hashes.

        Raises:
            OSError: the follower could not read the file.
        """
        with self._cond:
            while self._running:
                self._cond.wait()
            if self._error is not None:
                raise self._error
            return self._hashes
