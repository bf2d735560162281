"""SimpleUpload, MultipartUpload and ResumableUpload over a requests transport.

Invariants:
- Each class is its protocol object plus the methods that read the caller's data,
  send, and retry; the protocol decides every state change.
- A request is built once per call and retried as is, except in ResumableUpload's
  opt-in automatic recovery, where each retry first asks the server how much it
  persisted and resends from there (so no byte is sent twice to a session that
  already holds it).
- An upload reports success only after the server's 200 (and, with a checksum,
  after the server's checksum matched).
"""

from __future__ import annotations

import os
from typing import IO, Any

from resumable_media import common
from resumable_media._protocol.resumable import ResumableUploadProtocol
from resumable_media._protocol.upload import MultipartUploadProtocol, SimpleUploadProtocol
from resumable_media.requests._send import (
    DEFAULT_RETRY,
    DEFAULT_TIMEOUT,
    Timeout,
    Transport,
    is_retryable_error,
    own_retry,
    round_trip,
    send,
    wait_and_retry,
)
from resumable_media.requests.xml_mpu import XMLMPUContainer, XMLMPUPart

__all__ = [
    "MultipartUpload",
    "ResumableUpload",
    "SimpleUpload",
    "XMLMPUContainer",
    "XMLMPUPart",
]


class SimpleUpload(SimpleUploadProtocol):
    """Upload bytes with no metadata in one request (``uploadType=media``).

    Args:
        upload_url: ``…/upload/storage/v1/b/{bucket}/o?uploadType=media&name={name}``.
        headers: Extra request headers (updated with ``content-type``).
        retry: The retry policy; None makes a single attempt.
    """

    def __init__(
        self,
        upload_url: str,
        headers: dict[str, Any] | None = None,
        *,
        retry: common.RetryStrategy | None = DEFAULT_RETRY,
    ) -> None:
        super().__init__(upload_url, headers)
        self._retry_strategy = own_retry(retry)

    def transmit(
        self,
        transport: Transport,
        data: bytes,
        content_type: str,
        timeout: Timeout = DEFAULT_TIMEOUT,
    ) -> Any:
        """Send the bytes.

        Args:
            transport: A requests-compatible transport.
            data: The object bytes.
            content_type: Their content type.
            timeout: (connect, read) seconds, or one number.

        Returns:
            The HTTP response (200, with the object resource as JSON).

        Raises:
            ValueError: If the upload was already used.
            TypeError: If ``data`` is not bytes.
            InvalidResponse: If the server does not answer 200.
        """
        spec = self._prepare_request(data, content_type)

        return round_trip(
            transport,
            spec,
            timeout,
            lambda r: self.process_response(r, r.status_code),
            self._retry_strategy,
        )


class MultipartUpload(MultipartUploadProtocol):
    """Upload bytes plus their metadata in one ``multipart/related`` request.

    Args:
        upload_url: ``…/upload/storage/v1/b/{bucket}/o?uploadType=multipart``.
        headers: Extra request headers.
        checksum: "md5", "crc32c", "auto" or None: the digest goes into the metadata
            and the server rejects mismatching bytes with a 400.
        retry: The retry policy; None makes a single attempt.
    """

    def __init__(
        self,
        upload_url: str,
        headers: dict[str, Any] | None = None,
        checksum: str | None = None,
        *,
        retry: common.RetryStrategy | None = DEFAULT_RETRY,
    ) -> None:
        super().__init__(upload_url, headers, checksum)
        self._retry_strategy = own_retry(retry)

    def transmit(
        self,
        transport: Transport,
        data: bytes,
        metadata: dict[str, Any],
        content_type: str,
        timeout: Timeout = DEFAULT_TIMEOUT,
    ) -> Any:
        """Send the metadata and bytes.

        Args:
            transport: A requests-compatible transport.
            data: The object bytes.
            metadata: The object resource (name, metadata, …); a checksum is added to it.
            content_type: The bytes' content type.
            timeout: (connect, read) seconds, or one number.

        Returns:
            The HTTP response (200, with the object resource as JSON).

        Raises:
            ValueError: If the upload was already used.
            TypeError: If ``data`` is not bytes.
            InvalidResponse: If the server does not answer 200 (a checksum mismatch is a 400).
        """
        spec = self._prepare_request(data, metadata, content_type)

        return round_trip(
            transport,
            spec,
            timeout,
            lambda r: self.process_response(r, r.status_code),
            self._retry_strategy,
        )


