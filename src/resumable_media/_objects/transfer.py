"""Copying one object: small ones in single requests, large ones through the accelerator.

Invariants: a download lands in a temp file beside its destination and is renamed
into place only after its size and CRC32C match the object's metadata, so a failed
or interrupted download never leaves a partial or wrong file at the destination;
every temp file created here is registered in :data:`TEMP_FILES` until it is
renamed or removed, so Ctrl-C handling can delete the leftovers.  An upload is
reported only after the server's object resource (size, CRC32C) matches the source.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import functools
import itertools
import json
import logging
import os
import pathlib
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from typing import IO, Any, BinaryIO, cast

import requests
import requests.structures

from resumable_media import checksums, common
from resumable_media._objects import lean
from resumable_media._objects.client import (
    PreconditionFailed,
    Storage,
    TransferError,
    describe_error,
)
from resumable_media._objects.localerrors import is_local, local_error
from resumable_media._objects.sessions import SessionStore
from resumable_media._objects.urls import GsUrl
from resumable_media._source import SourceChanged, check_unchanged, identity_of
from resumable_media.common import DataCorruption, InvalidResponse

_LOGGER = logging.getLogger(__name__)

__all__ = [
    "MODE_KEY",
    "MTIME_KEY",
    "TEMP_FILES",
    "CopyOptions",
    "CopyResult",
    "Interrupted",
    "TempFiles",
    "commit_pending",
    "download_object",
    "make_durable",
    "posix_metadata",
    "resolve_checksum_option",
    "restore_posix",
    "rewrite_object",
    "skipped_result",
    "upload_file",
    "upload_stream",
]

MTIME_KEY = "goog-reserved-file-mtime"
"""Custom metadata key of the file's mtime (whole seconds since the epoch), as gsutil -P."""
MODE_KEY = "goog-reserved-posix-mode"
"""Custom metadata key of the file's permission bits (octal digits, e.g. ``644``), as gsutil."""


def posix_metadata(info: os.stat_result) -> dict[str, str]:
    """The custom metadata ``-P`` stores for a file with ``info``."""
    return {MTIME_KEY: str(int(info.st_mtime)), MODE_KEY: format(info.st_mode & 0o777, "o")}


def restore_posix(path: pathlib.Path, meta: dict[str, Any]) -> None:
    """Set ``path``'s mode and mtime from an object's ``-P`` metadata.  Values that do not
    parse are ignored (the object may come from another tool)."""
    custom = meta.get("metadata") or {}
    try:
        mode = int(str(custom[MODE_KEY]), 8)
        if 0 <= mode <= 0o777:
            os.chmod(path, mode)
    except (KeyError, ValueError):
        pass
    try:
        mtime = int(str(custom[MTIME_KEY]))
        os.utime(path, (mtime, mtime))
    except (KeyError, ValueError, OverflowError):
        pass


NO_CLOBBER = "the destination exists (-n)"


def skipped_result(
    source: str, destination: str, reason: str = NO_CLOBBER, **known: Any
) -> CopyResult:
    """The outcome of an object left alone (``-n``, or a manifest recording it done)."""
    fields: dict[str, Any] = {
        "bytes": 0,
        "seconds": 0.0,
        "method": "none",
        "crc32c": None,
        "md5": None,
        "generation": None,
        "verified": False,
    }
    fields.update(known)
    return CopyResult(source=source, destination=destination, skipped=reason, **fields)


Progress = Callable[[int, "int | None"], None]
_UMASK = os.umask(0o022)
os.umask(_UMASK)


class Interrupted(Exception):
    """The user asked to stop (Ctrl-C); raised inside worker threads."""


