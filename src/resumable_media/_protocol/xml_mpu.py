"""The XML multipart-upload (MPU) steps: initiate / complete / abort, and one part.

Invariants:
- No I/O: bodies arrive as bytes from the caller; responses as status, headers, body.
- URLs and the completion XML have google-resumable-media 2.11's exact layout (parts in
  registration order).
- Each object's state is one Enum member (:class:`ContainerState`, :class:`PartState`) with
  a transition table.  A call upstream refuses raises upstream's ``ValueError`` text; any
  other illegal call raises ``ProtocolStateError`` naming the state; a refused call
  changes nothing.
- A step moves to ``FAILED`` on any rejection but a retryable status, which leaves the
  request out to be sent again as is; from ``FAILED`` a caller may do what upstream allows
  after a failure (initiate again, complete again, abort, upload the part again).
"""

from __future__ import annotations

import enum
import urllib.parse
import xml.etree.ElementTree as ElementTree
from collections.abc import Mapping
from typing import Any

from resumable_media import checksums, common
from resumable_media._protocol import checks
from resumable_media._protocol.request import Headers, RequestSpec, require_header
from resumable_media._protocol.request import require_status as _require_status
from resumable_media._protocol.state import check, judging

__all__ = [
    "CONTAINER_TRANSITIONS",
    "PART_TRANSITIONS",
    "ContainerState",
    "PartState",
    "XMLMPUContainerProtocol",
    "XMLMPUPartProtocol",
]

_S3_NAMESPACE = "{http://s3.amazonaws.com/doc/2006-03-01/}"
_DIGEST_ERROR_CODES = ("InvalidDigest", "BadDigest", "CrcMismatch")


