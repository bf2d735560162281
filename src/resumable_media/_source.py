"""The identity of an upload's source file, so a file changed mid-upload never becomes an object.

Invariants:
- An identity is (device, inode, size, mtime_ns, ctime_ns) of a regular file.  Any write,
  truncation, growth, replacement (rename over it) or metadata change moves at least one of
  them; nothing short of a deliberate ``utime`` after a same-size rewrite within one
  timestamp tick hides a change, and ctime cannot be set back by ``utime``.
- Uploads take the identity before the first byte is read and check it again just before
  the request that would create the object (the final resumable chunk, the XML
  multipart completion, a single-request upload's send); on a mismatch they cancel what
  the server holds and raise :class:`SourceChanged`, so no object claims to be the file.
- Streams that are not regular files (pipes, sockets, terminals) have no identity: what
  was read is what is uploaded.
"""

from __future__ import annotations

import dataclasses
import os
import stat
from typing import Any

__all__ = ["SourceChanged", "SourceIdentity", "check_unchanged", "identity_of"]


class SourceChanged(Exception):
    """The source file changed while it was being uploaded; nothing was written.

    Args:
        source: The file (as the caller named it).
        destination: Where it was going (a URL or object name), when known.
        detail: What changed ("its size went from 10 to 12 bytes", …).

    Attributes:
        source: As given.
        destination: As given.
    """

    def __init__(self, source: str, destination: str | None, detail: str) -> None:
        self.source = source
        self.destination = destination
        self.detail = detail
        where = f" to {destination}" if destination else ""
        super().__init__(
            f"{source} changed while it was being uploaded ({detail}); nothing was "
            f"written{where}. Upload it again once it is no longer being written."
        )


@dataclasses.dataclass(frozen=True, slots=True)
class SourceIdentity:
    """What must stay the same about a source file for its upload to be the file."""

    device: int
    inode: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def from_stat(cls, info: os.stat_result) -> SourceIdentity:
        """The identity of a ``stat`` result."""
        return cls(info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)

    def difference(self, other: SourceIdentity) -> str | None:
        """What changed from ``self`` to ``other``, in words, or None."""
        if (self.device, self.inode) != (other.device, other.inode):
            return "it was replaced by another file"
        if self.size != other.size:
            return f"its size went from {self.size} to {other.size} bytes"
        if self.mtime_ns != other.mtime_ns:
            return "it was modified"
        if self.ctime_ns != other.ctime_ns:
            return "its status changed (ctime)"
        return None


def identity_of(source: Any) -> SourceIdentity | None:
    """The identity of a path or of an open stream's regular file, else None.

    A stream is judged by ``fstat`` of its descriptor (the file it reads, even if renamed);
    a path by ``stat`` (following a symlink, as opening it does).
    """
    try:
        if isinstance(source, (str, bytes, os.PathLike)):
            info = os.stat(source)
        else:
            fileno = getattr(source, "fileno", None)
            if fileno is None:
                return None
            info = os.fstat(fileno())
    except (OSError, ValueError, AttributeError, TypeError):  # io.UnsupportedOperation too
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    return SourceIdentity.from_stat(info)


def check_unchanged(
    source: Any, before: SourceIdentity | None, *, label: str, destination: str | None
) -> None:
    """Raise :class:`SourceChanged` when ``source`` no longer has identity ``before``.

    Args:
        source: The source path (``stat`` again: a replacement by rename is seen too) or
            its open stream (``fstat``).
        before: The identity taken when the upload began (None: nothing to check).
        label: How to name the source in the message.
        destination: Where it was going, for the message.
    """
    if before is None:
        return
    now = identity_of(source)
    if now is None:
        raise SourceChanged(label, destination, "it was removed")
    detail = before.difference(now)
    if detail is not None:
        raise SourceChanged(label, destination, detail)