class TempFiles:
    """Thread-safe registry of temp files that must not outlive the command.

    Once :meth:`remove_all` has run (the command is stopping), the registry is closed: a
    worker thread that has not yet noticed the interrupt cannot create or register another
    temp file behind the cleanup's back; it gets :class:`Interrupted` instead.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._paths: set[str] = set()
        self._closed = False

    def add(self, path: str) -> None:
        """Register ``path``.

        Raises:
            Interrupted: When the command is stopping (``path`` is removed if it exists).
        """
        with self._lock:
            if not self._closed:
                self._paths.add(path)
                return
        _remove(path)
        raise Interrupted

    def create(self, directory: pathlib.Path, prefix: str, suffix: str) -> tuple[int, str]:
        """``tempfile.mkstemp`` in ``directory``, registered in the same step.

        Raises:
            Interrupted: When the command is stopping.
        """
        with self._lock:
            if self._closed:
                raise Interrupted
            fd, path = tempfile.mkstemp(dir=directory, prefix=prefix, suffix=suffix)
            self._paths.add(path)
            return fd, path

    def create_beside(
        self, destination: pathlib.Path, *, make_parents: bool = False
    ) -> tuple[int, str]:
        """Create ``.NAME.RANDOM.rm-part`` beside ``destination``, registered in the same step.

        The file is created 0600 (nobody else reads a download before it is verified).

        Args:
            destination: The file the temp file will become.
            make_parents: Create the missing parent directories (only when the first
                attempt finds them missing: no ``mkdir`` per file).

        Raises:
            Interrupted: When the command is stopping.
        """
        directory = os.fspath(destination.parent)
        prefix = f".{destination.name[:100]}."
        while True:
            path = os.path.join(directory, f"{prefix}{_TOKEN}{next(_SERIAL):x}.rm-part")
            # Registered before it exists and created outside the lock, so that threads
            # creating files do not queue behind each other's system calls.
            with self._lock:
                if self._closed:
                    raise Interrupted
                self._paths.add(path)
            try:
                fd = os.open(path, _CREATE_FLAGS, 0o600)
            except FileExistsError:
                self.discard(path)
                continue
            except FileNotFoundError:
                self.discard(path)
                if not make_parents:
                    raise
                os.makedirs(directory, exist_ok=True)
                make_parents = False
                continue
            except BaseException:
                self.discard(path)
                raise
            if self.closed:  # remove_all ran meanwhile, perhaps before the file existed
                os.close(fd)
                _remove(path)
                raise Interrupted
            return fd, path

    @property
    def closed(self) -> bool:
        """Whether :meth:`remove_all` has run (the command is stopping)."""
        with self._lock:
            return self._closed

    def discard(self, path: str) -> None:
        """Forget ``path`` (renamed or removed by its owner)."""
        with self._lock:
            self._paths.discard(path)

    def remove_all(self) -> list[str]:
        """Close the registry; delete every registered file or tree still there.

        Returns:
            The paths removed.
        """
        with self._lock:
            paths, self._paths = sorted(self._paths), set()
            self._closed = True
        return [path for path in paths if _remove(path)]


def _remove(path: str) -> bool:
    """Delete a file or directory tree; return whether it was there."""
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    except FileNotFoundError:
        return False
    return True


_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
_TOKEN = secrets.token_hex(3)
"""This process's part of temp file names (a counter follows it; O_EXCL settles clashes)."""
_SERIAL = itertools.count()

TEMP_FILES = TempFiles()


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CopyOptions:
    """Settings shared by every object of one ``cp``."""

    chunk_size: int
    processes: int | None
    threads: int | None
    checksum: common.Checksum
    resume: bool
    if_generation_match: int | None
    content_type: str | None
    no_clobber: bool = False
    """``-n``: skip destinations that exist (uploads and rewrites send ``ifGenerationMatch=0``)."""
    preserve: bool = False
    """``-P``: uploads store mtime and mode as custom metadata; downloads restore them."""
    rewrite_bytes_per_call: int | None = None
    """``maxBytesRewrittenPerCall`` of gs→gs rewrites (None: the server's choice)."""
    defer_fsync: bool = False
    """Small downloads skip their own fsync: the caller makes them durable in one pass
    (:func:`make_durable`) before it reports them."""
    make_parents: bool = False
    """Small downloads create their destination's missing parent directories (the bulk
    engine: no ``mkdir`` per job)."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CopyResult:
    """The outcome of one object's copy (one ``--json`` line)."""

    source: str
    destination: str
    bytes: int
    seconds: float
    method: str
    crc32c: str | None
    md5: str | None
    generation: int | None
    verified: bool
    skipped: str | None = None
    """Why nothing was copied (``-n`` found the destination, or the manifest had it)."""
    mtime_ns: int | None = None
    """The local file's mtime (uploads: before reading it), for the manifest."""
    resumed: bool = False
    """Whether this run continued an interrupted one (a journal or an upload session)."""
    bytes_transferred: int = -1
    """This run's own bytes (less than ``bytes`` after a resume; -1: the same as ``bytes``)."""
    pending: str | None = None
    """With ``defer_fsync``: the verified temp file still to be made durable and renamed
    onto ``destination`` (:func:`commit_pending`); the destination is untouched until then."""

    def __post_init__(self) -> None:
        if self.bytes_transferred < 0:
            object.__setattr__(self, "bytes_transferred", self.bytes)

    def as_json(self) -> dict[str, Any]:
        """The ``--json`` summary of a successful copy."""
        data = dataclasses.asdict(self)
        data["status"] = "skipped" if self.skipped else "ok"
        del data["skipped"], data["mtime_ns"], data["pending"]
        data["seconds"] = round(self.seconds, 6)
        moved = self.bytes_transferred
        data["throughput_bytes_per_s"] = round(moved / self.seconds) if self.seconds else None
        return data