def _with_query(url: str, query: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{query}"


def _quoted(upload_id: str) -> str:
    return urllib.parse.quote(upload_id, safe="")


class ContainerState(enum.Enum):
    """Where an XML multipart upload stands."""

    NEW = "new"  # no upload id
    INITIATING = "initiating"  # ``POST ?uploads`` is out
    ACTIVE = "active"  # an upload id is known: parts may be uploaded and registered
    COMPLETING = "completing"  # the completion POST is out
    CANCELLING = "cancelling"  # the abort DELETE is out
    FINISHED = "finished"  # completed (200): the object exists
    CANCELLED = "cancelled"  # aborted (204)
    FAILED = "failed"  # a step was refused for good; no request is out


_C = ContainerState
_STARTED = (_C.ACTIVE, _C.COMPLETING, _C.CANCELLING, _C.FAILED)  # an id may be known
_SETTLED = (_C.FINISHED, _C.CANCELLED)
CONTAINER_TRANSITIONS: dict[tuple[ContainerState, str], frozenset[ContainerState]] = {
    **{
        (state, "prepare_initiate"): frozenset({_C.INITIATING})
        for state in (_C.NEW, _C.INITIATING, _C.FAILED)
    },
    (_C.INITIATING, "process_initiate"): frozenset({_C.INITIATING, _C.ACTIVE, _C.FAILED}),
    **{(state, "register_part"): frozenset({state}) for state in ContainerState},
    **{(state, "prepare_finalize"): frozenset({_C.COMPLETING}) for state in _STARTED},
    (_C.COMPLETING, "process_finalize"): frozenset({_C.COMPLETING, _C.FINISHED, _C.FAILED}),
    **{(state, "prepare_cancel"): frozenset({_C.CANCELLING}) for state in _STARTED},
    (_C.CANCELLING, "process_cancel"): frozenset({_C.CANCELLING, _C.CANCELLED, _C.FAILED}),
    # As upstream, a settled upload may still be completed or aborted again (the server
    # answers); the answer is judged, and the outcome stays what it was.
    **{
        (state, call): frozenset({state})
        for state in (_C.FINISHED, _C.CANCELLED)
        for call in ("prepare_finalize", "process_finalize", "prepare_cancel", "process_cancel")
    },
    (_C.FINISHED, "prepare_object"): frozenset({_C.FINISHED}),
    (_C.FINISHED, "process_object"): frozenset({_C.FINISHED}),  # a question about the object
}
"""(state, call) -> the states the call may leave an XML multipart upload in.
``prepare_delete_generation`` builds a request about an object, not the upload, and is
legal in every state."""


class XMLMPUContainerProtocol:
    """The initiate / complete / abort steps of an S3-compatible XML multipart upload.

    Args:
        upload_url: The object URL (``https://{bucket}.storage.googleapis.com/{name}``),
            without a query string.
        filename: The local file name (kept for the caller; unused here).
        headers: Extra request headers.
        upload_id: An existing upload id, to finish or cancel an upload started elsewhere.
    """

    def __init__(
        self,
        upload_url: str,
        filename: str,
        headers: dict[str, Any] | None = None,
        upload_id: str | None = None,
    ) -> None:
        self.upload_url = upload_url
        self._filename = filename
        self._headers: dict[str, Any] = {} if headers is None else headers
        self._upload_id = upload_id
        self._parts: dict[int, str] = {}
        self.state = ContainerState.NEW if upload_id is None else ContainerState.ACTIVE

    @property
    def upload_id(self) -> str | None:
        """str | None: The upload id, once initiated."""
        return self._upload_id

    @property
    def finished(self) -> bool:
        """bool: Whether the upload has been completed."""
        return self.state is ContainerState.FINISHED

    def _enter(self, call: str) -> None:
        # Upstream's refusals first, in its words: they depend on the upload id only.
        if call == "prepare_initiate" and self._upload_id is not None:
            raise ValueError("This upload has already been initiated.")
        if call in ("prepare_finalize", "prepare_cancel") and self._upload_id is None:
            raise ValueError("This upload has not yet been initiated.")
        check(CONTAINER_TRANSITIONS, self.state, call, f"XML multipart upload to {self.upload_url}")

    def _fail(self) -> None:
        if self.state not in _SETTLED:  # a settled outcome stays what it was
            self.state = ContainerState.FAILED

    def _step_unless_settled(self, state: ContainerState) -> None:
        if self.state not in _SETTLED:
            self.state = state

    def register_part(self, part_number: int, etag: str) -> None:
        """Record an uploaded part (parts are completed in registration order).

        Args:
            part_number: The part number.
            etag: The ETag the part upload returned.
        """
        self._enter("register_part")
        self._parts[part_number] = etag

    def _require_id(self) -> str:
        assert self._upload_id is not None  # _enter refused the step without one
        return self._upload_id

    def _upload_url(self, upload_id: str) -> str:
        return _with_query(self.upload_url, f"uploadId={_quoted(upload_id)}")

    def _prepare_initiate_request(
        self, content_type: str, custom_metadata: Mapping[str, object] | None = None
    ) -> RequestSpec:
        """Build ``POST {url}?uploads``.

        Args:
            content_type: The object's content type.
            custom_metadata: The object's custom metadata, sent as ``x-goog-meta-*``.

        Raises:
            ValueError: If the upload was already initiated.
        """
        self._enter("prepare_initiate")
        headers = {**self._headers, "content-type": content_type}
        for key, value in (custom_metadata or {}).items():
            headers[f"x-goog-meta-{key}"] = str(value)
        self.state = ContainerState.INITIATING
        return RequestSpec("POST", _with_query(self.upload_url, "uploads"), None, headers)

    def _process_initiate_response(self, response: Any, status: int, body: bytes) -> None:
        """Take the upload id from the XML answer.

        Raises:
            InvalidResponse: If the status is not 200 or the body has no ``UploadId``.
        """
        self._enter("process_initiate")
        with judging(self, status):
            _require_status(response, status, (200,))
            try:
                root = ElementTree.fromstring(body)
            except ElementTree.ParseError:
                root = None
            element = None if root is None else root.find(_S3_NAMESPACE + "UploadId")
            if element is None or not element.text:
                raise common.InvalidResponse(response, "Response body must contain UploadId", body)
        self._upload_id = element.text
        self.state = ContainerState.ACTIVE

    def _prepare_finalize_request(self) -> RequestSpec:
        """Build ``POST {url}?uploadId=…`` with the completion XML.

        Raises:
            ValueError: If the upload was not initiated.
        """
        self._enter("prepare_finalize")
        upload_id = self._require_id()
        self._step_unless_settled(ContainerState.COMPLETING)
        root = ElementTree.Element("CompleteMultipartUpload")
        for number, etag in self._parts.items():
            part = ElementTree.SubElement(root, "Part")
            ElementTree.SubElement(part, "PartNumber").text = str(number)
            ElementTree.SubElement(part, "ETag").text = etag
        return RequestSpec(
            "POST", self._upload_url(upload_id), ElementTree.tostring(root), self._headers
        )

    def _process_finalize_response(self, response: Any, status: int) -> None:
        """Mark the upload complete after a 200.

        Raises:
            InvalidResponse: If the status is not 200.
        """
        self._answered("process_finalize", response, status, 200, ContainerState.FINISHED)

    def _prepare_cancel_request(self) -> RequestSpec:
        """Build ``DELETE {url}?uploadId=…``.

        Raises:
            ValueError: If the upload was not initiated.
        """
        self._enter("prepare_cancel")
        self._step_unless_settled(ContainerState.CANCELLING)
        return RequestSpec("DELETE", self._upload_url(self._require_id()), None, self._headers)

    def _process_cancel_response(self, response: Any, status: int) -> None:
        """Check the abort answered 204.

        Raises:
            InvalidResponse: If the status is not 204.
        """
        self._answered("process_cancel", response, status, 204, ContainerState.CANCELLED)

    def _answered(
        self, call: str, response: Any, status: int, expected: int, done: ContainerState
    ) -> None:
        # The answer to the completion or the abort: ``done`` unless the outcome was settled.
        self._enter(call)
        with judging(self, status):
            _require_status(response, status, (expected,))
        self._step_unless_settled(done)

    def prepare_delete_generation(self, generation: str | None) -> RequestSpec:
        """Build ``DELETE {url}`` of the completed object, pinned to ``generation`` when
        known (``x-goog-if-generation-match``), for an object that failed its check."""
        extra = {"x-goog-if-generation-match": str(generation)} if generation else {}
        return RequestSpec("DELETE", self.upload_url, None, {**self._headers, **extra})

    def _prepare_object_request(self) -> RequestSpec:
        """Build ``HEAD {url}``: the completed object's headers (size, generation, hashes)."""
        self._enter("prepare_object")
        return RequestSpec("HEAD", self.upload_url, None, self._headers)

    def _process_object_response(self, response: Any, status: int, headers: Headers) -> str | None:
        """Check the completed object's HEAD answer.

        Returns:
            The object's base64 CRC32C from ``x-goog-hash``, or None when absent.

        Raises:
            InvalidResponse: If the status is not 200 or ``x-goog-hash`` repeats the CRC32C.
        """
        self._enter("process_object")
        _require_status(response, status, (200,))
        return checks.expected_download_checksum(
            response, headers, "crc32c", self.upload_url, log_missing=False
        )


class PartState(enum.Enum):
    """Where one part of an XML multipart upload stands."""

    READY = "ready"  # nothing sent
    SENT = "sent"  # the part's PUT is out
    FINISHED = "finished"  # uploaded: the ETag is known
    FAILED = "failed"  # refused for good (the part may be uploaded again)


_P = PartState
PART_TRANSITIONS: dict[tuple[PartState, str], frozenset[PartState]] = {
    **{(state, "prepare_upload"): frozenset({_P.SENT}) for state in (_P.READY, _P.SENT, _P.FAILED)},
    (_P.SENT, "process_upload"): frozenset({_P.SENT, _P.FINISHED, _P.FAILED}),
}
"""(state, call) -> the states the call may leave a part in."""


class XMLMPUPartProtocol:
    """One part of an XML multipart upload: bytes ``[start, end)`` of a file.

    Args:
        upload_url: The object URL (no query string).
        upload_id: The container's upload id.
        filename: The local file the part comes from.
        start: The first byte (inclusive).
        end: The end byte (exclusive).
        part_number: The part number (1-based).
        headers: Extra request headers.
        checksum: "md5", "crc32c", "auto" or None: sent as ``x-goog-hash`` and
            compared with the server's answer.

    Raises:
        ValueError: If ``checksum`` is not an accepted value.
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
    ) -> None:
        self.upload_url = upload_url
        self._upload_id = upload_id
        self._filename = filename
        self._start = start
        self._end = end
        self._part_number = part_number
        self._headers: dict[str, Any] = {} if headers is None else headers
        self._checksum_type = checks.resolve_download_checksum(checksum)
        self._checksum_object: checksums.Hasher | None = None
        self._etag: str | None = None
        self.state = PartState.READY

    upload_id = property(lambda self: self._upload_id, doc="str: The container's upload id.")
    filename = property(lambda self: self._filename, doc="str: The source file name.")
    start = property(lambda self: self._start, doc="int: The first byte (inclusive).")
    end = property(lambda self: self._end, doc="int: The end byte (exclusive).")
    part_number = property(lambda self: self._part_number, doc="int: The part number.")
    etag = property(lambda self: self._etag, doc="str | None: The ETag, once uploaded.")

    @property
    def finished(self) -> bool:
        """bool: Whether the part is uploaded."""
        return self.state is PartState.FINISHED

    def _enter(self, call: str) -> None:
        if call == "prepare_upload" and self.finished:
            raise ValueError("This part has already been uploaded.")  # upstream's exact error
        check(PART_TRANSITIONS, self.state, call, f"part {self._part_number} of {self.upload_url}")

    def _fail(self) -> None:
        self.state = PartState.FAILED

    @property
    def local_checksum(self) -> str | None:
        """str | None: The base64 checksum of the prepared payload (None without one)."""
        hasher = self._checksum_object
        return None if hasher is None else hasher.b64digest()

    def _prepare_upload_request(self, payload: bytes | memoryview) -> RequestSpec:
        """Build ``PUT {url}?partNumber=…&uploadId=…`` for the part's bytes.

        Args:
            payload: The part bytes (read by the caller).

        Returns:
            The request (with ``x-goog-hash`` when a checksum is enabled).

        Raises:
            ValueError: If the part was already uploaded.
        """
        self._enter("prepare_upload")
        headers = self._headers
        if self._checksum_type is not None:
            self._checksum_object = checksums.new_hasher(self._checksum_type)
            self._checksum_object.update(payload)
            value = checksums.format_goog_hash(
                {self._checksum_type: self._checksum_object.b64digest()}
            )
            headers = {**self._headers, "x-goog-hash": value}
        query = f"partNumber={self._part_number}&uploadId={_quoted(self._upload_id)}"
        url = _with_query(self.upload_url, query)
        self.state = PartState.SENT
        return RequestSpec("PUT", url, payload, headers)

    def _process_upload_response(
        self, response: Any, status: int, headers: Headers, body: bytes = b""
    ) -> None:
        """Check the answer, compare checksums, and record the ETag.

        Raises:
            DataCorruption: If the server rejected the part's digest, or reported a
                different checksum.
            InvalidResponse: For another status, a missing checksum or ETag.
        """
        self._enter("process_upload")
        with judging(self, status):
            self._judge_upload(response, status, headers, body)
        self.state = PartState.FINISHED

    def _judge_upload(self, response: Any, status: int, headers: Headers, body: bytes) -> None:
        if status == 400 and self._checksum_type is not None:
            code = _xml_error_code(body)
            if code in _DIGEST_ERROR_CODES:
                raise common.DataCorruption(
                    response,
                    "Checksum mismatch: checksum calculated by client and server did not "
                    f"match. Error code: {code}, Error message: {body.decode(errors='replace')}",
                )
        _require_status(response, status, (200,))
        if self._checksum_object is not None and self._checksum_type is not None:
            remote = checks.expected_download_checksum(
                response, headers, self._checksum_type, self.upload_url, log_missing=False
            )
            if remote is None:
                raise checks.missing_metadata_checksum(response, self._checksum_type, headers)
            local = self._checksum_object.b64digest()
            if local != remote:
                raise checks.upload_mismatch(response, self._checksum_type, local, remote)
        self._etag = require_header(response, headers, "etag")


def _xml_error_code(body: bytes) -> str | None:
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return None
    code = root.find("Code")
    return code.text if code is not None else None
