"""XMLMPUContainer and XMLMPUPart (S3-compatible XML multipart upload) over requests.

Invariants: each class composes its protocol object (``_protocol``) and shows upstream's
attributes and ``_prepare_*``/``_process_*`` names as delegates; each call builds its
request once and retries it as is; a part reads exactly bytes ``[start, end)`` of its
file, and with a checksum sends it as ``x-goog-hash`` and compares the server's answer
before reporting success.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from resumable_media import checksums, common
from resumable_media._protocol.request import Headers, RequestSpec
from resumable_media._protocol.xml_mpu import XMLMPUContainerProtocol, XMLMPUPartProtocol
from resumable_media.requests._compose import FromProtocol
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


class XMLMPUContainer:
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
        self._protocol = XMLMPUContainerProtocol(upload_url, filename, headers, upload_id)
        self._retry_strategy = own_retry(retry)

    # The seed's attributes, read from the protocol object (documented there).
    upload_url = FromProtocol[str]("upload_url")
    upload_id = FromProtocol[str | None]("upload_id")
    finished = FromProtocol[bool]("finished")
    register_part = FromProtocol[Callable[[int, str], None]]("register_part")
    _finished = FromProtocol[bool]("finished")
    _upload_id = FromProtocol[str | None]("_upload_id")
    _filename = FromProtocol[str]("_filename")
    _headers = FromProtocol[dict[str, Any]]("_headers")
    _parts = FromProtocol[dict[int, str]]("_parts")
    _prepare_initiate_request = FromProtocol[Callable[[str], RequestSpec]](
        "_prepare_initiate_request"
    )
    _process_initiate_response = FromProtocol[Callable[[Any, int, bytes], None]](
        "_process_initiate_response"
    )
    _prepare_finalize_request = FromProtocol[Callable[[], RequestSpec]]("_prepare_finalize_request")
    _process_finalize_response = FromProtocol[Callable[[Any, int], None]](
        "_process_finalize_response"
    )
    _prepare_cancel_request = FromProtocol[Callable[[], RequestSpec]]("_prepare_cancel_request")
    _process_cancel_response = FromProtocol[Callable[[Any, int], None]]("_process_cancel_response")

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


class XMLMPUPart:
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
        checksum: common.Checksum = None,
        *,
        retry: common.RetryStrategy | None = DEFAULT_RETRY,
    ) -> None:
        self._protocol = XMLMPUPartProtocol(
            upload_url, upload_id, filename, start, end, part_number, headers, checksum
        )
        self._retry_strategy = own_retry(retry)

    # The seed's attributes, read from the protocol object (documented there).
    upload_url = FromProtocol[str]("upload_url")
    upload_id = FromProtocol[str]("upload_id")
    filename = FromProtocol[str]("filename")
    start = FromProtocol[int]("start")
    end = FromProtocol[int]("end")
    part_number = FromProtocol[int]("part_number")
    # Any, as before: ``container.register_part(n, part.etag)`` is upstream's own pattern.
    etag = FromProtocol[Any]("etag")
    finished = FromProtocol[bool]("finished")
    _finished = FromProtocol[bool]("finished")
    _upload_id = FromProtocol[str]("_upload_id")
    _filename = FromProtocol[str]("_filename")
    _start = FromProtocol[int]("_start")
    _end = FromProtocol[int]("_end")
    _part_number = FromProtocol[int]("_part_number")
    _etag = FromProtocol[str | None]("_etag")
    _headers = FromProtocol[dict[str, Any]]("_headers")
    _checksum_type = FromProtocol[str | None]("_checksum_type")
    _checksum_object = FromProtocol[checksums.Hasher | None]("_checksum_object")
    _prepare_upload_request = FromProtocol[Callable[[bytes | memoryview], RequestSpec]](
        "_prepare_upload_request"
    )
    _process_upload_response = FromProtocol[Callable[[Any, int, Headers, bytes], None]](
        "_process_upload_response"
    )

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
        with open(self.filename, "rb") as handle:
            handle.seek(self.start)
            payload = handle.read(self.end - self.start)
        spec = self._prepare_upload_request(payload)

        def attempt() -> Any:
            response = send(transport, spec, timeout)
            status = response.status_code
            body = response.content if status == 400 else b""
            self._process_upload_response(response, status, response.headers, body)
            return response

        return wait_and_retry(attempt, self._retry_strategy)
