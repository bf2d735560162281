"""The resume journal: what a download has already written into its temporary file.

Invariants:
- The journal is replaced atomically (write a sibling, fsync, ``os.replace``), so a reader
  sees either the previous record or the new one, never a torn file.
- A chunk's ``done`` count is only recorded after those bytes were written into the shared
  mapping of the temporary file (the page cache), so after a process kill (kill -9) every
  recorded byte is present.  A machine crash may lose page-cache data; the whole-object
  CRC32C check then fails, and the download restarts from scratch once.
- A journal that cannot be parsed, or that describes another download, is ignored.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os

__all__ = ["Journal"]

_LOGGER = logging.getLogger(__name__)

_VERSION = 1


@dataclasses.dataclass(slots=True, kw_only=True)
class Journal:
    """The resumable state of one ranged download.

    Attributes:
        media_url: The media URL as given by the caller.
        generation: The object generation the bytes belong to (None if the server sent none).
        size: The object size.
        start: First object byte of the download.
        end: Last object byte of the download (inclusive).
        chunk_size: The chunk size of the layout.
        crc32c: The object's base64 CRC32C from ``x-goog-hash``, if any.
        md5: The object's base64 MD5 from ``x-goog-hash``, if any.
        chunks: Per chunk ``[done_bytes, crc32c_of_those_bytes]``.
    """

    media_url: str
    generation: int | None
    size: int
    start: int
    end: int
    chunk_size: int
    crc32c: str | None
    md5: str | None
    chunks: list[list[int]]

    def matches(self, media_url: str, start: int, end: int | None, chunk_size: int) -> bool:
        """Whether this journal describes the download being asked for.

        Args:
            media_url: The media URL.
            start: First byte asked for.
            end: Last byte asked for (None: to the end of the object).
            chunk_size: The chunk size asked for.

        Returns:
            True if the layout is the same, so the temporary file can be reused.
        """
        wanted_end = self.size - 1 if end is None else min(end, self.size - 1)
        return (
            self.media_url == media_url
            and self.start == start
            and self.end == wanted_end
            and self.chunk_size == chunk_size
        )

    def save(self, path: str) -> None:
        """Write the journal atomically.

        Args:
            path: Where the journal lives.
        """
        record = dataclasses.asdict(self)
        record["version"] = _VERSION
        temp = journal_temp(path)
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, json.dumps(record, separators=(",", ":")).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)

    @classmethod
    def load(cls, path: str) -> Journal | None:
        """Read a journal, or return None when there is none or it is unusable.

        Args:
            path: Where the journal lives.

        Returns:
            The journal, or None.
        """
        try:
            with open(path, "rb") as handle:
                record = json.loads(handle.read())
            if record.pop("version", None) != _VERSION:
                return None
            journal = cls(**record)
            if not all(
                isinstance(pair, list) and len(pair) == 2 and all(isinstance(v, int) for v in pair)
                for pair in journal.chunks
            ):
                return None
            return journal
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError) as exc:
            _LOGGER.info("ignoring unusable resume journal %s: %s", path, exc)
            with contextlib.suppress(OSError):
                os.unlink(path)
            return None


def journal_temp(path: str) -> str:
    """The temporary file a journal at ``path`` is written to before its atomic rename.

    One fixed name (not per process): the download owning the destination holds its lock,
    so there is one writer, and a crash between write and rename leaves a file the next run
    overwrites or removes instead of litter.
    """
    return f"{path}.tmp"
