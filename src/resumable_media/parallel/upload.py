"""ParallelUpload: an XML multipart upload whose parts are sent by the worker pool.

Invariants:
- Each worker maps its part of the source file read-only and sends it straight from the
  mapping with ``x-goog-hash: crc32c=`` (the server rejects a corrupted part); nothing
  holds a whole part in anonymous memory.
- The part CRCs are combined locally, in order, and compared with the final object's
  crc32c (read with a HEAD after completion); a mismatch raises ``DataCorruption``.
- Any failure before completion aborts the multipart upload (``DELETE ?uploadId``), so
  nothing half-made is left behind.
"""

from __future__ import annotations

import http.client
import logging
import os
import time
import urllib.parse
import xml.etree.ElementTree as ET
from typing import Any
from xml.sax.saxutils import escape

from resumable_media import checksums, common
from resumable_media._transport import (
    DEFAULT_TIMEOUT,
    Transport,
    TransportFactory,
    TransportSource,
    transport_source,
    wait_and_retry,
)
from resumable_media.parallel.plan import (
    DEFAULT_PART_SIZE,
    DEFAULT_UPLOAD_THREADS,
    Chunk,
    PartJob,
    TransferResult,
    headers_tuple,
    plan_chunks,
)
from resumable_media.parallel.pool import DEFAULT_START_METHOD, default_workers, get_pool
from resumable_media.parallel.scheduler import Scheduler, raise_chunk_error
from resumable_media.parallel.worker import require_ok, run_job, transport_for

__all__ = ["ParallelUpload"]

_LOGGER = logging.getLogger(__name__)

MAX_PARTS = 10_000
"""int: The XML API's limit on parts per upload."""


class _Parts:
    """Collects part results for the scheduler."""

    def __init__(self, count: int) -> None:
        self.etags: list[str | None] = [None] * count
        self.crcs: list[int] = [0] * count

    def on_progress(self, index: int, done: int, crc: int) -> None:
        """Parts report only on completion."""

    def on_done(self, index: int, done: int, crc: int, extra: Any) -> None:
        self.etags[index] = str(extra)
        self.crcs[index] = crc

    def on_tick(self) -> None:
        """Nothing periodic."""


