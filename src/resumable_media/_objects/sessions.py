"""Upload sessions kept across runs, so an interrupted ``cp`` upload continues where it stopped.

Invariants:
- One small JSON file per (source file, destination, settings), named by a SHA-256 of them,
  in a private state directory (0700; files 0600): a session URL lets anyone holding it
  write the upload, so it is treated like a credential and never logged.
- The key covers the source's path, size, mtime and ctime (ns) and inode, so a changed or
  replaced file never continues an old session; the final CRC32C check would refuse the
  mix anyway.
- Files are replaced atomically; a missing or unreadable file just means "start afresh".
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import pathlib
import time

__all__ = ["SessionStore"]

_LOGGER = logging.getLogger(__name__)

MAX_AGE_S = 6 * 24 * 3600
"""float: Sessions older than this are not reused (GCS keeps a session for about a week)."""


def state_directory() -> pathlib.Path:
    """Where sessions live: ``$RESUMABLE_MEDIA_STATE_DIR``, else the XDG state directory."""
    explicit = os.environ.get("RESUMABLE_MEDIA_STATE_DIR")
    if explicit:
        return pathlib.Path(explicit)
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    return pathlib.Path(base) / "resumable-media" / "uploads"


class SessionStore:
    """The resumable-upload session of one source file and destination.

    Args:
        source: The local file being uploaded.
        destination: The ``gs://`` URL it goes to.
        settings: Anything else that must match for a session to be reused (upload URL,
            chunk size, checksum).
    """

    def __init__(self, source: pathlib.Path, destination: str, settings: str) -> None:
        stat = source.stat()
        identity = json.dumps(
            [
                str(source.resolve()),
                stat.st_size,
                stat.st_mtime_ns,
                stat.st_ctime_ns,
                stat.st_ino,
                destination,
                settings,
            ]
        )
        self.path = state_directory() / (hashlib.sha256(identity.encode()).hexdigest() + ".json")

    def load(self) -> str | None:
        """The stored session URL, or None (none stored, unreadable or too old)."""
        try:
            record = json.loads(self.path.read_text(encoding="utf-8"))
            url, saved = record["url"], float(record["saved"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not isinstance(url, str) or time.time() - saved > MAX_AGE_S:
            self.forget()
            return None
        return url

    def save(self, url: str) -> None:
        """Remember ``url`` (atomically, privately); failures only cost the ability to resume."""
        temp = self.path.with_suffix(f".{os.getpid()}.tmp")
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump({"url": url, "saved": time.time()}, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, self.path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                temp.unlink()
            _LOGGER.warning("cannot keep the upload session for resuming: %s", exc.strerror)

    def forget(self) -> None:
        """Drop the stored session (the upload finished, or the session is unusable)."""
        with contextlib.suppress(OSError):
            self.path.unlink()
