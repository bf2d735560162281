"""ParallelUpload: an XML multipart upload whose parts are sent by the worker pool.

Invariants:
- Each worker maps its part of the source file read-only and sends it straight from the
  mapping with ``x-goog-hash: crc32c=`` (the server rejects a corrupted part); nothing
  holds a whole part in anonymous memory.
- The part CRCs are combined locally, in order, and compared with the final object's
  crc32c (read with a HEAD after completion); a mismatch raises ``DataCorruption``.
- Any failure before completion aborts the multipart upload (``DELETE ?uploadId``), so
  nothing half-made is left behind; that includes a source file whose identity
  (``_source``) changed between the first part and completion (``SourceChanged``).
- A completed object that fails its check is deleted (that generation only), or the error
  says that it exists and is wrong.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from typing import Any

from resumable_media import checksums, common
from resumable_media._protocol import checks
from resumable_media._protocol.request import RequestSpec
from resumable_media._protocol.xml_mpu import XMLMPUContainerProtocol
from resumable_media._source import SourceChanged, SourceIdentity, check_unchanged, identity_of
from resumable_media._transport import (
    DEFAULT_RETRY,
    DEFAULT_TIMEOUT,
    Timeout,
    Transport,
    TransportFactory,
    TransportSource,
    describe_error,
    own_retry,
    round_trip,
    send,
    transport_source,
)
from resumable_media.parallel.messages import JobDone, JobFailed, JobMessage
from resumable_media.parallel.plan import (
    DEFAULT_PART_SIZE,
    DEFAULT_UPLOAD_THREADS,
    Chunk,
    PartJob,
    TransferResult,
    balanced_part_size,
    connections_for,
    first_byte_seconds,
    headers_tuple,
    plan_chunks,
)
from resumable_media.parallel.pool import DEFAULT_START_METHOD, default_workers, get_pool
from resumable_media.parallel.progress import ProgressCallback, ProgressTracker
from resumable_media.parallel.scheduler import Scheduler
from resumable_media.parallel.worker import run_job, transport_for

__all__ = ["ParallelUpload"]

_LOGGER = logging.getLogger(__name__)

MAX_PARTS = 10_000
"""int: The XML API's limit on parts per upload."""


class _Parts:
    """Collects part results for the scheduler (and counts them into the progress)."""

    def __init__(self, count: int, tracker: ProgressTracker) -> None:
        self.etags: list[str | None] = [None] * count
        self.crcs: list[int] = [0] * count
        self.tracker = tracker

    def on_progress(self, index: int, done: int, crc: int) -> None:
        """Parts report only on completion."""

    def on_done(self, index: int, done: int, crc: int, extra: Any) -> None:
        self.etags[index] = str(extra)
        self.crcs[index] = crc
        self.tracker.set(index, done)

    def on_tick(self) -> None:
        self.tracker.tick()


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class _Layout:
    """The source as the upload began: its identity (None if unknown), size and parts."""

    identity: SourceIdentity | None
    size: int
    parts: list[Chunk]


def _one_custom_metadata(
    metadata: dict[str, str] | None, custom_metadata: dict[str, str] | None
) -> dict[str, str] | None:
    """The custom metadata, given under its new name or its old one (not both)."""
    if metadata is not None and custom_metadata is not None:
        raise TypeError(
            "ParallelUpload.transmit takes the custom metadata once: pass "
            "custom_metadata= (metadata= is its old spelling), not both"
        )
    return custom_metadata if custom_metadata is not None else metadata