def get_total_bytes(stream: IO[bytes]) -> int:
    """The size of a seekable stream, leaving its position unchanged."""
    position = stream.tell()
    end = stream.seek(0, os.SEEK_END)
    stream.seek(position)
    return end


class ResumableUpload(ResumableUploadProtocol):
    """Upload a stream in chunks to a resumable-upload session.

    With ``auto_recover=True`` every retry of a chunk first queries the session
    (``content-range: bytes */*``), rewinds the stream to what the server persisted
    and resends from there; a 308 that acknowledges fewer bytes than were sent also
    rewinds.  That needs a seekable stream.  Without it the behaviour is
    google-resumable-media 2.11's: a retry resends the same chunk, and the caller
    calls :meth:`recover` after a failure.  :meth:`transmit` sends all chunks.

    Args:
        upload_url: ``…/upload/storage/v1/b/{bucket}/o?uploadType=resumable``.
        chunk_size: Bytes per chunk; a multiple of 256 KiB.
        checksum: "md5", "crc32c", "auto" or None: sent as ``x-goog-hash`` with the
            final chunk and compared with the server's answer.
        headers: Extra headers for every request except the status query.
        retry: The retry policy; None makes a single attempt.
        auto_recover: Resynchronise with the server on retryable chunk failures.

    Raises:
        ValueError: If ``chunk_size`` is not a multiple of 256 KiB.
    """

    def __init__(
        self,
        upload_url: str,
        chunk_size: int,
        checksum: str | None = None,
        headers: dict[str, Any] | None = None,
        *,
        retry: common.RetryStrategy | None = DEFAULT_RETRY,
        auto_recover: bool = False,
    ) -> None:
        super().__init__(upload_url, chunk_size, checksum, headers)
        self._retry_strategy = own_retry(retry)
        self._auto_recover = auto_recover
        self._stream: IO[bytes] | None = None
        self._needs_sync = False

    def initiate(
        self,
        transport: Transport,
        stream: IO[bytes],
        metadata: dict[str, Any],
        content_type: str,
        total_bytes: int | None = None,
        stream_final: bool = True,
        timeout: Timeout = DEFAULT_TIMEOUT,
    ) -> Any:
        """Start the session.

        Args:
            transport: A requests-compatible transport.
            stream: The bytes to upload, positioned at 0.
            metadata: The object resource (name, metadata, …).
            content_type: The bytes' content type.
            total_bytes: The size, if known; else measured when ``stream_final``.
            stream_final: Whether the stream already holds all its bytes.
            timeout: (connect, read) seconds, or one number.

        Returns:
            The HTTP response (its ``location`` is the session URL).

        Raises:
            ValueError: If already initiated or the stream is not at 0.
            InvalidResponse: For a status other than 200/201 or no ``location``.
        """
        position = stream.tell()
        seekable = getattr(stream, "seekable", None)
        if self._auto_recover and callable(seekable) and not seekable():
            raise ValueError(
                "auto_recover=True needs a seekable stream (recovery rewinds it to what "
                "the server persisted)."
            )
        if total_bytes is None and stream_final and self._resumable_url is None:
            total_bytes = get_total_bytes(stream)
        spec = self._prepare_initiate_request(position, metadata, content_type, total_bytes)
        self._stream = stream

        return round_trip(
            transport,
            spec,
            timeout,
            lambda r: self._process_initiate_response(r, r.status_code, r.headers),
            self._retry_strategy,
        )

    def _read_chunk(self) -> tuple[int, bytes]:
        stream = self._stream
        if stream is None:
            self.next_read_size(0)  # raises the "not initiated" error
            raise ValueError("This upload has no stream.")
        if self._auto_recover and stream.tell() != self._bytes_uploaded:
            stream.seek(self._bytes_uploaded)
        start = stream.tell()
        payload = stream.read(self.next_read_size(start))
        return start, payload

    def transmit_next_chunk(self, transport: Transport, timeout: Timeout = DEFAULT_TIMEOUT) -> Any:
        """Send the next chunk.

        Args:
            transport: A requests-compatible transport.
            timeout: (connect, read) seconds, or one number.

        Returns:
            The HTTP response: 308 while incomplete, 200 (object JSON) at the end.

        Raises:
            ValueError: If finished, invalid, not initiated, or out of step with the stream.
            InvalidResponse: For a status other than 200/308 or a malformed ``range``.
            DataCorruption: If the final checksum differs from the server's.
        """
        if self._auto_recover:
            return self._transmit_recovering(transport, timeout)
        start, payload = self._read_chunk()
        spec = self._prepare_chunk_request(start, payload)

        def attempt() -> Any:
            response = send(transport, spec, timeout)
            status = response.status_code
            body = response.content if status == 200 else b""
            self._process_chunk_response(response, status, response.headers, body)
            return response

        return wait_and_retry(attempt, self._retry_strategy)

    def _transmit_recovering(self, transport: Transport, timeout: Timeout) -> Any:
        self.next_read_size(self._bytes_uploaded)  # state checks before any I/O

        def attempt() -> Any:
            if self._needs_sync:
                response = self._status_query(transport, timeout)
                self._needs_sync = False
                if self.finished:
                    return response
            start, payload = self._read_chunk()
            spec = self._prepare_chunk_request(start, payload)
            try:
                response = send(transport, spec, timeout)
                status = response.status_code
                body = response.content if status == 200 else b""
                unsent = self._process_chunk_response(response, status, response.headers, body)
                if unsent and self._bytes_uploaded <= start:
                    # Nothing of this chunk was persisted: a transient failure, retried
                    # (after a status query) within the retry budget -- never for ever.
                    raise ConnectionError(
                        f"the server persisted none of bytes {start}-{start + len(payload) - 1}"
                    )
            except Exception as exc:
                if is_retryable_error(exc):
                    self._needs_sync = True
                raise
            if unsent and self._stream is not None:
                self._stream.seek(self._bytes_uploaded)
            return response

        return wait_and_retry(attempt, self._retry_strategy)

    def _status_query(self, transport: Transport, timeout: Timeout) -> Any:
        spec = self._prepare_recover_request()
        response = send(transport, spec, timeout)
        status = response.status_code
        body = response.content if status == 200 else b""
        position = self._process_status_response(response, status, response.headers, body)
        if self._stream is not None and not self.finished:
            self._stream.seek(position)
        return response

    def transmit(self, transport: Transport, timeout: Timeout = DEFAULT_TIMEOUT) -> Any:
        """Send every remaining chunk (after :meth:`initiate`).

        Args:
            transport: A requests-compatible transport.
            timeout: (connect, read) seconds, or one number, per request.

        Returns:
            The final HTTP response (200, with the object resource as JSON).

        Raises:
            ValueError: As :meth:`transmit_next_chunk`.
            InvalidResponse: As :meth:`transmit_next_chunk`.
            DataCorruption: If the final checksum differs from the server's.
        """
        response = None
        while not self.finished:
            response = self.transmit_next_chunk(transport, timeout)
        return response

    def recover(self, transport: Transport, timeout: Timeout = DEFAULT_TIMEOUT) -> Any:
        """Ask the server how much it has persisted, and rewind the stream to match.

        Works whether or not the upload is invalid; afterwards it is valid again.

        Args:
            transport: A requests-compatible transport.
            timeout: (connect, read) seconds, or one number.

        Returns:
            The HTTP response (a 308).

        Raises:
            InvalidResponse: If the server does not answer 308 (e.g. 200: already
                complete, or 404: the session is gone).
        """
        spec = self._prepare_recover_request()

        def attempt() -> Any:
            response = send(transport, spec, timeout)
            position = self._process_recover_response(
                response, response.status_code, response.headers
            )
            if self._stream is not None:
                self._stream.seek(position)
            return response

        return wait_and_retry(attempt, self._retry_strategy)
