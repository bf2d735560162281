"""An fsspec filesystem on the accelerator: protocol ``gcsx`` (and ``gs`` only when asked).

    import fsspec
    fs = fsspec.filesystem("gcsx")             # STORAGE_EMULATOR_HOST, else ADC on GCS
    fs.get("bucket/big.bin", "big.bin")        # parallel ranged download, CRC32C checked
    pandas.read_parquet("gcsx://bucket/t.parquet")

``gcsx`` is registered through the ``fsspec.specs`` entry point when the package is
installed.  ``gs://`` and ``gcs://`` keep meaning gcsfs unless :func:`register_gs` is
called, which replaces them for the rest of the process (and says so in the log).

Invariants:
- ``get``/``get_file`` go through ``ParallelDownload`` (temp file, per-chunk CRC32C,
  atomic rename: a corrupted object leaves no file); ``put``/``put_file`` through the
  parallel XML multipart upload for large files (parts in flight at once, each part's
  CRC32C sent and the combined CRC32C compared with the object's) and a pipelined
  resumable upload otherwise; ``open`` returns :mod:`resumable_media._streams` objects
  (read-ahead reader verifying a sequential read, streaming writer finalized by close).
- ``cat_file`` of a whole object is CRC32C-checked; a slice (``start``/``end``) is a
  single ranged GET and cannot be checked against the whole object's hash.
- ``cp_file`` is ``objects.rewrite`` (no byte passes through this process).
- Directories are name prefixes (like gcsfs): ``mkdir`` inside a bucket creates nothing,
  a directory exists while an object lies below it; ``mkdir`` of a bucket creates it.
- Failures map onto Python's: 404 ``FileNotFoundError``, 412 ``FileExistsError`` (for
  ``mode="create"`` / ``"xb"``), 403 ``PermissionError``, each naming the path.
"""

from __future__ import annotations

import datetime
import io
import logging
import os
from typing import Any

from fsspec.callbacks import DEFAULT_CALLBACK
from fsspec.spec import AbstractFileSystem

from resumable_media import _streams, callbacks, common
from resumable_media._objects.client import Storage, TransferError
from resumable_media._objects.urls import Endpoint, GsUrl
from resumable_media.parallel.plan import DEFAULT_CHUNK_SIZE

__all__ = ["GCSXFileSystem", "register_gs"]

_LOGGER = logging.getLogger(__name__)

_PROTOCOLS = ("gcsx://", "gs://", "gcs://")

PARALLEL_UPLOAD_THRESHOLD = 64 * 2**20
"""int: Files at least this large go up as a parallel XML multipart upload."""


def _stamp(text: Any) -> datetime.datetime | None:
    if not text:
        return None
    try:
        return datetime.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None


