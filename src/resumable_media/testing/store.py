"""On-disk object store of the loopback GCS server.

Invariants: object bytes live only in files under ``root`` (never whole objects in RAM); a
published object file is never modified again -- every write publishes a new file by an atomic
``os.replace`` and gets a new, strictly increasing generation; the in-memory index is guarded
by one lock and maps (bucket, name) to the live generation only (buckets are not versioned).
Hashes are computed here with google-crc32c and hashlib, never with the client's code.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import itertools
import os
import pathlib
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, BinaryIO

import google_crc32c

COPY_BLOCK = 1 << 20
AFTER_PREFIX = "\U0010ffff"
"""Appended to a common prefix to make a listing's resume point skip every name under it."""


def crc32c_b64(value: int) -> str:
    """Format a CRC32C value as GCS shows it: 4 big-endian bytes, base64."""
    return base64.b64encode(value.to_bytes(4, "big")).decode("ascii")


def rfc3339(epoch_s: float) -> str:
    """Format a POSIX time as RFC 3339 with milliseconds, UTC."""
    whole = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch_s))
    return f"{whole}.{int(epoch_s * 1000) % 1000:03d}Z"


def int_param(query: Mapping[str, str], name: str) -> int | None:
    """An optional integer query parameter.

    Raises:
        StoreError: 400 when present but not an integer.
    """
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise StoreError(400, f"Invalid value for {name}: {raw} (expected an integer)") from None


_reap_queue: queue.SimpleQueue[int] = queue.SimpleQueue()
_reaper_lock = threading.Lock()
_reaper: threading.Thread | None = None


def _reap_forever() -> None:
    while True:
        fd = _reap_queue.get()
        with contextlib.suppress(OSError):
            os.close(fd)


