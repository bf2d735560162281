"""The download sink: a preallocated temporary file beside the destination, mapped per range.

Invariants:
- The destination is only ever touched by one ``os.replace`` of a complete, fsynced
  temporary file; a failed download never leaves a partial or wrong file there.
- The temporary file is ``.<name>.rmpart`` beside the destination ``<name>`` (hidden, and a
  fixed name so a rerun can resume it; see :func:`temp_path_for`), created with mode 0600
  and locked with ``flock`` for as long as a download owns it,
  so two downloads to the same destination cannot interleave.
- ``map_range`` maps only the requested range (page-aligned), so memory held by a worker is
  bounded by its chunk, never by the object.
- A stream or buffer destination (:class:`StreamSink`) never gets a temporary file: chunks
  are fetched ahead by threads of this process and written in order (write-behind), so at
  most ``window x chunk_size`` bytes are held (``window`` = ``max(4, threads)``); a
  buffer or seekable stream is thus written in place, a pipe or socket sequentially.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import logging
import mmap
import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from resumable_media.parallel.journal import journal_temp

if TYPE_CHECKING:
    from resumable_media.parallel.plan import TransferResult

__all__ = ["TEMP_SUFFIX", "StreamSink", "TempSink", "is_path", "map_range", "temp_path_for"]

_LOGGER = logging.getLogger(__name__)

TEMP_SUFFIX = ".rmpart"
"""str: Suffix of the temporary file written beside the destination."""

_NAME_MAX = 255


def temp_path_for(destination: str | os.PathLike[str]) -> str:
    """The accelerator's temporary file for ``destination``: ``.<name>.rmpart`` beside it.

    The leading dot hides it from ``ls`` and from tree copies' globs; a name too long for
    the file system with the prefix and suffix is shortened, with a digest of the full name
    so that two destinations never share a temporary file.  Its resume journal is this
    path plus ``.journal``.
    """
    head, tail = os.path.split(os.path.abspath(os.fspath(destination)))
    name = f".{tail}{TEMP_SUFFIX}"
    if len(os.fsencode(name + ".journal.tmp")) > _NAME_MAX:
        digest = hashlib.sha256(os.fsencode(tail)).hexdigest()[:16]
        keep = tail.encode("utf-8", "surrogateescape")[:180].decode("utf-8", "ignore")
        name = f".{keep}.{digest}{TEMP_SUFFIX}"
    return os.path.join(head, name)


@contextlib.contextmanager
def map_range(
    path: str, offset: int, length: int, *, writable: bool = True
) -> Iterator[memoryview]:
    """Map ``length`` bytes of ``path`` starting at ``offset``.

    Args:
        path: The file (already at least ``offset + length`` bytes long).
        offset: First byte to map (any value; alignment is handled here).
        length: Bytes to map (positive).
        writable: Map shared read-write (True) or read-only.

    Yields:
        A memoryview of exactly the requested bytes, valid until the block exits.
    """
    aligned = offset - offset % mmap.ALLOCATIONGRANULARITY
    delta = offset - aligned
    flags = os.O_RDWR if writable else os.O_RDONLY
    fd = os.open(path, flags | os.O_CLOEXEC)
    try:
        access = mmap.ACCESS_WRITE if writable else mmap.ACCESS_READ
        mapping = mmap.mmap(fd, delta + length, access=access, offset=aligned)
    finally:
        os.close(fd)
    view = memoryview(mapping)[delta : delta + length]
    try:
        yield view
    finally:
        view.release()
        try:
            mapping.close()
        except BufferError:
            # A slice still referenced from a traceback frame; the mapping closes
            # when the garbage collector drops it.
            _LOGGER.debug("mapping of %s left to the garbage collector", path)


class TempSink:
    """The temporary file a download writes into, then renames onto the destination.

    Args:
        destination: The final path of the download.
    """

    def __init__(self, destination: str | os.PathLike[str]) -> None:
        self.destination = os.path.abspath(os.fspath(destination))
        self.temp_path = temp_path_for(self.destination)
        self.journal_path = self.temp_path + ".journal"
        self._fd: int | None = None

    def open(self, size: int, *, keep_existing: bool) -> None:
        """Create (or reopen for resume) the temporary file at ``size`` bytes, preallocated.

        Args:
            size: The final size of the download.
            keep_existing: Keep the current contents (resume) instead of starting empty.

        Raises:
            FileNotFoundError: If the destination's directory does not exist.
            BlockingIOError: If another download to the same destination is running.
        """
        directory = os.path.dirname(self.destination)
        if not os.path.isdir(directory):
            raise FileNotFoundError(
                errno.ENOENT, f"the destination directory {directory!r} does not exist"
            )
        if os.path.isdir(self.destination):
            raise IsADirectoryError(
                errno.EISDIR, f"the destination {self.destination!r} is a directory"
            )
        fd = os.open(self.temp_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        locked = False
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise BlockingIOError(
                    errno.EWOULDBLOCK,
                    f"another download to {self.destination} is in progress; wait for it to "
                    "finish, or stop it, then run this one again",
                ) from None
            locked = True
            os.fchmod(fd, 0o600)
            if not keep_existing or os.fstat(fd).st_size != size:
                os.ftruncate(fd, 0)
            _preallocate(fd, size)
        except BaseException:
            if locked:  # ours: e.g. ENOSPC while preallocating -- leave nothing behind
                self._remove_files()
            os.close(fd)
            raise
        self._fd = fd

    @property
    def fd(self) -> int:
        """int: The open file descriptor (only between ``open`` and ``commit``/``discard``)."""
        if self._fd is None:
            raise ValueError("the temporary file is not open")
        return self._fd

    def sync(self) -> None:
        """Flush written data to stable storage (may be called while workers still write)."""
        if self._fd is not None:
            os.fdatasync(self._fd)

    def commit(self) -> None:
        """fsync the temporary file, rename it onto the destination and fsync the directory."""
        fd = self.fd
        try:
            os.fsync(fd)
            os.replace(self.temp_path, self.destination)
        except BaseException:
            self.discard()
            raise
        self._close()
        _fsync_directory(os.path.dirname(self.destination))
        for path in (self.journal_path, journal_temp(self.journal_path)):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def discard(self) -> None:
        """Remove the temporary file and the journal; the destination is left untouched."""
        self._close()
        self._remove_files()

    def _remove_files(self) -> None:
        for path in (self.temp_path, self.journal_path, journal_temp(self.journal_path)):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def release(self) -> None:
        """Close the file but keep it and the journal, so a later run can resume."""
        self._close()

    def _close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)


def _preallocate(fd: int, size: int) -> None:
    """Reserve ``size`` bytes so later writes never hit ENOSPC or fragment."""
    if size == 0:
        return
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as exc:
        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            raise
        os.ftruncate(fd, size)  # filesystems without fallocate: a sparse file


def _fsync_directory(directory: str) -> None:
    """Make a rename durable (best effort on filesystems that refuse directory fsync)."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def is_path(target: object) -> bool:
    """Whether a download destination is a filesystem path (else a stream or buffer)."""
    return isinstance(target, (str, os.PathLike))