class _HashingWriter:
    """A write-only stream for ``Download`` over a raw file descriptor: hashes, reports
    progress, honours cancel.

    It writes with ``os.write`` and keeps its own position: no file object, so a small
    download costs no ``fstat``/``isatty``/``lseek`` calls of ``open()`` and ``tell()``.
    """

    def __init__(self, fd: int, cancel: threading.Event, progress: Progress | None) -> None:
        self._fd = fd
        self._cancel = cancel
        self._progress = progress
        self._position = 0
        self.crc = checksums.Crc32cHasher()
        self.written = 0

    def write(self, data: Any) -> int:
        if self._cancel.is_set():
            raise Interrupted("interrupted")
        view = memoryview(data)
        total = len(view)
        done = os.write(self._fd, view)
        while done < total:
            done += os.write(self._fd, view[done:])
        self.crc.update(view)
        self._position += total
        self.written += total
        if self._progress is not None:
            self._progress(self.written, None)
        return total

    def seek(self, offset: int, whence: int = 0) -> int:
        # Download restarts a transcoded body from byte 0; restart our hash with it.
        position = self._position = os.lseek(self._fd, offset, whence)
        if position == 0:
            self.crc = checksums.Crc32cHasher()
            self.written = 0
        return position

    def truncate(self, size: int | None = None) -> int:
        size = self._position if size is None else size
        os.ftruncate(self._fd, size)
        return size

    def tell(self) -> int:
        return self._position

    def flush(self) -> None:
        pass


def _temp_beside(destination: pathlib.Path, make_parents: bool = False) -> tuple[int, str]:
    return TEMP_FILES.create_beside(destination, make_parents=make_parents)


PREALLOCATE_MIN = 1 << 20
"""Downloads smaller than this are not preallocated: one write of a small file fails on a
full disk as early as a reservation would, and the extra system call is pure cost."""


def _preallocate(fd: int, size: int) -> None:
    """Reserve ``size`` bytes, so a full disk fails before any byte is fetched."""
    if size < PREALLOCATE_MIN or not hasattr(os, "posix_fallocate"):
        return
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            raise
        # EOPNOTSUPP/EINVAL: the file system cannot preallocate; writing will tell.


def _verify_download(url: GsUrl, meta: dict[str, Any], size: int, crc32c: str | None) -> bool:
    """Check size and CRC32C against the metadata; return whether a checksum was compared."""
    expected_size = int(meta.get("size", -1))
    if expected_size >= 0 and size != expected_size:
        raise TransferError(
            str(url), f"incomplete download: got {size} of {expected_size} bytes; retry the copy"
        )
    expected_crc = meta.get("crc32c")
    if crc32c is not None and expected_crc and crc32c != expected_crc:
        raise TransferError(
            str(url),
            f"data corruption: CRC32C of the downloaded bytes is {crc32c}, the object's is "
            f"{expected_crc}; nothing was written",
        )
    return crc32c is not None and bool(expected_crc)


class _DirectGet:
    """The transport of one small download: a plain GET goes straight to the session's
    adapter (connection pool), skipping the per-request work of ``requests.Session``
    (request preparation, environment and cookie merging, hooks), which was most of the
    client's CPU for a small object.

    Only a plain ``requests.Session`` (anonymous) takes the short way; an authorized
    session (which adds credentials in its own ``request``) and any other request go
    through the session as before.  A redirect is followed by the session.
    """

    def __init__(self, session: Any) -> None:
        self._session = session

    def request(
        self,
        method: str,
        url: str,
        data: Any = None,
        headers: Any = None,
        timeout: Any = None,
        stream: bool = False,
        **kwargs: Any,
    ) -> Any:
        session: Any = self._session
        if method != "GET" or data is not None or kwargs or type(session) is not requests.Session:
            return session.request(
                method, url, data=data, headers=headers, timeout=timeout, stream=stream, **kwargs
            )
        prepared = requests.PreparedRequest()
        prepared.method = "GET"
        prepared.url = url
        prepared.headers = requests.structures.CaseInsensitiveDict(cast(Any, session.headers))
        if headers:
            prepared.headers.update(headers)
        prepared.body = None
        prepared.hooks = {"response": []}
        settings: Any = session.merge_environment_settings(url, {}, stream, None, None)
        response = session.get_adapter(url).send(
            prepared,
            stream=stream,
            timeout=timeout,
            verify=settings["verify"],
            cert=settings["cert"],
            proxies=settings["proxies"],
        )
        if response.is_redirect:
            response.close()
            return session.request(
                method, url, data=data, headers=headers, timeout=timeout, stream=stream
            )
        return response