def discard_file(path: pathlib.Path) -> None:
    """Remove ``path`` now, but free its blocks and page cache on a background thread.

    The name is gone when this returns (a listing no longer shows it); the expensive part of
    deleting a large file -- evicting its pages and freeing its extents, which happens when
    the last reference goes -- runs on the reaper thread instead of in a request, the way a
    real object store garbage-collects after it has answered.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except BaseException:
        os.close(fd)
        raise
    global _reaper
    with _reaper_lock:
        if _reaper is None or not _reaper.is_alive():
            _reaper = threading.Thread(target=_reap_forever, name="store-reaper", daemon=True)
            _reaper.start()
    _reap_queue.put(fd)


class StoreError(Exception):
    """A request the store refuses; carries the HTTP status and a GCS-style message."""

    def __init__(
        self,
        status: int,
        message: str,
        reason: str = "invalid",
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason
        self.headers = headers
        """Extra response headers (``Allow`` on a 405)."""


def not_allowed(method: str, where: str, allowed: Iterable[str]) -> StoreError:
    """The 405 for ``method`` on a known path ``where``, with an ``Allow`` header."""
    allow = ", ".join(sorted(allowed))
    return StoreError(
        405,
        f"Method {method} is not allowed on {where}: use {allow}.",
        "methodNotAllowed",
        (("Allow", allow),),
    )


@dataclasses.dataclass
class Hashes:
    """Running CRC32C and (optionally) MD5 of a byte stream."""

    crc: int = 0
    md5: Any = dataclasses.field(default_factory=hashlib.md5)
    size: int = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        """Feed bytes to both hashes."""
        if not isinstance(data, bytes):
            data = bytes(data)  # google-crc32c rejects memoryview/bytearray arguments
        self.crc = google_crc32c.extend(self.crc, data)
        if self.md5 is not None:
            self.md5.update(data)
        self.size += len(data)

    def crc_b64(self) -> str:
        """CRC32C as GCS shows it."""
        return crc32c_b64(self.crc)

    def md5_b64(self) -> str | None:
        """MD5 in base64, or None when not tracked (composite objects)."""
        if self.md5 is None:
            return None
        return base64.b64encode(self.md5.digest()).decode("ascii")


OBJECT_WRITABLE = frozenset(
    {
        "cacheControl",
        "contentDisposition",
        "contentEncoding",
        "contentLanguage",
        "contentType",
        "customTime",
        "eventBasedHold",
        "metadata",
        "retention",
        "temporaryHold",
    }
)
"""Object resource fields a client may set (``acl`` lives in the server's ACL store)."""


@dataclasses.dataclass
class KnownHashes(Hashes):
    """Hashes already known (a server-side copy keeps its source's CRC32C and MD5)."""

    md5_text: str | None = None

    def md5_b64(self) -> str | None:
        """The MD5 given, if any."""
        return self.md5_text

    @classmethod
    def of(cls, obj: StoredObject) -> KnownHashes:
        """The hashes of a stored object."""
        crc = int.from_bytes(base64.b64decode(obj.crc32c), "big")
        return cls(crc=crc, md5=None, size=obj.size, md5_text=obj.md5)


@dataclasses.dataclass(frozen=True)
class ObjectMeta:
    """User-settable object metadata; ``extra`` holds the other writable fields, as given."""

    content_type: str = "application/octet-stream"
    content_encoding: str | None = None
    cache_control: str | None = None
    metadata: Mapping[str, str] | None = None
    extra: Mapping[str, Any] | None = None

    def fields(self) -> dict[str, Any]:
        """The writable fields as they appear in the object resource."""
        out: dict[str, Any] = dict(self.extra or {})
        out["contentType"] = self.content_type
        if self.content_encoding:
            out["contentEncoding"] = self.content_encoding
        if self.cache_control:
            out["cacheControl"] = self.cache_control
        if self.metadata:
            out["metadata"] = dict(self.metadata)
        return out

    @classmethod
    def from_fields(cls, doc: Mapping[str, Any]) -> ObjectMeta:
        """Build from resource fields (unknown and read-only fields are ignored).

        Raises:
            StoreError: 400 when ``metadata`` is not an object of strings.
        """
        metadata = doc.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            raise StoreError(400, "Invalid value for metadata: expected an object.")
        extra = {
            k: v
            for k, v in doc.items()
            if k in OBJECT_WRITABLE
            and k not in ("contentType", "contentEncoding", "cacheControl", "metadata")
            and v is not None
        }
        return cls(
            content_type=doc.get("contentType") or "application/octet-stream",
            content_encoding=doc.get("contentEncoding") or None,
            cache_control=doc.get("cacheControl") or None,
            metadata={str(k): str(v) for k, v in metadata.items() if v is not None} or None
            if metadata
            else None,
            extra=extra or None,
        )

    def patched(self, doc: Mapping[str, Any]) -> ObjectMeta:
        """Patch semantics (:func:`merge_patch`), ``metadata`` merged by key."""
        writable = {k: v for k, v in doc.items() if k in OBJECT_WRITABLE}
        return ObjectMeta.from_fields(merge_patch(self.fields(), writable, "metadata"))


def merge_patch(fields: Mapping[str, Any], doc: Mapping[str, Any], by_key: str) -> dict[str, Any]:
    """A resource's fields after a JSON API ``patch``: given fields replace, ``null`` clears,
    and the map field ``by_key`` (``metadata``, ``labels``) merges key by key, ``null``
    removing a key."""
    out = dict(fields)
    for key, value in doc.items():
        if key == by_key and isinstance(value, dict):
            merged = {**(out.get(key) or {}), **value}
            out[key] = {k: v for k, v in merged.items() if v is not None}
        elif value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


@dataclasses.dataclass(frozen=True)
class StoredObject:
    """One published generation of an object; ``path`` is immutable once published."""

    bucket: str
    name: str
    generation: int
    metageneration: int
    size: int
    crc32c: str
    md5: str | None
    meta: ObjectMeta
    path: pathlib.Path
    created: float
    component_count: int | None = None
    updated: float | None = None

    def etag(self) -> str:
        """An etag that changes with generation and metageneration."""
        raw = f"{self.generation}/{self.metageneration}".encode()
        return base64.b64encode(hashlib.md5(raw).digest()[:9]).decode("ascii")

    def goog_hash(self) -> str:
        """The ``x-goog-hash`` value of the whole stored object."""
        return f"crc32c={self.crc32c}" + (f",md5={self.md5}" if self.md5 else "")

    def resource(self, base_url: str) -> dict[str, Any]:
        """The JSON API object resource, links built from ``base_url``."""
        from urllib.parse import quote

        qname = quote(self.name, safe="")
        self_link = f"{base_url}/storage/v1/b/{self.bucket}/o/{qname}"
        media = (
            f"{base_url}/download/storage/v1/b/{self.bucket}/o/{qname}"
            f"?generation={self.generation}&alt=media"
        )
        stamp = rfc3339(self.created)
        res: dict[str, Any] = dict(self.meta.extra or {})
        res.update(
            {
                "kind": "storage#object",
                "id": f"{self.bucket}/{self.name}/{self.generation}",
                "selfLink": self_link,
                "mediaLink": media,
                "name": self.name,
                "bucket": self.bucket,
                "generation": str(self.generation),
                "metageneration": str(self.metageneration),
                "contentType": self.meta.content_type,
                "storageClass": "STANDARD",
                "size": str(self.size),
                "crc32c": self.crc32c,
                "etag": self.etag(),
                "timeCreated": stamp,
                "updated": rfc3339(self.updated) if self.updated else stamp,
                "timeStorageClassUpdated": stamp,
            }
        )
        if self.md5 is not None:
            res["md5Hash"] = self.md5
        if self.component_count is not None:
            res["componentCount"] = self.component_count
        if self.meta.content_encoding:
            res["contentEncoding"] = self.meta.content_encoding
        if self.meta.cache_control:
            res["cacheControl"] = self.meta.cache_control
        if self.meta.metadata:
            res["metadata"] = dict(self.meta.metadata)
        return res


@dataclasses.dataclass(frozen=True)
class Preconditions:
    """ifGenerationMatch & co. (None = not given)."""

    if_generation_match: int | None = None
    if_generation_not_match: int | None = None
    if_metageneration_match: int | None = None
    if_metageneration_not_match: int | None = None

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> Preconditions:
        """Read the four precondition parameters from a query string.

        Raises:
            StoreError: 400 when a value is not an integer.
        """
        values: dict[str, int | None] = {}
        for field, param in (
            ("if_generation_match", "ifGenerationMatch"),
            ("if_generation_not_match", "ifGenerationNotMatch"),
            ("if_metageneration_match", "ifMetagenerationMatch"),
            ("if_metageneration_not_match", "ifMetagenerationNotMatch"),
        ):
            values[field] = int_param(query, param)
        return cls(**values)

    def check(self, current: StoredObject | None) -> None:
        """Raise a 412 StoreError when a precondition does not hold."""
        gen = current.generation if current else 0
        ok = True
        if self.if_generation_match is not None:
            ok = ok and gen == self.if_generation_match
        if self.if_generation_not_match is not None:
            ok = ok and gen != self.if_generation_not_match
        if self.if_metageneration_match is not None:
            ok = (
                ok
                and current is not None
                and current.metageneration == self.if_metageneration_match
            )
        if self.if_metageneration_not_match is not None:
            ok = ok and (
                current is None or current.metageneration != self.if_metageneration_not_match
            )
        if not ok:
            raise precondition_failed()

    def check_metageneration(self, metageneration: int) -> None:
        """Raise a 412 StoreError when a metageneration precondition does not hold."""
        match, not_match = self.if_metageneration_match, self.if_metageneration_not_match
        if (match is not None and match != metageneration) or (
            not_match is not None and not_match == metageneration
        ):
            raise precondition_failed()


def precondition_failed() -> StoreError:
    """The 412 GCS answers when a precondition does not hold."""
    return StoreError(
        412, "At least one of the pre-conditions you specified did not hold.", "conditionNotMet"
    )


BUCKET_READ_ONLY = frozenset(
    {
        "kind",
        "id",
        "name",
        "selfLink",
        "projectNumber",
        "metageneration",
        "etag",
        "timeCreated",
        "updated",
    }
)
"""Bucket resource fields the server sets; everything else a client sends is stored as given."""


@dataclasses.dataclass(frozen=True)
class Bucket:
    """A bucket: its name, metageneration and the client-settable fields, stored as given."""

    name: str
    created: float
    metageneration: int = 1
    fields: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    updated: float | None = None
    project: str | None = None
    """The project it was created in; None (made by a test helper) belongs to every project."""

    def resource(self) -> dict[str, Any]:
        """The JSON API bucket resource."""
        stamp = rfc3339(self.created)
        etag = base64.b64encode(f"{self.name}/{self.metageneration}".encode()).decode("ascii")
        res: dict[str, Any] = {"location": "US", "storageClass": "STANDARD"}
        res.update(self.fields)
        res.update(
            {
                "kind": "storage#bucket",
                "id": self.name,
                "selfLink": f"/storage/v1/b/{self.name}",
                "name": self.name,
                "projectNumber": "0",
                "metageneration": str(self.metageneration),
                "etag": etag,
                "timeCreated": stamp,
                "updated": rfc3339(self.updated) if self.updated else stamp,
            }
        )
        return res


class Store:
    """Buckets and objects on disk; thread-safe."""

    def __init__(self, root: pathlib.Path) -> None:
        self.root = root
        self.objects_dir = root / "objects"
        self.tmp_dir = root / "tmp"
        self.objects_dir.mkdir(parents=True, exist_ok=True)
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._buckets: dict[str, Bucket] = {}
        self._objects: dict[tuple[str, str], StoredObject] = {}
        self._last_generation = 0
        self._tmp_counter = itertools.count()

    # -- buckets ---------------------------------------------------------------------------
    def create_bucket(
        self,
        name: str,
        *,
        exist_ok: bool = True,
        fields: Mapping[str, Any] | None = None,
        project: str | None = None,
    ) -> Bucket:
        """Create a bucket (in ``project``); 409 when it exists and ``exist_ok`` is false."""
        with self._lock:
            if name in self._buckets:
                if exist_ok:
                    return self._buckets[name]
                raise StoreError(
                    409,
                    "Your previous request to create the named bucket succeeded and you "
                    "already own it.",
                    "conflict",
                )
            settable = {k: v for k, v in (fields or {}).items() if k not in BUCKET_READ_ONLY}
            bucket = Bucket(name, time.time(), fields=settable, project=project)
            self._buckets[name] = bucket
            return bucket

    def list_buckets(self, prefix: str = "", project: str | None = None) -> list[Bucket]:
        """Buckets whose name starts with ``prefix``, sorted by name; with ``project``, only
        that project's (and those made without one)."""
        with self._lock:
            found = [
                b
                for n, b in self._buckets.items()
                if n.startswith(prefix) and (project is None or b.project in (None, project))
            ]
        return sorted(found, key=lambda b: b.name)

    def update_bucket(
        self, name: str, pre: Preconditions, change: Callable[[Bucket], Mapping[str, Any]]
    ) -> Bucket:
        """Replace a bucket's settable fields with ``change(bucket)``; metageneration + 1.

        Raises:
            StoreError: 404 for a missing bucket, 412 for failed preconditions.
        """
        with self._lock:
            self._check_bucket_locked(name)
            old = self._buckets[name]
            pre.check_metageneration(old.metageneration)
            fields = {k: v for k, v in change(old).items() if k not in BUCKET_READ_ONLY}
            new = dataclasses.replace(
                old, fields=fields, metageneration=old.metageneration + 1, updated=time.time()
            )
            self._buckets[name] = new
            return new

    def delete_bucket(self, name: str, pre: Preconditions) -> None:
        """Delete an empty bucket.

        Raises:
            StoreError: 404 for a missing bucket, 412 for failed preconditions, 409 when the
                bucket still holds objects.
        """
        with self._lock:
            self._check_bucket_locked(name)
            pre.check_metageneration(self._buckets[name].metageneration)
            if any(b == name for b, _ in self._objects):
                raise StoreError(409, "The bucket you tried to delete is not empty.", "conflict")
            del self._buckets[name]

    def update_object(
        self,
        bucket: str,
        name: str,
        generation: int | None,
        pre: Preconditions,
        change: Callable[[StoredObject], ObjectMeta],
    ) -> StoredObject:
        """Give the live object new metadata: same generation and bytes, metageneration + 1.

        Raises:
            StoreError: 404 for a missing bucket, object or generation; 412 for failed
                preconditions.
        """
        with self._lock:
            self._check_bucket_locked(bucket)
            obj = self._objects.get((bucket, name))
            if obj is None or (generation is not None and obj.generation != generation):
                raise StoreError(404, f"No such object: {bucket}/{name}", "notFound")
            pre.check(obj)
            new = dataclasses.replace(
                obj, meta=change(obj), metageneration=obj.metageneration + 1, updated=time.time()
            )
            self._objects[(bucket, name)] = new
            return new

    def get_bucket(self, name: str) -> Bucket:
        """The bucket, or a 404 StoreError."""
        with self._lock:
            bucket = self._buckets.get(name)
        if bucket is None:
            raise StoreError(404, "The specified bucket does not exist.", "notFound")
        return bucket

    # -- objects ---------------------------------------------------------------------------
    def get(self, bucket: str, name: str, generation: int | None = None) -> StoredObject:
        """The live object (or the pinned generation), else a 404 StoreError."""
        self.get_bucket(bucket)
        with self._lock:
            obj = self._objects.get((bucket, name))
        if obj is None or (generation is not None and obj.generation != generation):
            raise StoreError(404, f"No such object: {bucket}/{name}", "notFound")
        return obj

    def peek(self, bucket: str, name: str) -> StoredObject | None:
        """The live object or None (no bucket check)."""
        with self._lock:
            return self._objects.get((bucket, name))

    def list(self, bucket: str, prefix: str = "") -> list[StoredObject]:
        """Live objects whose name starts with ``prefix``, sorted by name."""
        self.get_bucket(bucket)
        with self._lock:
            found = [
                o for (b, n), o in self._objects.items() if b == bucket and n.startswith(prefix)
            ]
        return sorted(found, key=lambda o: o.name)

    def delete(self, bucket: str, name: str, pre: Preconditions, generation: int | None) -> None:
        """Delete the live object (404 when missing, 412 on failed preconditions)."""
        with self._lock:
            obj = self._objects.get((bucket, name))
            if obj is None or (generation is not None and obj.generation != generation):
                self._check_bucket_locked(bucket)
                raise StoreError(404, f"No such object: {bucket}/{name}", "notFound")
            pre.check(obj)
            del self._objects[(bucket, name)]
        obj.path.unlink(missing_ok=True)

    def _check_bucket_locked(self, bucket: str) -> None:
        if bucket not in self._buckets:
            raise StoreError(404, "The specified bucket does not exist.", "notFound")

    def new_temp(self) -> pathlib.Path:
        """A fresh path in the temp directory (same filesystem as the objects)."""
        return self.tmp_dir / f"{os.getpid()}-{next(self._tmp_counter)}.part"

    def publish(
        self,
        bucket: str,
        name: str,
        temp: pathlib.Path,
        hashes: Hashes,
        meta: ObjectMeta,
        pre: Preconditions,
        component_count: int | None = None,
    ) -> StoredObject:
        """Atomically make the complete file ``temp`` the new live generation of the object.

        Raises:
            StoreError: 404 for a missing bucket, 412 for failed preconditions; ``temp`` is
                removed in that case.
        """
        try:
            with self._lock:
                self._check_bucket_locked(bucket)
                old = self._objects.get((bucket, name))
                pre.check(old)
                generation = max(time.time_ns() // 1000, self._last_generation + 1)
                self._last_generation = generation
                final = self.objects_dir / f"{generation}.bin"
                os.replace(temp, final)
                obj = StoredObject(
                    bucket=bucket,
                    name=name,
                    generation=generation,
                    metageneration=1,
                    size=hashes.size,
                    crc32c=hashes.crc_b64(),
                    md5=hashes.md5_b64(),
                    meta=meta,
                    path=final,
                    created=time.time(),
                    component_count=component_count,
                )
                self._objects[(bucket, name)] = obj
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        if old is not None:
            # Open readers keep their file descriptor; the name goes away (no versioning).
            discard_file(old.path)
        return obj

    def put_file(
        self,
        bucket: str,
        name: str,
        source: BinaryIO,
        meta: ObjectMeta,
        pre: Preconditions | None = None,
    ) -> StoredObject:
        """Copy a readable stream into a new generation of the object."""
        temp = self.new_temp()
        hashes = Hashes()
        try:
            with open(temp, "wb") as out:
                buf = bytearray(COPY_BLOCK)
                view = memoryview(buf)
                while True:
                    n = source.readinto(view)  # type: ignore[attr-defined]
                    if not n:
                        break
                    hashes.update(view[:n])
                    out.write(view[:n])
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return self.publish(bucket, name, temp, hashes, meta, pre or Preconditions())


@dataclasses.dataclass
class ListingPage:
    """One page of a listing: objects, common prefixes, and where the next page starts."""

    objects: list[StoredObject]
    prefixes: list[str]
    next_after: str | None


def page(
    objects: Iterable[StoredObject], prefix: str, delimiter: str, after: str, limit: int
) -> ListingPage:
    """Cut one page from ``objects`` (sorted by name, all starting with ``prefix``).

    Names after ``after`` are taken in order; with a ``delimiter``, names holding it after the
    prefix roll up into one common prefix each. Objects and prefixes together count towards
    ``limit``.
    """
    result = ListingPage([], [], None)
    last = ""
    for obj in objects:
        if obj.name <= after:
            continue
        rolled = None
        if delimiter:
            cut = obj.name.find(delimiter, len(prefix))
            if cut >= 0:
                rolled = obj.name[: cut + len(delimiter)]
                if result.prefixes and result.prefixes[-1] == rolled:
                    continue
        if len(result.objects) + len(result.prefixes) >= limit:
            result.next_after = last
            break
        if rolled is not None:
            result.prefixes.append(rolled)
            last = rolled + AFTER_PREFIX  # the next page skips everything under it
        else:
            result.objects.append(obj)
            last = obj.name
    return result
