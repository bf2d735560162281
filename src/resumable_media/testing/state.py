"""Shared mutable state of one loopback server: store, sessions, fault registry, request log.

Invariants: every collection here has its own lock and is only touched under it; the request
log is bounded; counters only grow. Nothing here performs I/O on sockets.
"""

from __future__ import annotations

import collections
import dataclasses
import io
import pathlib
import threading
from collections.abc import Callable

from .exchange import Exchange, RequestRecord
from .faults import Fault, RetryTests, parse_header_instruction
from .follow import FollowHasher
from .resources import AclStore, HmacKeys, IamPolicies, Notifications
from .rewrite import RewriteJobs
from .store import Hashes, ObjectMeta, Preconditions, Store, StoredObject, StoreError

REQUEST_LOG_SIZE = 10_000


@dataclasses.dataclass
class UploadSession:
    """A resumable upload session; ``lock`` serialises requests on it."""

    upload_id: str
    bucket: str
    name: str
    meta: ObjectMeta
    pre: Preconditions
    temp: pathlib.Path
    declared_size: int | None
    persisted: int = 0
    poison: str | None = None
    result: StoredObject | None = None
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    with_md5: bool = True
    hasher: FollowHasher = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self.hasher = FollowHasher(self.temp, with_md5=self.with_md5)


@dataclasses.dataclass
class StoredPart:
    """One received XML multipart-upload part: ``size`` bytes of ``path`` from ``offset``."""

    path: pathlib.Path
    offset: int
    crc: int
    md5_hex: str
    size: int


@dataclasses.dataclass
class MultipartUpload:
    """An XML API multipart upload.

    Parts whose size equals the upload's ``stride`` (the size of the first part to arrive)
    are written straight into ``assembly`` at ``(number - 1) * stride``; others, and
    re-uploads of a part number, go to files of their own.  When the completed list is parts
    1..K, all in place, every one but the last exactly ``stride`` long, the assembly file
    simply becomes the object (no copy); otherwise the parts are copied together.
    """

    upload_id: str
    bucket: str
    name: str
    meta: ObjectMeta
    parts: dict[int, StoredPart] = dataclasses.field(default_factory=dict)
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    assembly: pathlib.Path | None = None
    stride: int | None = None
    writing: set[int] = dataclasses.field(default_factory=set)
    closed: bool = False
    """Set (under ``lock``) once the upload is completed or aborted: late parts are refused."""

    def own_files(self) -> set[pathlib.Path]:
        """Every file this upload holds (parts of their own and the assembly file)."""
        files = {part.path for part in self.parts.values()}
        if self.assembly is not None:
            files.add(self.assembly)
        return files


class FaultSource:
    """Faults available to one request: its Retry Test queue and/or its instruction header."""

    def __init__(self, state: ServerState, test_id: str | None, header: str | None) -> None:
        self._state = state
        self._test_id = test_id
        self._header: Fault | None = None
        if header:
            self._header = parse_header_instruction(header)
        self.method = ""

    @property
    def active(self) -> bool:
        """True when this request could receive a fault at all."""
        return self._test_id is not None or self._header is not None

    def immediate(self, ex: Exchange) -> bool:
        """Apply a ``return-NNN`` / ``return-reset-connection`` fault; True when one fired."""
        if not self.active:
            return False
        fault = self.take(lambda f: f.kind in ("status", "reset"))
        if fault is None:
            return False
        if fault.kind == "reset":
            ex.reset()
        else:
            ex.finish_body()
            ex.error(fault.status, f"Retry Test: injected {fault.text}", "backendError")
        return True

    def take(self, applies: Callable[[Fault], bool]) -> Fault | None:
        """Consume the next applicable fault for this request's method, if any."""
        if self._test_id is not None and self.method:
            fault = self._state.retry_tests.take(self._test_id, self.method, applies)
            if fault is not None:
                return fault
        if self._header is not None and applies(self._header):
            fault, self._header = self._header, None
            return fault
        return None


class ServerState:
    """Everything the request handlers share."""

    def __init__(self, root: pathlib.Path, *, upload_md5: bool = True) -> None:
        self.store = Store(root)
        self.upload_md5 = upload_md5
        self.retry_tests = RetryTests()
        self.sessions: dict[str, UploadSession] = {}
        self.mpu: dict[str, MultipartUpload] = {}
        self.rewrites = RewriteJobs()
        self.acls = AclStore()
        self.iam = IamPolicies()
        self.notifications = Notifications()
        self.hmac = HmacKeys()
        self.lock = threading.Lock()
        self._log: collections.deque[RequestRecord] = collections.deque(maxlen=REQUEST_LOG_SIZE)
        self._log_lock = threading.Condition()
        self._media_bytes = 0
        self._media_by_bucket: dict[str, int] = {}

    def open_object(
        self, bucket: str, name: str, generation: int | None
    ) -> tuple[StoredObject, io.BufferedReader]:
        """Resolve and open an object; retries when a concurrent write replaces it.

        Raises:
            StoreError: 404 for a missing bucket, object or generation.
        """
        for _ in range(8):
            obj = self.store.get(bucket, name, generation)
            try:
                return obj, open(obj.path, "rb")
            except FileNotFoundError:
                continue
        raise StoreError(404, f"No such object: {bucket}/{name}", "notFound")

    def upload_hashes(self, client_sent_md5: bool = False) -> Hashes:
        """Hashes for an upload: MD5 is tracked unless the server runs without upload MD5
        (benchmark mode) and the client sent no MD5 to check."""
        return Hashes() if self.upload_md5 or client_sent_md5 else Hashes(md5=None)

    def record(self, rec: RequestRecord) -> None:
        """Append to the bounded request log."""
        with self._log_lock:
            self._log.append(rec)
            self._log_lock.notify_all()

    def requests(self) -> list[RequestRecord]:
        """Snapshot of the request log, newest last."""
        with self._log_lock:
            return list(self._log)

    def wait_for_requests(self, count: int, timeout_s: float) -> list[RequestRecord]:
        """Snapshot of the log once it holds at least ``count`` records (or at the timeout)."""
        with self._log_lock:
            self._log_lock.wait_for(lambda: len(self._log) >= count, timeout_s)
            return list(self._log)

    def clear_requests(self) -> None:
        """Empty the request log."""
        with self._log_lock:
            self._log.clear()

    def count_media(self, n: int, bucket: str) -> None:
        """Add to the media-bytes-sent counters (the total and ``bucket``'s)."""
        with self._log_lock:
            self._media_bytes += n
            self._media_by_bucket[bucket] = self._media_by_bucket.get(bucket, 0) + n

    def media_bytes_sent_for(self, bucket: str) -> int:
        """Media body bytes sent by downloads from ``bucket``."""
        with self._log_lock:
            return self._media_by_bucket.get(bucket, 0)

    @property
    def media_bytes_sent(self) -> int:
        """Total media body bytes sent by downloads."""
        with self._log_lock:
            return self._media_bytes