def _small_transport(storage: Storage) -> Any:
    """The transport of this thread's single-request transfers: the lean HTTP/1.1 client
    over the thread's session (which sends what the lean client cannot), or, with
    ``RESUMABLE_MEDIA_LEAN_HTTP=0``, the session's adapter directly."""
    session = storage.session()
    if lean.enabled():
        return lean.transport_for(session)
    return _DirectGet(session)


def _download_single(
    storage: Storage,
    url: GsUrl,
    meta: dict[str, Any],
    destination: pathlib.Path,
    options: CopyOptions,
    cancel: threading.Event,
    progress: Progress | None,
) -> tuple[str | None, bool, str | None]:
    """Download one object through one ``Download`` into a temp file beside ``destination``.

    Returns:
        The CRC32C, whether it was verified, and (``defer_fsync``) the verified temp file
        that is still to be made durable and renamed, or None when it is in place already.
    """
    from resumable_media.requests import Download

    generation = int(meta["generation"]) if meta.get("generation") else None
    fd, temp = _temp_beside(destination, options.make_parents)
    keep = False
    try:
        try:
            _preallocate(fd, int(meta.get("size", 0)))
            writer = _HashingWriter(fd, cancel, progress)
            download = Download(
                storage.endpoint.media_url(url, generation),
                stream=cast(IO[bytes], writer),
                checksum=options.checksum,
            )
            download._retry_strategy = storage.retry
            download.consume(cast(Any, _small_transport(storage)))
            if not options.defer_fsync:
                os.fsync(fd)
            # The permissions a plain open() would give (with -P the object's are set later).
            os.fchmod(fd, 0o666 & ~_UMASK)
        finally:
            os.close(fd)
        crc = writer.crc.b64digest() if options.checksum else None
        verified = _verify_download(url, meta, writer.written, crc)
        if options.defer_fsync:
            keep = True  # renamed only once durable, by commit_pending
            return crc, verified, temp
        _rename_into_place(temp, destination)
    finally:
        if not keep:
            TEMP_FILES.discard(temp)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
    return crc, verified, None


def _rename_into_place(temp: str, destination: pathlib.Path) -> None:
    try:
        os.replace(temp, destination)
    except IsADirectoryError:
        raise TransferError(
            str(destination), "is a directory; cannot overwrite it with a file"
        ) from None


def commit_pending(results: list[CopyResult]) -> dict[int, TransferError | OSError]:
    """Make deferred downloads durable, then rename each onto its destination, then make
    the renames durable: after a crash a destination is either untouched or complete.

    Returns:
        ``{index: error}`` for the results that could not be put in place (the others are).

    Raises:
        OSError: When the data could not be written out (nothing was renamed).
    """
    return commit_files([(r.pending, r.destination) for r in results])


def commit_files(
    files: list[tuple[str | None, str]],
) -> dict[int, TransferError | OSError]:
    """:func:`commit_pending` for ``(temp file or None, destination)`` pairs.

    Every temp file is forgotten by :data:`TEMP_FILES` once renamed or removed; one that
    cannot be put in place is removed.

    Returns:
        ``{index: error}`` for the pairs that could not be put in place.

    Raises:
        OSError: When the data could not be written out (nothing was renamed; the temp
            files are left registered, for the caller to remove).
    """
    make_durable(pathlib.Path(temp) for temp, _ in files if temp is not None)
    failed: dict[int, TransferError | OSError] = {}
    placed: list[str] = []
    for index, (temp, destination) in enumerate(files):
        if temp is None:
            continue
        try:
            _rename_into_place(temp, pathlib.Path(destination))
            placed.append(destination)
        except (TransferError, OSError) as exc:
            failed[index] = exc
            with contextlib.suppress(OSError):
                os.unlink(temp)
        finally:
            TEMP_FILES.discard(temp)
    make_durable(pathlib.Path(path) for path in placed)
    return failed


def _libc_syncfs() -> Callable[[int], int] | None:
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        function = libc.syncfs
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int]
    function.restype = ctypes.c_int
    return cast(Callable[[int], int], function)