class StreamSink:
    """A writable binary stream or writable buffer receiving a download in order.

    Args:
        target: A stream with ``write`` (a pipe, stdout, a socket, a file opened "wb"), or
            a writable buffer (bytearray, memoryview, mmap) at least as long as the data.

    Raises:
        TypeError: A text stream, a read-only buffer, or neither stream nor buffer.
    """

    def __init__(self, target: Any) -> None:
        self.target = target
        self._buffer: memoryview | None = None
        write = getattr(target, "write", None)
        if write is not None and not isinstance(target, memoryview):
            import io

            if isinstance(target, io.TextIOBase):
                raise TypeError("the destination must be a binary stream, not a text stream")
            self._write: Callable[[memoryview], Any] = write
            return
        try:
            buffer = memoryview(target).cast("B")
        except TypeError:
            raise TypeError(
                "the destination must be a path, a writable binary stream or a writable "
                f"buffer, not a {type(target).__name__}"
            ) from None
        if buffer.readonly:
            raise TypeError("the destination buffer is read-only")
        self._buffer = buffer

    def open(self, size: int) -> None:
        """Check that the data (``size`` bytes) fits.

        Raises:
            ValueError: The buffer is smaller than the data.
        """
        if self._buffer is not None and len(self._buffer) < size:
            raise ValueError(
                f"the destination buffer holds {len(self._buffer)} bytes; the data is {size}"
            )

    def write(self, offset: int, piece: memoryview) -> None:
        """Write ``piece``, the bytes at ``offset`` of the data (called in order)."""
        if self._buffer is not None:
            self._buffer[offset : offset + len(piece)] = piece
            return
        view = piece
        while len(view):
            count = self._write(view)
            if count is None:  # a non-blocking raw stream that is not ready yet
                import time

                time.sleep(0.001)
                continue
            view = view[count:]

    def commit(self) -> None:
        """Flush a stream (a buffer needs nothing)."""
        flush = getattr(self.target, "flush", None)
        if self._buffer is None and flush is not None:
            flush()


def fill_stream(download: Any, transport: Any, progress: Any) -> TransferResult:
    """Run ``download`` (a ParallelDownload whose destination is a stream or buffer).

    Returns:
        The ``TransferResult`` (``verified`` when the whole object's CRC32C matched).
    """
    from resumable_media import _streams

    if download.checksum == "md5":
        raise ValueError("a stream or buffer destination is checked with crc32c, not md5")
    return _streams.download_to_stream(
        download.media_url,
        download.target,
        transport,
        headers=dict(download.headers),
        chunk_size=download.chunk_size,
        threads=download.threads_per_process,
        checksum=download.checksum,
        start=download.start,
        end=download.end,
        progress=progress,
        retry=download.retry,
    )