class ParallelUpload:
    """Upload a file as an XML multipart upload, parts in parallel.

    Args:
        upload_url: The XML object URL (``{endpoint}/{bucket}/{name}``).
        filename: The file to upload.
        part_size: Bytes per part (raised automatically to stay within 10 000 parts).
        processes: Worker processes (0: threads in this process; None: the default).
        threads_per_process: Parts in flight per process (None: ``DEFAULT_UPLOAD_THREADS``).
        checksum: "crc32c" (default, compared with the final object) or None.
        headers: Extra headers for every request.
        retry: The retry policy (None: the default RetryStrategy).
        timeout: The (connect, read) timeout in seconds.
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
        checksum: str | None = "crc32c",
        headers: dict[str, str] | None = None,
        retry: common.RetryStrategy | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
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
        self.checksum = checksum
        self.headers = headers_tuple(headers)
        self.retry = common.RetryStrategy() if retry is None else retry
        self.timeout = timeout
        self.start_method = start_method
        self.upload_id: str | None = None

    def transmit(
        self,
        transport_factory: TransportFactory | Transport,
        content_type: str,
        metadata: dict[str, str] | None = None,
    ) -> TransferResult:
        """Run the upload.

        Args:
            transport_factory: A picklable zero-argument transport factory, or (when
                everything runs in this process, ``processes=0``) a session.
            content_type: The object's content type.
            metadata: Custom metadata (sent as ``x-goog-meta-*``).

        Returns:
            The result (``response`` holds the final object's headers as a dict).

        Raises:
            InvalidResponse: The server refused a request (the upload is aborted).
            DataCorruption: The final object's CRC32C differs from the parts' combined CRC.
            TypeError: A session, or a factory that cannot be pickled, with
                ``processes > 0``; an object that is neither a factory nor a session.
        """
        began = time.monotonic()
        factory = transport_source(
            transport_factory, processes=self.processes, owner="ParallelUpload"
        )
        transport = transport_for(factory)
        size = os.path.getsize(self.filename)
        part_size = max(self.part_size, -(-size // MAX_PARTS))
        parts = plan_chunks(0, size - 1, part_size) or [Chunk(index=0, start=0, end=-1, offset=0)]
        self.upload_id = self._initiate(transport, content_type, metadata or {})
        try:
            collected = self._send_parts(transport, factory, parts)
            self._complete(transport, collected)
        except BaseException:
            self._abort(transport)
            raise
        crc = checksums.crc32c_combine_many(
            (crc, part.length) for crc, part in zip(collected.crcs, parts, strict=True)
        )
        crc_b64 = checksums.crc32c_to_b64(crc)
        final = self._final_headers(transport)
        remote = checksums.parse_goog_hash(final.get("x-goog-hash")).get("crc32c")
        verified = False
        if self.checksum is not None and remote is not None:
            if remote != crc_b64:
                raise common.DataCorruption(
                    None,
                    f"{self.upload_url}: the final object's CRC32C is {remote} but the parts "
                    f"combine to {crc_b64}",
                )
            verified = True
        generation = final.get("x-goog-generation")
        seconds = max(time.monotonic() - began, 1e-9)
        return TransferResult(
            bytes=size,
            seconds=seconds,
            throughput=size / seconds,
            crc32c=crc_b64,
            md5=None,
            verified=verified,
            generation=int(generation) if generation else None,
            response=dict(final),
        )

    def _url(self, query: str) -> str:
        separator = "&" if "?" in self.upload_url else "?"
        return f"{self.upload_url}{separator}{query}"

    def _request(self, transport: Any, method: str, url: str, body: bytes, **headers: str) -> Any:
        merged = dict(self.headers)
        merged.update(headers)

        def attempt() -> Any:
            response = transport.request(
                method, url, data=body, headers=merged, timeout=self.timeout
            )
            return require_ok(response, (http.client.OK, http.client.NO_CONTENT))

        return wait_and_retry(attempt, self.retry)

    def _initiate(self, transport: Any, content_type: str, metadata: dict[str, str]) -> str:
        headers = {"content-type": content_type}
        for key, value in metadata.items():
            headers[f"x-goog-meta-{key}"] = str(value)
        response = self._request(transport, "POST", self._url("uploads"), b"", **headers)
        for element in ET.fromstring(response.content).iter():
            if element.tag.rsplit("}", 1)[-1] == "UploadId" and element.text:
                return element.text.strip()
        raise common.InvalidResponse(response, "the initiate response has no UploadId")

    def _send_parts(self, transport: Any, factory: TransportSource, parts: list[Chunk]) -> _Parts:
        assert self.upload_id is not None
        upload_id = urllib.parse.quote(self.upload_id, safe="")
        collected = _Parts(len(parts))

        def job(part: Chunk, tid: int) -> PartJob:
            return PartJob(
                transfer_id=tid,
                index=part.index,
                url=self._url(f"partNumber={part.index + 1}&uploadId={upload_id}"),
                path=self.filename,
                offset=part.offset,
                length=part.length,
                headers=self.headers,
                factory=factory,
                retry=self.retry,
                timeout=self.timeout,
            )

        if len(parts) == 1:
            messages: list[tuple[Any, ...]] = []
            run_job(job(parts[0], 0), messages.append, lambda: False, transport=transport)
            final = messages[-1]
            if final[0] != "done":
                raise_chunk_error(1, final[3], "part")
            collected.on_done(0, final[3], final[4], final[5])
            return collected
        pool = get_pool(self.processes, self.threads_per_process, self.start_method)
        tid = pool.acquire()
        try:
            Scheduler(pool, tid, what="part").run((job(p, tid) for p in parts), collected)
        finally:
            pool.release()
        return collected

    def _complete(self, transport: Any, collected: _Parts) -> None:
        assert self.upload_id is not None
        body = ["<CompleteMultipartUpload>"]
        for number, etag in enumerate(collected.etags, start=1):
            body.append(
                f"<Part><PartNumber>{number}</PartNumber><ETag>{escape(str(etag))}</ETag></Part>"
            )
        body.append("</CompleteMultipartUpload>")
        url = self._url(f"uploadId={urllib.parse.quote(self.upload_id, safe='')}")
        self._request(
            transport, "POST", url, "".join(body).encode(), **{"content-type": "application/xml"}
        )

    def _abort(self, transport: Any) -> None:
        if self.upload_id is None:
            return
        url = self._url(f"uploadId={urllib.parse.quote(self.upload_id, safe='')}")
        try:
            transport.request("DELETE", url, headers=dict(self.headers), timeout=self.timeout)
        except Exception as exc:  # the original failure matters more
            _LOGGER.warning("could not abort multipart upload %s: %s", self.upload_id, exc)

    def _final_headers(self, transport: Any) -> dict[str, str]:
        response = self._request(transport, "HEAD", self.upload_url, b"")
        return {key.lower(): value for key, value in response.headers.items()}