@functools.cache
def _syncfs() -> Callable[[int], int] | None:
    """libc's ``syncfs``, looked up on first use (ctypes is not imported at start-up)."""
    return _libc_syncfs() if hasattr(os, "O_DIRECTORY") else None


def make_durable(files: Iterable[pathlib.Path], *, use_syncfs: bool = True) -> None:
    """Make files (and their directory entries) durable, in one pass where possible.

    With ``syncfs`` (Linux), one call per file system writes out every file and every
    rename at once; elsewhere each file is fsynced and then each of their directories.

    Raises:
        OSError: When the data could not be written out: the files must not be reported
            as copied (``filename`` is the directory or file concerned).
    """
    directories: dict[str, None] = {}
    paths = []
    for path in files:
        directories[os.path.dirname(path) or "."] = None
        paths.append(path)
    if not directories:
        return
    syncfs = _syncfs() if use_syncfs else None
    if syncfs is not None:
        devices: set[int] = set()
        for directory in directories:
            fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
            try:
                device = os.fstat(fd).st_dev
                if device not in devices:
                    devices.add(device)
                    if syncfs(fd) != 0:
                        number = ctypes_errno()
                        raise OSError(number, os.strerror(number), directory)
            finally:
                os.close(fd)
        return
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    for directory in directories:
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def ctypes_errno() -> int:
    """The C ``errno`` of the last ``ctypes`` call on this thread."""
    import ctypes

    return ctypes.get_errno() or errno.EIO


def _download_parallel(
    storage: Storage,
    url: GsUrl,
    meta: dict[str, Any],
    destination: pathlib.Path,
    options: CopyOptions,
    progress: Progress | None,
) -> Any:
    from resumable_media.parallel import ParallelDownload
    from resumable_media.parallel.sink import temp_path_for

    generation = int(meta["generation"]) if meta.get("generation") else None
    kwargs: dict[str, Any] = {}
    if options.threads is not None:
        kwargs["threads_per_process"] = options.threads
    download = ParallelDownload(
        storage.endpoint.media_url(url, generation),
        str(destination),
        chunk_size=_large_chunk_size(int(meta.get("size", 0)), options),
        processes=options.processes,
        checksum=options.checksum,
        resume=options.resume,
        retry=storage.retry,
        **kwargs,
    )
    # Without resume the accelerator's partial file and journal are scratch: register them
    # so that an interrupted run removes them; with resume they are the state to keep.
    temp = temp_path_for(destination)
    scratch = [] if options.resume else [temp, f"{temp}.journal"]
    for path in scratch:
        TEMP_FILES.add(os.path.abspath(path))
    try:
        return download.consume(storage.factory, progress=progress)
    finally:
        for path in scratch:
            TEMP_FILES.discard(os.path.abspath(path))


def download_object(
    storage: Storage,
    url: GsUrl,
    destination: pathlib.Path,
    options: CopyOptions,
    *,
    meta: dict[str, Any] | None = None,
    cancel: threading.Event,
    progress: Progress | None = None,
) -> CopyResult:
    """Download ``url`` to ``destination``, verified, atomically.

    Objects larger than one chunk go through :class:`~resumable_media.parallel.ParallelDownload`
    (resumable through its journal); smaller ones through one ``Download``.

    Raises:
        TransferError: When the object is missing, the transfer fails or does not verify.
        Interrupted: When ``cancel`` was set.
    """
    started = time.monotonic()
    if meta is None:
        meta = storage.metadata(url)
    size = int(meta.get("size", 0))
    generation = int(meta["generation"]) if meta.get("generation") else None
    try:
        if size > options.chunk_size:
            if destination.is_dir():
                raise TransferError(
                    str(destination), "is a directory; cannot overwrite it with a file"
                )
            result = _download_parallel(storage, url, meta, destination, options, progress)
            crc, verified = result.crc32c, bool(result.verified)
            method = "parallel"
            resumed, moved = result.resumed, result.moved
            if options.checksum and meta.get("crc32c") and crc and crc != meta["crc32c"]:
                raise TransferError(str(url), f"data corruption: CRC32C {crc} != {meta['crc32c']}")
        else:
            crc, verified, pending = _download_single(
                storage, url, meta, destination, options, cancel, progress
            )
            method = "single"
            resumed, moved = False, size
    except (TransferError, Interrupted, KeyboardInterrupt):
        raise
    except OSError as exc:
        if is_local(exc):
            raise local_error(exc, destination, target=str(url), needed=size) from exc
        raise TransferError(str(url), describe_error(exc)) from exc
    except Exception as exc:
        raise TransferError(str(url), describe_error(exc)) from exc
    # The accelerator's files are created 0600; give the result the permissions a plain
    # open() would (small downloads' are set before the rename), or with -P the ones the
    # object recorded.
    if method == "parallel":
        os.chmod(destination, 0o666 & ~_UMASK)
        pending = None
    if options.preserve:
        restore_posix(pathlib.Path(pending) if pending else destination, meta)
    return CopyResult(
        source=str(url),
        destination=str(destination),
        bytes=size,
        seconds=time.monotonic() - started,
        method=method,
        crc32c=crc or meta.get("crc32c"),
        md5=meta.get("md5Hash"),
        generation=generation,
        verified=verified,
        resumed=resumed,
        bytes_transferred=moved,
        pending=pending,
    )


