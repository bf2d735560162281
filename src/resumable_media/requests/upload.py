"""SimpleUpload, MultipartUpload and ResumableUpload over a requests transport.

Invariants:
- Each class composes its protocol object (``_protocol``, not a base class) and adds
  the methods that read the caller's data, send, and retry; the protocol decides every
  state change.  Upstream's attributes and ``_prepare_*``/``_process_*`` names are
  :class:`~resumable_media.requests._compose.FromProtocol` delegates; the core's own
  calls (``next_read_size``, the buffered-PUT API, ``state``) are not on these classes.
- A request is built once per call and retried as is, except in ResumableUpload's
  opt-in automatic recovery, where each retry first asks the server how much it
  persisted and resends from there (so no byte is sent twice to a session that
  already holds it).
- An upload reports success only after the server's 200 (and, with a checksum,
  after the server's checksum matched).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import IO, Any

from resumable_media import checksums, common
from resumable_media._protocol.request import Headers, RequestSpec
from resumable_media._protocol.resumable import ResumableUploadProtocol
from resumable_media._protocol.upload import MultipartUploadProtocol, SimpleUploadProtocol
from resumable_media.requests._compose import FromProtocol
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


class _OneShot:
    """What :class:`SimpleUpload` and :class:`MultipartUpload` share (private): the
    composed one-request protocol, its upstream attributes, and the send."""

    _protocol: SimpleUploadProtocol | MultipartUploadProtocol

    def __init__(self, retry: common.RetryStrategy | None) -> None:
        self._retry_strategy = own_retry(retry)

    upload_url = FromProtocol[str]("upload_url")
    finished = FromProtocol[bool]("finished")
    _finished = FromProtocol[bool]("finished")
    _headers = FromProtocol[dict[str, Any]]("_headers")

    def _process_response(self, response: Any) -> None:
        """Upstream's name: judge the answer (must be 200; the upload is then used up)."""
        self._protocol.process_response(response, response.status_code)

    def _send(self, transport: Transport, spec: RequestSpec, timeout: Timeout) -> Any:
        return round_trip(transport, spec, timeout, self._process_response, self._retry_strategy)


class SimpleUpload(_OneShot):
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
        self._protocol = SimpleUploadProtocol(upload_url, headers)
        super().__init__(retry)

    _prepare_request = FromProtocol[Callable[[bytes, str], RequestSpec]]("_prepare_request")

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
        return self._send(transport, self._prepare_request(data, content_type), timeout)


class MultipartUpload(_OneShot):
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
        checksum: common.Checksum = None,
        *,
        retry: common.RetryStrategy | None = DEFAULT_RETRY,
    ) -> None:
        self._protocol = MultipartUploadProtocol(upload_url, headers, checksum)
        super().__init__(retry)

    _checksum_type = FromProtocol[str | None]("_checksum_type")
    _prepare_request = FromProtocol[Callable[[bytes, dict[str, Any], str], RequestSpec]](
        "_prepare_request"
    )

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
        return self._send(transport, self._prepare_request(data, metadata, content_type), timeout)


def get_total_bytes(stream: IO[bytes]) -> int:
    """The size of a seekable stream, leaving its position unchanged."""
    position = stream.tell()
    end = stream.seek(0, os.SEEK_END)
    stream.seek(position)
    return end


class ResumableUpload:
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
        checksum: common.Checksum = None,
        headers: dict[str, Any] | None = None,
        *,
        retry: common.RetryStrategy | None = DEFAULT_RETRY,
        auto_recover: bool = False,
    ) -> None:
        self._protocol = ResumableUploadProtocol(upload_url, chunk_size, checksum, headers)
        self._protocol._auto_recover = auto_recover
        self._retry_strategy = own_retry(retry)
        self._stream: IO[bytes] | None = None
        self._needs_sync = False

    # The seed's attributes, read from the protocol object (documented there).
    upload_url = FromProtocol[str]("upload_url")
    chunk_size = FromProtocol[int]("chunk_size")
    resumable_url = FromProtocol[str | None]("resumable_url")
    bytes_uploaded = FromProtocol[int]("bytes_uploaded")
    total_bytes = FromProtocol[int | None]("total_bytes")
    finished = FromProtocol[bool]("finished")
    invalid = FromProtocol[bool]("invalid")
    _finished = FromProtocol[bool]("finished")
    _invalid = FromProtocol[bool]("invalid")
    _headers = FromProtocol[dict[str, Any]]("_headers")
    _content_type = FromProtocol[str | None]("_content_type")
    _bytes_uploaded = FromProtocol[int]("_bytes_uploaded")
    _bytes_checksummed = FromProtocol[int]("_bytes_checksummed")
    _checksum_type = FromProtocol[str | None]("_checksum_type")
    _checksum_object = FromProtocol[checksums.Hasher | None]("_checksum_object")
    _total_bytes = FromProtocol[int | None]("_total_bytes")
    _resumable_url = FromProtocol[str | None]("_resumable_url")
    _auto_recover = FromProtocol[bool]("_auto_recover")
    _make_invalid = FromProtocol[Callable[[], None]]("_make_invalid")
    _prepare_initiate_request = FromProtocol[
        Callable[[int, dict[str, Any], str, int | None], RequestSpec]
    ]("_prepare_initiate_request")
    _process_initiate_response = FromProtocol[Callable[[Any, int, Headers], None]](
        "_process_initiate_response"
    )
    _prepare_chunk_request = FromProtocol[Callable[[int, bytes], RequestSpec]](
        "_prepare_chunk_request"
    )
    _process_chunk_response = FromProtocol[Callable[[Any, int, Headers, bytes], int]](
        "_process_chunk_response"
    )
    _prepare_recover_request = FromProtocol[Callable[[], RequestSpec]]("_prepare_recover_request")
    _process_recover_response = FromProtocol[Callable[[Any, int, Headers], int]](
        "_process_recover_response"
    )
    _process_status_response = FromProtocol[Callable[[Any, int, Headers, bytes], int]](
        "_process_status_response"
    )

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
        stream, protocol = self._stream, self._protocol
        if stream is None:
            protocol.next_read_size(0)  # raises the "not initiated" error
            raise ValueError("This upload has no stream.")
        if protocol._auto_recover and stream.tell() != protocol.bytes_uploaded:
            stream.seek(protocol.bytes_uploaded)
        start = stream.tell()
        payload = stream.read(protocol.next_read_size(start))
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
        self._protocol.next_read_size(self.bytes_uploaded)  # state checks before any I/O

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
                if unsent and self.bytes_uploaded <= start:
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
                self._stream.seek(self.bytes_uploaded)
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