class GCSXFileSystem(AbstractFileSystem):  # type: ignore[misc]
    """Cloud Storage through resumable_media's accelerator.

    Args:
        endpoint: The JSON API base URL (default: ``STORAGE_EMULATOR_HOST``, else
            ``https://storage.googleapis.com`` with Application Default Credentials).
        transport: A picklable transport factory (default: anonymous for an emulator,
            ``transports.google_default()`` otherwise).
        project: The project new buckets belong to (``mkdir`` of a bucket).
        chunk_size: Bytes per ranged GET of ``get`` and per upload request or part (32 MiB,
            as ``ParallelDownload``); ``open`` reads at most 8 MiB per GET.
        threads: Connections per transfer.
        checksum: "crc32c" (default) or None (kept as ``check``: fsspec's ``checksum(path)``
            is a method).
        **kwargs: Passed to ``AbstractFileSystem``.
    """

    protocol = ("gcsx",)
    root_marker = ""

    def __init__(
        self,
        endpoint: str | None = None,
        transport: Any = None,
        project: str | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        threads: int | None = None,
        checksum: common.Checksum = "crc32c",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        where, transport = _streams.resolve_transport(endpoint, transport)
        self.endpoint: Endpoint = where
        self.transport = transport
        self.project = project or os.environ.get("GOOGLE_CLOUD_PROJECT") or "_"
        self.chunk_size = chunk_size
        self.threads = threads
        self.check = checksum
        self.storage = Storage(where, {}, factory=transport)

    # ------------------------------------------------------------ paths and errors

    @classmethod
    def _strip_protocol(cls, path: Any) -> str:
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]  # type: ignore[return-value]
        text = os.fspath(path) if not isinstance(path, str) else path
        for prefix in _PROTOCOLS:
            if text.startswith(prefix):
                text = text[len(prefix) :]
                break
        return text.rstrip("/").lstrip("/")

    @staticmethod
    def _get_kwargs_from_urls(path: str) -> dict[str, Any]:
        return {}

    def _split(self, path: str) -> GsUrl:
        stripped = self._strip_protocol(path)
        bucket, _, name = stripped.partition("/")
        if not bucket:
            raise ValueError(f"{path}: the path names no bucket")
        return GsUrl(bucket, name)

    def _raise(self, exc: BaseException, path: str) -> None:
        status = getattr(exc, "status", None)
        if status is None:
            status = getattr(getattr(exc, "response", None), "status_code", None)
        reason = getattr(exc, "reason", None) or str(exc)
        if status == 404:
            raise FileNotFoundError(2, f"{path}: no such object or bucket", path) from exc
        if status == 412:
            raise FileExistsError(17, f"{path}: the object exists (or changed)", path) from exc
        if status in (401, 403):
            raise PermissionError(13, f"{path}: {reason}", path) from exc
        raise OSError(5, f"{path}: {reason}", path) from exc

    # ------------------------------------------------------------ listing and info

    def _object_entry(self, bucket: str, item: dict[str, Any]) -> dict[str, Any]:
        entry = dict(item)
        entry["name"] = f"{bucket}/{item['name']}"
        entry["size"] = int(item.get("size", 0))
        entry["type"] = "file"
        mtime = _stamp(item.get("updated"))
        if mtime is not None:
            entry["mtime"] = mtime
        return entry

    @staticmethod
    def _dir_entry(name: str) -> dict[str, Any]:
        return {"name": name, "size": 0, "type": "directory"}

    def _list_buckets(self) -> list[dict[str, Any]]:
        base = self.endpoint.base_url
        try:
            response = self.storage._call("GET", f"{base}/storage/v1/b?project={self.project}", "")
        except TransferError as exc:
            self._raise(exc, "")
        return [self._dir_entry(b["name"]) for b in response.json().get("items", [])]

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        """List a bucket's prefix one level deep (or the buckets for ``""``)."""
        stripped = self._strip_protocol(path)
        if not stripped:
            entries = self._list_buckets()
        else:
            url = self._split(stripped)
            prefix = url.name + "/" if url.name else ""
            entries = []
            try:
                for page in self.storage.list_pages(url.bucket, prefix, delimiter="/"):
                    for item in page.items:
                        if item["name"] == prefix:  # a directory placeholder object
                            continue
                        entries.append(self._object_entry(url.bucket, item))
                    entries.extend(
                        self._dir_entry(f"{url.bucket}/{p.rstrip('/')}") for p in page.prefixes
                    )
            except TransferError as exc:
                self._raise(exc, stripped)
            if not entries and url.name:
                info = self.info(stripped)  # FileNotFoundError when nothing is there
                entries = [info] if info["type"] == "file" else []
        entries.sort(key=lambda e: e["name"])
        return entries if detail else [e["name"] for e in entries]

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        """The object's resource (``type`` file), or a directory entry for a prefix/bucket."""
        stripped = self._strip_protocol(path)
        if not stripped:
            return self._dir_entry("")
        url = self._split(stripped)
        if not url.name:
            try:
                self.storage._call(
                    "GET", f"{self.endpoint.base_url}/storage/v1/b/{url.bucket}", stripped
                )
            except TransferError as exc:
                self._raise(exc, stripped)
            return self._dir_entry(url.bucket)
        try:
            resource = self.storage.stat(url)
        except TransferError as exc:
            self._raise(exc, stripped)
        if resource is not None:
            return self._object_entry(url.bucket, resource)
        try:
            page = next(self.storage.list_pages(url.bucket, url.name + "/", page_size=1), None)
        except TransferError as exc:
            self._raise(exc, stripped)
        if page is not None and (page.items or page.prefixes):
            return self._dir_entry(stripped)
        raise FileNotFoundError(2, f"{stripped}: no such object or prefix", stripped)

    def find(
        self,
        path: str,
        maxdepth: int | None = None,
        withdirs: bool = False,
        detail: bool = False,
        **kwargs: Any,
    ) -> Any:
        """Every object below ``path`` from one flat listing (directories derived from names)."""
        if maxdepth is not None:
            return super().find(path, maxdepth=maxdepth, withdirs=withdirs, detail=detail)
        stripped = self._strip_protocol(path)
        if not stripped:
            return super().find(path, withdirs=withdirs, detail=detail)
        url = self._split(stripped)
        out: dict[str, dict[str, Any]] = {}
        prefix = url.name + "/" if url.name else ""
        try:
            for item in self.storage.iter_objects(url.bucket, prefix):
                entry = self._object_entry(url.bucket, item)
                if item["name"].endswith("/"):
                    entry = self._dir_entry(entry["name"].rstrip("/"))
                    if withdirs and entry["name"] != stripped:
                        out[entry["name"]] = entry
                    continue
                out[entry["name"]] = entry
                if withdirs:
                    parent = entry["name"].rsplit("/", 1)[0]
                    while len(parent) > len(stripped):
                        out.setdefault(parent, self._dir_entry(parent))
                        parent = parent.rsplit("/", 1)[0]
        except TransferError as exc:
            self._raise(exc, stripped)
        if withdirs and out:
            out[stripped] = self._dir_entry(stripped)
        if not out and url.name:
            try:
                info = self.info(stripped)
            except FileNotFoundError:
                info = None
            if info is not None and info["type"] == "file":
                out[stripped] = info
        names = sorted(out)
        return {n: out[n] for n in names} if detail else names

    def modified(self, path: str) -> datetime.datetime:
        """When the object was last updated."""
        return self._time(path, "updated")

    def created(self, path: str) -> datetime.datetime:
        """When the object (this generation) was created."""
        return self._time(path, "timeCreated")

    def _time(self, path: str, field: str) -> datetime.datetime:
        info = self.info(path)
        stamp = _stamp(info.get(field))
        if stamp is None:
            raise IsADirectoryError(21, f"{path}: a directory has no {field} time", path)
        return stamp

    def checksum(self, path: str) -> int:
        """A number that changes whenever the object does (its generation and CRC32C)."""
        info = self.info(path)
        return hash((info.get("generation"), info.get("crc32c"), info.get("size")))

    # ------------------------------------------------------------ directories

    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        """Create the bucket if ``path`` is a bucket; prefixes need no creation."""
        url = self._split(path)
        if url.name:
            if create_parents:
                self.makedirs(url.bucket, exist_ok=True)
            return
        body = {"name": url.bucket}
        try:
            self.storage._call(
                "POST",
                f"{self.endpoint.base_url}/storage/v1/b?project={self.project}",
                url.bucket,
                body=body,
            )
        except TransferError as exc:
            if exc.status == 409:
                raise FileExistsError(17, f"{url.bucket}: the bucket exists", url.bucket) from exc
            self._raise(exc, url.bucket)

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        """Create the bucket when missing; nothing else is created."""
        url = self._split(path)
        try:
            self.mkdir(url.bucket, create_parents=False)
        except FileExistsError:
            if not exist_ok and not url.name:
                raise

    def rmdir(self, path: str) -> None:
        """Remove an empty bucket; a prefix disappears with its last object."""
        url = self._split(path)
        if url.name:
            return
        try:
            self.storage._call(
                "DELETE",
                f"{self.endpoint.base_url}/storage/v1/b/{url.bucket}",
                url.bucket,
                expect=(200, 204),
            )
        except TransferError as exc:
            self._raise(exc, url.bucket)

    # ------------------------------------------------------------ deletion and copy

    def rm_file(self, path: str) -> None:
        """Delete one object."""
        url = self._split(path)
        try:
            if not self.storage.delete(url):
                raise FileNotFoundError(2, f"{path}: no such object", path)
        except TransferError as exc:
            self._raise(exc, path)

    def _rm(self, path: str) -> None:
        self.rm_file(path)

    def rm(self, path: Any, recursive: bool = False, maxdepth: int | None = None) -> None:
        """Delete objects (``recursive``: everything below a prefix); buckets are kept."""
        paths = self.expand_path(path, recursive=recursive, maxdepth=maxdepth)
        for name in reversed(paths):
            url = self._split(name)
            if not url.name:
                continue
            try:
                deleted = self.storage.delete(url)
            except TransferError as exc:
                self._raise(exc, name)
            if not deleted:
                # A prefix with no placeholder object: nothing to delete.
                continue

    def cp_file(self, path1: str, path2: str, **kwargs: Any) -> None:
        """Copy inside Cloud Storage with ``objects.rewrite``."""
        source, destination = self._split(path1), self._split(path2)
        if not source.name:
            raise IsADirectoryError(21, f"{path1}: is a bucket", path1)
        try:
            self.storage.rewrite(source, destination)
        except TransferError as exc:
            if exc.status == 404 and self.isdir(path1):
                return  # a directory: fsspec's cp creates its contents one by one
            self._raise(exc, path1)

    # ------------------------------------------------------------ bytes

    def cat_file(
        self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any
    ) -> bytes:
        """The object's bytes; ``start``/``end`` (end exclusive, negative from the end) slice."""
        url = self._split(path)
        if start is None and end is None:
            try:
                with _streams.ObjectReader(
                    self.endpoint.media_url(url),
                    self.transport,
                    chunk_size=self.chunk_size,
                    threads=self.threads,
                    checksum=self.check,
                ) as reader:
                    return reader.readall()
            except common.InvalidResponse as exc:
                self._raise(exc, path)
        if (start is not None and start < 0) or (end is not None and end < 0):
            size = self.info(path)["size"]
            start = None if start is None else (start if start >= 0 else max(0, size + start))
            end = None if end is None else (end if end >= 0 else max(0, size + end))
        first = start or 0
        if end is not None and end <= first:
            return b""
        wanted = f"bytes={first}-" if end is None else f"bytes={first}-{end - 1}"
        session = self.storage.session()
        response = session.request(
            "GET", self.endpoint.media_url(url), headers={"range": wanted}, timeout=(61, 60)
        )
        if response.status_code == 416:
            return b""
        if response.status_code not in (200, 206):
            self._raise(common.InvalidResponse(response, "read failed", response.status_code), path)
        data = bytes(response.content)
        if response.status_code == 200:  # the server ignored the range
            data = data[first:] if end is None else data[first:end]
        return data

    def pipe_file(self, path: str, value: bytes, mode: str = "overwrite", **kwargs: Any) -> None:
        """Write ``value`` as the whole object (``mode="create"``: only if absent)."""
        self._upload_stream(path, io.BytesIO(value), mode, len(value), None)

    def _upload_stream(
        self,
        path: str,
        stream: Any,
        mode: str,
        size: int | None,
        progress: callbacks.ProgressCallback | None,
    ) -> None:
        from resumable_media.parallel import PipelinedUpload

        url = self._split(path)
        extra: dict[str, str | int] = {}
        if mode == "create":
            extra["ifGenerationMatch"] = 0
        upload = PipelinedUpload(
            self.endpoint.upload_url(url.bucket, "resumable", extra),
            self.chunk_size,
            checksum=self.check,
        )
        content_type = kwargs_content_type(path)
        try:
            upload.transmit(
                self.storage.session(),
                stream,
                {"name": url.name, "contentType": content_type},
                content_type,
                progress=progress,
            )
        except common.InvalidResponse as exc:
            self._raise(exc, path)

    def put_file(
        self,
        lpath: str,
        rpath: str,
        callback: Any = DEFAULT_CALLBACK,
        mode: str = "overwrite",
        **kwargs: Any,
    ) -> None:
        """Upload one local file: parallel XML multipart when large, else pipelined."""
        if os.path.isdir(lpath):
            self.makedirs(rpath, exist_ok=True)
            return
        size = os.path.getsize(lpath)
        progress = callbacks.from_fsspec(callback)
        if mode == "create" or size < PARALLEL_UPLOAD_THRESHOLD or self.check == "md5":
            with open(lpath, "rb") as stream:
                self._upload_stream(rpath, stream, mode, size, progress)
            return
        from resumable_media.parallel import ParallelUpload

        url = self._split(rpath)
        upload = ParallelUpload(
            self.endpoint.xml_url(url),
            lpath,
            part_size=self.chunk_size,
            threads_per_process=self.threads,
            checksum=self.check,
        )
        try:
            upload.transmit(self.transport, kwargs_content_type(rpath), progress=progress)
        except common.InvalidResponse as exc:
            self._raise(exc, rpath)

    def get_file(
        self, rpath: str, lpath: str, callback: Any = DEFAULT_CALLBACK, **kwargs: Any
    ) -> None:
        """Download one object with ``ParallelDownload`` (verified, atomically renamed)."""
        from resumable_media.parallel import ParallelDownload

        url = self._split(rpath)
        if not url.name:
            os.makedirs(lpath, exist_ok=True)
            return
        parent = os.path.dirname(os.path.abspath(lpath))
        os.makedirs(parent, exist_ok=True)
        download = ParallelDownload(
            self.endpoint.media_url(url),
            lpath,
            chunk_size=self.chunk_size,
            threads_per_process=self.threads,
            checksum=self.check,
            resume=False,
        )
        try:
            download.consume(self.transport, progress=callbacks.from_fsspec(callback))
        except common.InvalidResponse as exc:
            status = getattr(exc.response, "status_code", None)
            if status == 404 and self.isdir(rpath):  # a prefix: a local directory
                os.makedirs(lpath, exist_ok=True)
                return
            self._raise(exc, rpath)

    def _open(
        self,
        path: str,
        mode: str = "rb",
        block_size: int | None = None,
        autocommit: bool = True,
        cache_options: Any = None,
        **kwargs: Any,
    ) -> Any:
        if not autocommit:
            raise NotImplementedError(
                f"{path}: gcsx has no transactions; write outside fs.transaction (each file "
                "is committed, verified, when it is closed)"
            )
        url = self._split(path)
        if "r" in mode:
            try:
                raw = _streams.ObjectReader(
                    self.endpoint.media_url(url),
                    self.transport,
                    chunk_size=block_size or min(self.chunk_size, _streams.DEFAULT_READ_CHUNK),
                    threads=self.threads,
                    checksum=self.check,
                )
            except common.InvalidResponse as exc:
                self._raise(exc, path)
            reader = io.BufferedReader(raw)
            return reader
        if mode in ("wb", "xb"):
            if mode == "xb" and self.exists(path):
                raise FileExistsError(17, f"{path}: the object exists", path)
            return _streams.open_url(
                str(url),
                "wb",
                endpoint=self.endpoint.base_url,
                transport=self.transport,
                chunk_size=self.chunk_size,
                checksum=self.check,
                content_type=kwargs_content_type(path),
                if_generation_match=0 if mode == "xb" else None,
            )
        raise ValueError(f"{path}: mode {mode} is not supported (use rb, wb or xb)")


def kwargs_content_type(path: str) -> str:
    """The content type guessed from the name (``application/octet-stream`` otherwise)."""
    import mimetypes

    guessed, _ = mimetypes.guess_type(path)
    return guessed or "application/octet-stream"


def register_gs(*, clobber: bool = True) -> None:
    """Make ``gs://`` and ``gcs://`` URLs use this filesystem instead of gcsfs.

    Process-wide and explicit: fsspec's registry is changed for ``gs`` and ``gcs``, and an
    INFO line says so.  ``gcsx://`` needs no registration.

    Args:
        clobber: Replace a registration made earlier (gcsfs registers ``gs`` itself).
    """
    import fsspec

    for protocol in ("gs", "gcs"):
        fsspec.register_implementation(protocol, GCSXFileSystem, clobber=clobber)
    _LOGGER.info("fsspec: gs:// and gcs:// now use resumable_media.fsspec.GCSXFileSystem")