def _file_crc32c(path: pathlib.Path) -> tuple[bytes, str]:
    data = path.read_bytes()
    return data, checksums.crc32c_to_b64(checksums.crc32c(data))


def _verify_upload(url: GsUrl, resource: dict[str, Any] | None, size: int, crc: str | None) -> bool:
    """Check the stored object against the source; return whether a checksum was compared."""
    if not resource:
        return False
    if int(resource.get("size", size)) != size:
        raise TransferError(
            str(url), f"server stored {resource.get('size')} bytes, the source has {size}"
        )
    if crc and resource.get("crc32c") and resource["crc32c"] != crc:
        raise TransferError(
            str(url), f"server CRC32C {resource['crc32c']} does not match the source's {crc}"
        )
    return bool(crc and resource.get("crc32c"))


def upload_file(
    storage: Storage,
    source: pathlib.Path,
    url: GsUrl,
    options: CopyOptions,
    content_type: str,
    *,
    progress: Progress | None = None,
) -> CopyResult:
    """Upload ``source`` to ``url``: multipart for small files, pipelined resumable for large.

    A file of at least ``PARALLEL_UPLOAD_MIN_BYTES`` (or, with ``--processes`` above 1, any
    large one) goes through the parallel XML multipart upload instead, unless it needs an
    MD5 or a generation precondition (see ``_use_parallel_upload``).

    Raises:
        TransferError: When the source cannot be read or the upload fails or does not verify.
    """
    from resumable_media.requests import MultipartUpload

    started = time.monotonic()
    try:
        info = source.stat()
        size = info.st_size
    except OSError as exc:
        raise local_error(exc, source, reading=True) from exc
    extra: dict[str, str | int] = {}
    generation_match = 0 if options.no_clobber else options.if_generation_match
    if generation_match is not None:
        extra["ifGenerationMatch"] = generation_match
    metadata: dict[str, Any] = {"name": url.name, "contentType": content_type}
    if options.preserve:
        metadata["metadata"] = posix_metadata(info)
    crc: str | None = None
    try:
        if size <= options.chunk_size:
            before = identity_of(source)
            data, crc = _file_crc32c(source)
            # What is sent is what was read; it must be the file as it was when read began.
            check_unchanged(source, before, label=str(source), destination=str(url))
            upload = MultipartUpload(
                storage.endpoint.upload_url(url.bucket, "multipart", extra),
                checksum=options.checksum,
            )
            upload._retry_strategy = storage.retry
            response = upload.transmit(_small_transport(storage), data, metadata, content_type)
            resource: dict[str, Any] | None = response.json()
            method = "multipart"
            moved = size
            if progress is not None:
                progress(size, size)
        else:
            resource, crc, method, moved = _upload_large(
                storage, source, url, options, content_type, metadata, extra, progress
            )
    except (TransferError, KeyboardInterrupt):
        raise
    except SourceChanged as exc:
        raise TransferError(
            str(source),
            f"changed while it was being uploaded ({exc.detail}); nothing was written to "
            f"{url}; upload it again once nothing is writing it",
        ) from exc
    except OSError as exc:
        if is_local(exc):
            raise local_error(exc, source, reading=True) from exc
        raise TransferError(str(url), describe_error(exc)) from exc
    except Exception as exc:
        status = getattr(getattr(exc, "response", None), "status_code", None)
        kind = PreconditionFailed if status == 412 else TransferError
        raise kind(str(url), describe_error(exc), status) from exc
    verified = _verify_upload(url, resource, size, crc if options.checksum else None)
    resource = resource or {}
    return CopyResult(
        source=str(source),
        destination=str(url),
        bytes=size,
        seconds=time.monotonic() - started,
        method=method,
        crc32c=resource.get("crc32c", crc),
        md5=resource.get("md5Hash"),
        generation=int(resource["generation"]) if resource.get("generation") else None,
        verified=verified,
        resumed=moved < size,
        bytes_transferred=moved,
    )


