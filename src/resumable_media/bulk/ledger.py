"""The ledger (``--manifest FILE``): one JSON line per object, and the memory of past runs.

Invariants:
- A record is appended (and flushed) only after its object's outcome is final, so a run
  killed at any moment leaves a ledger whose every complete line is true; a torn last
  line is ignored when the ledger is read back.
- Reading back keeps, per (source, destination), the last record, and only the fields a
  rerun needs to confirm that a recorded copy is still in place (size, CRC32C,
  generation, local mtime); never the error texts of old runs.
- The file is append-only: reruns add lines, so the ledger is also the history; a torn
  last line is ended before the first new record, so it cannot swallow one.
"""

from __future__ import annotations

import json
import logging
import os
import pathlib
from types import TracebackType
from typing import IO, Any

from resumable_media.bulk.jobs import JobResult, Status

__all__ = ["DONE", "Ledger", "LedgerRecord"]

_LOGGER = logging.getLogger(__name__)

DONE = frozenset({Status.COPIED.value, Status.SKIPPED.value})
"""Statuses that mean the destination held the source when the record was written."""

LedgerRecord = tuple[int, "str | None", "int | None", "int | None"]
"""``(size, crc32c, generation, mtime_ns)`` of a done object."""


class Ledger:
    """An append-only JSON-lines manifest of one or more runs.

    Args:
        path: The manifest file (created when missing; earlier records are read back).
        read_only: Only read earlier records (``--dry-run``); :meth:`record` then fails.
    """

    def __init__(self, path: str | os.PathLike[str], *, read_only: bool = False) -> None:
        self.path = pathlib.Path(path)
        self._done: dict[tuple[str, str], LedgerRecord] = {}
        self._load()
        self._out: IO[str] | None = None
        if not read_only:
            self._out = self.path.open("a", encoding="utf-8")
            if self._out.tell() and not self._ends_with_newline():
                self._out.write("\n")  # end a torn line left by a killed run

    def _load(self) -> None:
        try:
            handle = self.path.open(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return
        with handle:
            for line in handle:
                try:
                    record: dict[str, Any] = json.loads(line)
                    key = (str(record["source"]), str(record["destination"]))
                    status = record["status"]
                except (ValueError, KeyError, TypeError):
                    continue  # a torn line from a killed run, or not ours
                if status in DONE:
                    self._done[key] = (
                        int(record.get("size", -1)),
                        record.get("crc32c"),
                        record.get("generation"),
                        record.get("mtime_ns"),
                    )
                else:
                    self._done.pop(key, None)

    def _ends_with_newline(self) -> bool:
        with self.path.open("rb") as handle:
            handle.seek(-1, os.SEEK_END)
            return handle.read(1) == b"\n"

    def lookup(self, source: str, destination: str) -> LedgerRecord | None:
        """The last done record of ``source`` → ``destination``, or None."""
        return self._done.get((source, destination))

    def still_done(
        self,
        source: str,
        destination: str,
        *,
        size: int,
        crc32c: str | None,
        generation: int | None,
        mtime_ns: int | None,
    ) -> bool:
        """True when a done record of this copy matches what a listing shows now.

        The caller passes the current state of the copy: the object's size, CRC32C and
        generation on the Cloud Storage side (the destination of an upload or rewrite, the
        source of a download) and the local file's mtime (None for gs→gs).  Any difference
        (a new generation, an edited local file) means the record is stale.
        """
        record = self.lookup(source, destination)
        if record is None:
            return False
        recorded_size, recorded_crc, recorded_generation, recorded_mtime = record
        return (
            recorded_size == size
            and recorded_crc is not None
            and recorded_crc == crc32c
            and recorded_generation == generation
            and (mtime_ns is None or recorded_mtime == mtime_ns)
        )

    def record(self, result: JobResult) -> None:
        """Append one outcome (flushed at once)."""
        if self._out is None:
            raise ValueError(f"the ledger {self.path} is closed or read-only")
        self._out.write(json.dumps(result.as_record()) + "\n")
        self._out.flush()

    def close(self) -> None:
        """Flush to disk and close."""
        if self._out is not None:
            try:
                self._out.flush()
                os.fsync(self._out.fileno())
            finally:
                self._out.close()
                self._out = None

    def __enter__(self) -> Ledger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
