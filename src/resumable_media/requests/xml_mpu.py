"""XMLMPUContainer and XMLMPUPart (S3-compatible XML multipart upload) over requests.

Invariants: each call builds its request once and retries it as is; a part reads
exactly bytes ``[start, end)`` of its file, and with a checksum sends it as
``x-goog-hash`` and compares the server's answer before reporting success.
"""

from __future__ import annotations

from typing import Any

from resumable_media import common
from resumable_media._protocol.upload import XMLMPUContainerProtocol, XMLMPUPartProtocol
from resumable_media.requests._send import (
    DEFAULT_RETRY,
    DEFAULT_TIMEOUT,
    Timeout,
    Transport,
    own_retry,
    round_trip,
    send,
    wait_and_retry,
)

__all__ = ["XMLMPUContainer", "XMLMPUPart"]


class XMLMPUContainer(XMLMPUContainerProtocol):
    """Start, complete or cancel an XML multipart upload.

    Args:
        upload_url: The object URL (no query string).
        filename: The local file being uploaded (stored, unused).
        headers: Extra request headers.
        upload_id: An existing upload id.
        retry: The retry policy; None makes a single attempt.
    """

    def __init__(
        self,
        upload_url: str,
        filename: str,
        headers: dict[str, Any] | None = None,
        upload_id: str | None = None,
        *,
        retry: common.RetryStrategy | None = DEFAULT_RETRY,
    ) -> None:
        super().__init__(upload_url, filename, headers, upload_id)
        self._retry_strategy = own_retry(retry)

    def initiate(
        self, transport: Transport, content_type: str, timeout: Timeout = DEFAULT_TIMEOUT
    ) -> Any:
        """Start the upload (``POST ?uploads``) and learn its id.

        Args:
            transport: A requests-compatible transport.
            content_type: The object's content type.
            timeout: (connect, read) seconds, or one number.

        Returns:
            The HTTP response.

        Raises:
            ValueError: If already initiated.
            InvalidResponse: For a status other than 200 or a body without ``UploadId``.
        """
        spec = self._prepare_initiate_request(content_type)

        return round_trip(
            transport,
            spec,
            timeout,
            lambda r: self._process_initiate_response(r, r.status_code, r.content),
            self._retry_strategy,
        )

    def finalize(self, transport: Transport, timeout: Timeout = DEFAULT_TIMEOUT) -> Any:
        """Complete the upload from the registered parts.

        Args:
            transport: A requests-compatible transport.
            timeout: (connect, read) seconds, or one number.

        Returns:
            The HTTP response.

        Raises:
            ValueError: If not initiated.
            InvalidResponse: For a status other than 200.
        """
        spec = self._prepare_finalize_request()

        return round_trip(
            transport,
            spec,
            timeout,
            lambda r: self._process_finalize_response(r, r.status_code),
            self._retry_strategy,
        )

    def cancel(self, transport: Transport, timeout: Timeout = DEFAULT_TIMEOUT) -> Any:
        """Abort the upload.

        Args:
            transport: A requests-compatible transport.
            timeout: (connect, read) seconds, or one number.

        Returns:
            The HTTP response (204).

        Raises:
            ValueError: If not initiated.
            InvalidResponse: For a status other than 204.
        """
        spec = self._prepare_cancel_request()

        return round_trip(
            transport,
            spec,
            timeout,
            lambda r: self._process_cancel_response(r, r.status_code),
            self._retry_strategy,
        )


class XMLMPUPart(XMLMPUPartProtocol):
    """Upload bytes ``[start, end)`` of a file as one part of an XML multipart upload.

    Args:
        upload_url: The object URL (no query string).
        upload_id: The container's upload id.
        filename: The file to read.
        start: The first byte (inclusive).
        end: The end byte (exclusive).
        part_number: The part number (1-based).
        headers: Extra request headers.
        checksum: "md5", "crc32c", "auto" or None.
        retry: The retry policy; None makes a single attempt.
    """

    def __init__(
        self,
        upload_url: str,
        upload_id: str,
        filename: str,
        start: int,
        end: int,
        part_number: int,
        headers: dict[str, Any] | None = None,
        checksum: str | None = None,
        *,
        retry: common.RetryStrategy | None = DEFAULT_RETRY,
    ) -> None:
        super().__init__(
            upload_url, upload_id, filename, start, end, part_number, headers, checksum
        )
        self._retry_strategy = own_retry(retry)

    def upload(self, transport: Transport, timeout: Timeout = DEFAULT_TIMEOUT) -> Any:
        """Read the part from the file and upload it.

        Args:
            transport: A requests-compatible transport.
            timeout: (connect, read) seconds, or one number.

        Returns:
            The HTTP response (200 with an ``etag``).

        Raises:
            ValueError: If the part was already uploaded.
            InvalidResponse: For a status other than 200, or no checksum / ETag.
            DataCorruption: If the server's checksum of the part differs.
        """
        if self.finished:
            raise ValueError("This part has already been uploaded.")
        with open(self._filename, "rb") as handle:
            handle.seek(self._start)
            payload = handle.read(self._end - self._start)
        spec = self._prepare_upload_request(payload)

        def attempt() -> Any:
            response = send(transport, spec, timeout)
            status = response.status_code
            body = response.content if status == 400 else b""
            self._process_upload_response(response, status, response.headers, body)
            return response

        return wait_and_retry(attempt, self._retry_strategy)