def upload_stream(
    storage: Storage,
    stream: BinaryIO,
    label: str,
    url: GsUrl,
    options: CopyOptions,
    content_type: str,
    *,
    progress: Progress | None = None,
) -> CopyResult:
    """Stream ``stream`` (stdin, a FIFO) to ``url``: a pipelined resumable upload of unknown
    size, read once, hashed as it goes, finalized only at its end and then verified.

    Raises:
        TransferError: When reading or the upload fails, or the object does not verify.
    """
    from resumable_media.parallel import PipelinedUpload

    started = time.monotonic()
    extra: dict[str, str | int] = {}
    generation_match = 0 if options.no_clobber else options.if_generation_match
    if generation_match is not None:
        extra["ifGenerationMatch"] = generation_match
    metadata: dict[str, Any] = {"name": url.name, "contentType": content_type}
    upload = PipelinedUpload(
        storage.endpoint.upload_url(url.bucket, "resumable", extra),
        options.chunk_size,
        checksum=options.checksum,
        retry=storage.retry,
    )
    try:
        result = upload.transmit(
            storage.session(), stream, metadata, content_type, progress=progress
        )
    except (TransferError, KeyboardInterrupt):
        raise
    except OSError as exc:
        if is_local(exc):
            raise local_error(exc, pathlib.Path(label), reading=True) from exc
        raise TransferError(str(url), describe_error(exc)) from exc
    except Exception as exc:
        raise TransferError(str(url), describe_error(exc)) from exc
    resource = result.resource or {}
    return CopyResult(
        source=label,
        destination=str(url),
        bytes=result.bytes,
        seconds=time.monotonic() - started,
        method="pipelined-stream",
        crc32c=resource.get("crc32c", result.crc32c),
        md5=resource.get("md5Hash"),
        generation=result.generation,
        verified=result.verified,
    )


def _connections(options: CopyOptions) -> int:
    """Connections a large transfer of ``cp`` keeps in flight (its workers' threads)."""
    from resumable_media.parallel.pool import default_workers

    processes, threads = default_workers()
    if options.processes is not None:
        processes = options.processes
    return max(1, processes) * (options.threads or threads)


def _large_chunk_size(size: int, options: CopyOptions) -> int:
    """The ranged-GET size of a large download: ``--chunk-size`` at most, smaller (not below
    8 MiB) so that each connection has a chunk and the chunks make whole rounds.

    Under the ``wan`` profile (30 ms, 50 MB/s per connection) a 256 MiB object in 32 MiB
    chunks could use 8 connections, 400 MB/s at best; in 8 MiB chunks it uses 32.
    """
    from resumable_media.parallel.plan import balanced_part_size

    return balanced_part_size(size, options.chunk_size, _connections(options))


PARALLEL_UPLOAD_MIN_BYTES = 64 * 2**20
"""Files of at least this size go up as parallel XML multipart uploads by default."""


def _use_parallel_upload(size: int, options: CopyOptions, extra: dict[str, str | int]) -> bool:
    """Whether a file larger than ``--chunk-size`` goes up as a parallel XML multipart upload.

    Yes, by default, from ``PARALLEL_UPLOAD_MIN_BYTES``: the parts go up on many
    connections at once, where the pipelined resumable upload is one stream.  256 MiB under
    the ``wan`` profile: ``cp`` (pipelined) 41 MB/s, ParallelUpload 165 MB/s with 4 parts in
    flight; on loopback issue 17 measured 0.97 s for 1 GiB against 0.74 s.  ``--processes``
    above 1 asks for it at any size above ``--chunk-size``.

    No when the object needs what XML multipart objects cannot have -- an MD5
    (``--checksum md5``) or a generation precondition (``-n``, ``--if-generation-match``) --
    and with ``--processes 1`` (one stream asked for).  The caller also keeps the pipelined
    upload when a stored session of an interrupted run can be continued; a parallel upload
    that is interrupted starts again from the beginning (it keeps no session).
    """
    if "ifGenerationMatch" in extra or options.checksum == "md5":
        return False
    if options.processes is not None:
        return options.processes > 1
    return size >= PARALLEL_UPLOAD_MIN_BYTES