class ParallelUpload:
    """Upload a file as an XML multipart upload, parts in parallel.

    Args:
        upload_url: The XML object URL (``{endpoint}/{bucket}/{name}``).
        filename: The file to upload.
        part_size: The largest part: parts shrink (not below 8 MiB) so that every
            connection has one (``plan.balanced_part_size``), and grow to stay within
            10 000 parts.
        processes: Worker processes (0: threads in this process; None: the default).
        threads_per_process: Parts in flight per process (None: ``DEFAULT_UPLOAD_THREADS``).
        checksum: "crc32c" (default, compared with the final object) or None.
        headers: Extra headers for every request.
        retry: The retry policy (default: a fresh default RetryStrategy;
            None: a single attempt, as everywhere in the package).
        timeout: Seconds to wait: one number, a (connect, read) pair, or None.
        start_method: The multiprocessing start method for worker processes.

    Raises:
        ValueError: On a non-positive part size or an unsupported checksum.
    """

    def __init__(
        self,
        upload_url: str,
        filename: str | os.PathLike[str],
        *,
        part_size: int = DEFAULT_PART_SIZE,
        processes: int | None = None,
        threads_per_process: int | None = None,
        checksum: common.Checksum = "crc32c",
        headers: dict[str, str] | None = None,
        retry: common.RetryStrategy | None = DEFAULT_RETRY,
        timeout: Timeout = DEFAULT_TIMEOUT,
        start_method: str = DEFAULT_START_METHOD,
    ) -> None:
        if part_size <= 0:
            raise ValueError(f"part_size must be positive, got {part_size}")
        if checksum not in ("crc32c", "auto", None):
            raise ValueError(
                f"checksum must be 'crc32c' or None for multipart uploads (multipart objects "
                f"have no MD5), got {checksum!r}"
            )
        default_processes, _download_threads = default_workers()
        self.upload_url = upload_url
        self.filename = os.fspath(filename)
        self.part_size = part_size
        self.processes = default_processes if processes is None else processes
        self.threads_per_process = threads_per_process or DEFAULT_UPLOAD_THREADS
        # A default upload sizes its parts in flight by the initiate's round trip.
        self._adaptive = threads_per_process is None
        self.checksum = checksum
        self.headers = headers_tuple(headers)
        self.retry = own_retry(retry)
        self.timeout = timeout
        self.start_method = start_method
        self.upload_id: str | None = None

    def transmit(
        self,
        transport_factory: TransportFactory | Transport,
        content_type: str,
        metadata: dict[str, str] | None = None,
        *,
        custom_metadata: dict[str, str] | None = None,
        progress: ProgressCallback | None = None,
    ) -> TransferResult:
        """Run the upload.

        Args:
            transport_factory: A picklable zero-argument transport factory, or (when
                everything runs in this process, ``processes=0``) a session.
            content_type: The object's content type.
            metadata: The old spelling of ``custom_metadata`` (elsewhere in the package
                ``metadata`` is the object resource); give one of the two.
            custom_metadata: The object's custom metadata (sent as ``x-goog-meta-*``).
            progress: ``progress(bytes_done, total)`` (see :mod:`resumable_media.callbacks`):
                the bytes of the parts the server has acknowledged, at most 5 times a second
                and once when the last part is in (``bytes_done == total``).

        Returns:
            The result (``headers`` holds the final object's response headers).

        Raises:
            InvalidResponse: The server refused a request (the upload is aborted).
            DataCorruption: The final object's CRC32C differs from the parts' combined CRC.
            TypeError: A session, or a factory that cannot be pickled, with
                ``processes > 0``; an object that is neither a factory nor a session.
        """
        custom = _one_custom_metadata(metadata, custom_metadata)
        began = time.monotonic()
        factory = transport_source(
            transport_factory, processes=self.processes, owner="ParallelUpload"
        )
        transport = transport_for(factory)
        # Measured before initiating: a missing file fails before any request.
        identity = identity_of(self.filename)
        size = identity.size if identity is not None else os.path.getsize(self.filename)
        container, first_byte = self._initiate(transport, content_type, custom)
        threads = self._threads_for(first_byte)
        layout = self._layout(threads, identity, size)
        tracker = ProgressTracker(progress, layout.size)
        collected = self._parts_then_complete(
            transport, factory, container, layout, tracker, threads
        )
        crc = checksums.crc32c_combine_many(
            (crc, part.length) for crc, part in zip(collected.crcs, layout.parts, strict=True)
        )
        try:
            return self._result(
                transport, container, layout.size, checksums.crc32c_to_b64(crc), began
            )
        except common.DataCorruption as exc:
            raise self._remove_bad_object(transport, container, exc) from None

    def _threads_for(self, first_byte: float | None) -> int:
        """Parts in flight: the default is sized by the initiate's round trip."""
        if not self._adaptive or self.processes != 0:
            return self.threads_per_process
        threads = connections_for(first_byte, self.threads_per_process)
        _LOGGER.debug(
            "%d parts in flight (initiate answered after %s)",
            threads,
            "?" if first_byte is None else f"{first_byte * 1000:.2f} ms",
        )
        return threads

    def _layout(self, threads: int, identity: SourceIdentity | None, size: int) -> _Layout:
        """The parts ``size`` bytes are cut into for ``threads`` in flight."""
        connections = threads * max(1, self.processes)
        balanced = balanced_part_size(size, self.part_size, connections)
        part_size = max(balanced, -(-size // MAX_PARTS))
        parts = plan_chunks(0, size - 1, part_size) or [Chunk(index=0, start=0, end=-1, offset=0)]
        return _Layout(identity=identity, size=size, parts=parts)

    def _initiate(
        self, transport: Any, content_type: str, custom: dict[str, str] | None
    ) -> tuple[XMLMPUContainerProtocol, float | None]:
        """Start the multipart upload; the container then holds its upload id.

        Returns:
            The container, and the seconds its answer's headers took (when known).
        """
        container = XMLMPUContainerProtocol(self.upload_url, self.filename, dict(self.headers))
        response = self._round_trip(
            transport,
            container._prepare_initiate_request(content_type, custom),
            lambda r: container._process_initiate_response(r, r.status_code, r.content),
        )
        self.upload_id = container.upload_id
        return container, first_byte_seconds(response)

    def _parts_then_complete(
        self,
        transport: Any,
        factory: TransportSource,
        container: XMLMPUContainerProtocol,
        layout: _Layout,
        tracker: ProgressTracker,
        threads: int,
    ) -> _Parts:
        """Send every part and complete the upload; on any failure, abort it and re-raise."""
        try:
            collected = self._send_parts(transport, factory, layout.parts, tracker, threads)
            collected.tracker.tick(force=True)
            for number, etag in enumerate(collected.etags, start=1):
                container.register_part(number, str(etag))
            # Completing creates the object: only for the file as it was when parts began.
            self._check_unchanged(layout.identity)
            self._round_trip(
                transport,
                container._prepare_finalize_request(),
                lambda r: container._process_finalize_response(r, r.status_code),
            )
        except BaseException as exc:
            self._abort(transport, container)
            if isinstance(exc, Exception) and not isinstance(exc, SourceChanged):
                # A part the server rejected (its bytes no longer match the hash taken a
                # moment before) is, first of all, a source that changed: say that.
                try:
                    self._check_unchanged(layout.identity)
                except SourceChanged as changed:
                    raise changed from exc
            raise
        return collected

    def _check_unchanged(self, identity: SourceIdentity | None) -> None:
        """Raise ``SourceChanged`` if the file is no longer the one the parts came from."""
        check_unchanged(self.filename, identity, label=self.filename, destination=self.upload_url)

    def _remove_bad_object(
        self, transport: Any, container: XMLMPUContainerProtocol, error: common.DataCorruption
    ) -> common.DataCorruption:
        """The completed object failed its check: delete that generation, or say it stays."""
        headers = getattr(error.response, "headers", None) or {}
        generation = headers.get("x-goog-generation")
        outcome = f"the object at {self.upload_url} exists and is wrong; delete it"
        try:
            response = send(
                transport, container.prepare_delete_generation(generation), self.timeout
            )
            if response.status_code in (200, 204):
                outcome = f"the object it created at {self.upload_url} was deleted"
        except Exception as exc:
            _LOGGER.warning("could not delete %s: %s", self.upload_url, describe_error(exc))
        message = error.args[0] if error.args else "the upload did not verify"
        return common.DataCorruption(error.response, f"{message}; {outcome}")

    def _result(
        self,
        transport: Any,
        container: XMLMPUContainerProtocol,
        size: int,
        crc_b64: str,
        began: float,
    ) -> TransferResult:
        """Read the completed object's headers, compare its CRC32C, build the result."""
        remote: list[str | None] = []

        def process(response: Any) -> None:
            remote.append(
                container._process_object_response(response, response.status_code, response.headers)
            )

        response = self._round_trip(transport, container._prepare_object_request(), process)
        final = {key.lower(): value for key, value in response.headers.items()}
        verified = False
        if self.checksum is not None and remote[-1] is not None:
            if remote[-1] != crc_b64:
                raise checks.upload_mismatch(response, "crc32c", crc_b64, remote[-1])
            verified = True
        generation = final.get("x-goog-generation")
        return TransferResult.since(
            began,
            bytes=size,
            crc32c=crc_b64,
            md5=None,
            verified=verified,
            generation=int(generation) if generation else None,
            headers=final,
        )

    def _round_trip(self, transport: Any, spec: RequestSpec, process: Any) -> Any:
        return round_trip(transport, spec, self.timeout, process, self.retry)

    def _send_parts(
        self,
        transport: Any,
        factory: TransportSource,
        parts: list[Chunk],
        tracker: ProgressTracker,
        threads: int,
    ) -> _Parts:
        assert self.upload_id is not None
        upload_id = self.upload_id
        collected = _Parts(len(parts), tracker)

        def job(part: Chunk, tid: int) -> PartJob:
            return PartJob(
                transfer_id=tid,
                index=part.index,
                url=self.upload_url,
                upload_id=upload_id,
                path=self.filename,
                offset=part.offset,
                length=part.length,
                headers=self.headers,
                factory=factory,
                retry=self.retry,
                timeout=self.timeout,
            )

        if len(parts) == 1:
            messages: list[JobMessage] = []
            run_job(job(parts[0], 0), messages.append, lambda: False, transport=transport)
            final = messages[-1]
            if isinstance(final, JobFailed):
                raise final.error.rebuild("part 1")
            assert isinstance(final, JobDone)
            collected.on_done(0, final.done, final.crc, final.etag)
            return collected
        pool = get_pool(self.processes, threads, self.start_method)
        tid = pool.acquire()
        try:
            Scheduler(pool, tid, what="part").run((job(p, tid) for p in parts), collected)
        finally:
            pool.release()
        return collected

    def _abort(self, transport: Any, container: XMLMPUContainerProtocol) -> None:
        if container.upload_id is None:
            return
        try:
            spec = container._prepare_cancel_request()
            response = send(transport, spec, self.timeout)
            container._process_cancel_response(response, response.status_code)
        except Exception as exc:  # the original failure matters more
            _LOGGER.warning(
                "could not abort the multipart upload to %s: %s",
                self.upload_url,
                describe_error(exc),
            )
