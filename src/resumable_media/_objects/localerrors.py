"""Local failures (disk full, read-only, permissions) said in words, about the user's path.

Invariants:
- A message names the user's own source or destination path, never one of our temp files,
  says what happened in words, and what to do.
- Only errors of the local file system become :class:`LocalError`; a network error is an
  ``OSError`` too (``requests`` derives from it) and is left to the network's messages.
- :class:`FullDevices` lets a tree copy stop starting downloads to a device that is full,
  and say so once, instead of failing every remaining file with the same line.
"""

from __future__ import annotations

import errno
import os
import pathlib
import threading

from resumable_media._objects.client import TransferError
from resumable_media._objects.units import format_size

__all__ = ["DeviceFull", "FullDevices", "LocalError", "device_of", "is_local", "local_error"]

_FULL = (errno.ENOSPC, errno.EDQUOT)


class LocalError(TransferError):
    """A local file-system operation failed for one object.

    Attributes:
        errno: The operating system's error number.
        path: The user's path concerned.
    """

    def __init__(self, target: str, reason: str, code: int, path: pathlib.Path) -> None:
        super().__init__(target, reason)
        self.errno = code
        self.path = path


class DeviceFull(TransferError):
    """A download not started because an earlier one found its device full."""


def is_local(exc: BaseException) -> bool:
    """Whether ``exc`` is a local file-system failure (not a network one)."""
    if not isinstance(exc, OSError) or exc.errno is None:
        return False
    if getattr(exc, "response", None) is not None or getattr(exc, "request", None) is not None:
        return False
    return exc.errno not in (
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.EPIPE,
        errno.ETIMEDOUT,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
    )


def device_of(path: pathlib.Path) -> int | None:
    """The device number of the file system that holds (or would hold) ``path``."""
    for candidate in (path, *path.parents):
        try:
            return os.stat(candidate).st_dev
        except OSError:
            continue
    return None


def _words(code: int, path: pathlib.Path, *, reading: bool, needed: int | None) -> str:
    need = f" (needs {format_size(needed)})" if needed else ""
    verb = "read" if reading else "write"
    if code == errno.ENOSPC:
        return (
            f"no space left on the device holding {path}{need}; free some space, "
            "then run the command again"
        )
    if code == errno.EDQUOT:
        return f"disk quota exceeded on the device holding {path}{need}; free some space"
    if code == errno.EROFS:
        return f"cannot write {path}: its file system is read-only; choose another destination"
    if code in (errno.EACCES, errno.EPERM):
        where = path if reading else path.parent
        return f"permission denied: cannot {verb} {path}; check the permissions of {where}"
    if code == errno.ENOENT:
        if reading:
            return f"{path} does not exist (it may have been removed during the copy)"
        return f"the directory {path.parent} does not exist; create it or choose another one"
    if code == errno.ENOTDIR:
        return f"cannot {verb} {path}: a part of its path is a file, not a directory"
    if code == errno.EISDIR:
        return f"cannot {verb} {path}: it is a directory"
    if code == errno.ENAMETOOLONG:
        return f"cannot {verb} {path}: the name is too long for its file system"
    if code in (errno.EMFILE, errno.ENFILE):
        return f"cannot {verb} {path}: too many open files; use a smaller -j"
    if code == errno.EIO:
        return f"input/output error on the device holding {path}; check the disk"
    return f"cannot {verb} {path}: {os.strerror(code).lower()}"


def local_error(
    exc: OSError,
    path: pathlib.Path,
    *,
    target: str | None = None,
    reading: bool = False,
    needed: int | None = None,
) -> LocalError:
    """The :class:`LocalError` that says what ``exc`` means for the user's ``path``.

    Args:
        exc: The operating system's error (its file name, maybe one of our temp files,
            is not shown).
        path: The user's source (``reading``) or destination.
        target: What the message is about (default ``path``), e.g. the object's URL.
        reading: Whether ``path`` was being read (a source) rather than written.
        needed: Bytes the operation needed, for a full device.
    """
    code = exc.errno if exc.errno is not None else errno.EIO
    reason = _words(code, path, reading=reading, needed=needed)
    return LocalError(target or str(path), reason, code, path)


class FullDevices:
    """The devices found full during one command, shared by its worker threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._full: dict[int, pathlib.Path] = {}
        self.skipped: dict[int, int] = {}

    def record(self, error: TransferError) -> bool:
        """Note a download that failed; return False when its line would repeat one already
        shown (the same device, full), so the caller counts it instead of printing it."""
        if not (isinstance(error, LocalError) and error.errno in _FULL):
            return True
        device = device_of(error.path)
        if device is None:
            return True
        with self._lock:
            if device not in self._full:
                self._full[device] = error.path
                return True
            self.skipped[device] = self.skipped.get(device, 0) + 1
            return False

    def check(self, destination: pathlib.Path, target: str) -> None:
        """Before a download: refuse it when its device is already known to be full.

        Raises:
            DeviceFull: Naming the first path that found the device full.
        """
        if not self._full:
            return
        device = device_of(destination)
        if device is None:
            return
        with self._lock:
            first = self._full.get(device)
            if first is None:
                return
            self.skipped[device] = self.skipped.get(device, 0) + 1
        raise DeviceFull(target, f"not started: the device holding {first} is full")

    def summary(self) -> list[str]:
        """One line per full device that made downloads wait: how many were not started."""
        with self._lock:
            return [
                f"no space left on the device holding {self._full[device]}: {count} more "
                "download(s) to it failed the same way or were not started; free some space, "
                "then run the command again"
                for device, count in self.skipped.items()
            ]