def _upload_large(
    storage: Storage,
    source: pathlib.Path,
    url: GsUrl,
    options: CopyOptions,
    content_type: str,
    metadata: dict[str, Any],
    extra: dict[str, str | int],
    progress: Progress | None,
) -> tuple[dict[str, Any] | None, str | None, str, int]:
    from resumable_media.parallel import ParallelUpload, PipelinedUpload, TransferResult

    checksum = options.checksum
    upload_url = storage.endpoint.upload_url(url.bucket, "resumable", extra)
    sessions = (
        SessionStore(
            source,
            str(url),
            json.dumps(
                [upload_url, options.chunk_size, checksum, content_type, metadata], sort_keys=True
            ),
        )
        if options.resume
        else None
    )
    stored = sessions.load() if sessions is not None else None
    if stored is None and _use_parallel_upload(source.stat().st_size, options, extra):
        kwargs: dict[str, Any] = {}
        if options.threads is not None:
            kwargs["threads_per_process"] = options.threads
        parallel = ParallelUpload(
            storage.endpoint.xml_url(url),
            str(source),
            part_size=options.chunk_size,
            processes=options.processes,
            checksum=checksum,
            retry=storage.retry,
            **kwargs,
        )
        result = parallel.transmit(storage.factory, content_type, metadata.get("metadata"))
        if progress is not None:
            progress(result.bytes, result.bytes)
        # The XML API answers with headers; read the object resource to verify it.
        return storage.metadata(url), result.crc32c, "parallel-xml", result.moved
    pipelined = PipelinedUpload(
        upload_url, options.chunk_size, checksum=checksum, retry=storage.retry
    )
    with source.open("rb") as stream:

        def send(resume: str | None) -> TransferResult:
            return pipelined.transmit(
                storage.session(),
                stream,
                metadata,
                content_type,
                progress=progress,
                resumable_url=resume,
                on_session=None if sessions is None else sessions.save,
            )

        try:
            result = send(stored)
        except InvalidResponse as exc:
            status = getattr(exc.response, "status_code", None)
            # 404/410: the session expired or was cancelled.  No response at all: the
            # session's state cannot belong to this file (e.g. it holds more bytes).
            unusable = status in (404, 410) or exc.response is None
            if sessions is None or stored is None or not unusable:
                if sessions is not None and status == 400:
                    sessions.forget()  # the server refused the data: do not continue it
                raise
            _LOGGER.info("the stored upload session is unusable (%s); starting afresh", status)
            sessions.forget()
            stored = None
            stream.seek(0)
            result = send(None)
        except DataCorruption:
            if sessions is not None:
                sessions.forget()
            raise
    if sessions is not None:
        sessions.forget()
    method = "pipelined-resumed" if stored is not None else "pipelined"
    return result.response, result.crc32c, method, result.moved


def resolve_checksum_option(value: str) -> common.Checksum:
    """Map ``--checksum`` (crc32c, md5, none; argparse's choices) to the library's value."""
    return None if value == "none" else cast("common.Checksum", value)


def rewrite_object(
    storage: Storage,
    source: GsUrl,
    destination: GsUrl,
    options: CopyOptions,
    *,
    meta: dict[str, Any] | None = None,
    progress: Progress | None = None,
) -> CopyResult:
    """Copy ``source`` to ``destination`` inside Cloud Storage (``objects.rewrite``).

    No object byte passes through this process; the copy keeps the source's content type
    and custom metadata.  The source generation seen in ``meta`` (a listing) is pinned.

    Raises:
        PreconditionFailed: When ``-n``/``--if-generation-match`` does not hold.
        TransferError: When the source is missing or a call fails.
    """
    started = time.monotonic()
    generation = int(meta["generation"]) if meta and meta.get("generation") else None
    match = 0 if options.no_clobber else options.if_generation_match

    def step(done: int, total: int) -> None:
        if progress is not None:
            progress(done, total)

    try:
        resource = storage.rewrite(
            source,
            destination,
            source_generation=generation,
            if_generation_match=match,
            max_bytes_per_call=options.rewrite_bytes_per_call,
            progress=step,
        )
    except TransferError as exc:
        if exc.status == 404:
            raise TransferError(
                str(source),
                f"{exc.reason}; check that the source and the bucket of {destination} exist",
                404,
            ) from exc
        raise
    expected = meta.get("crc32c") if meta else None
    if expected and resource.get("crc32c") and resource["crc32c"] != expected:
        raise TransferError(
            str(destination),
            f"the copy's CRC32C {resource['crc32c']} is not the source's {expected}",
        )
    return CopyResult(
        source=str(source),
        destination=str(destination),
        bytes=int(resource.get("size", 0)),
        seconds=time.monotonic() - started,
        method="rewrite",
        crc32c=resource.get("crc32c"),
        md5=resource.get("md5Hash"),
        generation=int(resource["generation"]) if resource.get("generation") else None,
        verified=bool(expected and resource.get("crc32c")),
    )
