"""Resumable-upload state machine: initiate, chunk PUTs, final checksum, status query.

Invariants:
- No I/O: the caller reads each chunk from its stream (``next_read_size`` says how
  many bytes) and hands the bytes in; this object never touches the stream.
- ``_bytes_uploaded`` is only ever set from what the server acknowledged (a 308's
  ``range``, or a 200 for everything sent).
- The checksum covers each byte once, in order, even when bytes are re-sent after
  recovery; it is sent as ``x-goog-hash`` on the final chunk and compared with the
  server's answer after the final 200.
- The object's state is one :class:`UploadState`; :data:`TRANSITIONS` lists every legal
  call per state.  A call upstream refuses raises upstream's ``ValueError`` text ("Upload
  has finished.", "Upload is in an invalid state. …", "This upload has not been
  initiated. …", "This upload has already been initiated."); any other illegal call raises
  :class:`ProtocolStateError` naming the state.  A refused call changes nothing.
- ``FAILED`` is upstream's ``invalid``: entered exactly where google-resumable-media 2.11
  marks an upload invalid (a non-retryable status, a malformed or missing ``range``), so a
  retryable failure leaves the chunk ``SENT`` to be sent again as is, and a checksum
  mismatch after the final 200 leaves it ``FINISHED``.  ``recover`` (a status query)
  works in any state with a session and brings it back to ``READY``.
"""

from __future__ import annotations

import enum
import json
import urllib.parse
from collections.abc import Callable
from typing import Any

from resumable_media import checksums, common
from resumable_media._protocol import checks, ranges
from resumable_media._protocol.request import (
    Headers,
    RequestSpec,
    get_header,
    require_header,
    require_status,
)
from resumable_media._protocol.state import check

__all__ = ["TRANSITIONS", "ResumableUploadProtocol", "UploadState", "check_final_resource"]

_STREAM_ERROR = (
    "Bytes stream is in unexpected state. The local stream has had {} bytes read from it "
    "while {} bytes have already been updated (they should match)."
)


def _bad_range(response: Any, value: str | None) -> common.InvalidResponse:
    return common.InvalidResponse(
        response, 'Unexpected "range" header', value, 'Expected to be of the form "bytes=0-{end}"'
    )


def _is_signed(url: str) -> bool:
    return "x-goog-signature" in url.lower()


class UploadState(enum.Enum):
    """Where a resumable upload session stands."""

    NEW = "new"  # no session yet
    INITIATING = "initiating"  # the initiate POST is out
    READY = "ready"  # a session exists; the next chunk may be sent
    SENT = "sent"  # a chunk PUT (or a buffered PUT, a status query) is out
    FINISHED = "finished"  # the server answered 200 for the whole object
    FAILED = "failed"  # invalid (upstream's word): recover() is needed


_S = UploadState
_SESSION = (_S.READY, _S.SENT, _S.FINISHED, _S.FAILED)  # the states that may have a session
TRANSITIONS: dict[tuple[UploadState, str], frozenset[UploadState]] = {
    (_S.NEW, "prepare_initiate"): frozenset({_S.INITIATING}),
    (_S.INITIATING, "prepare_initiate"): frozenset({_S.INITIATING}),
    (_S.FAILED, "prepare_initiate"): frozenset({_S.INITIATING}),  # a refused initiate, again
    (_S.INITIATING, "process_initiate"): frozenset({_S.INITIATING, _S.READY, _S.FAILED}),
    (_S.NEW, "use_session"): frozenset({_S.READY}),
    **{(state, "next_read_size"): frozenset({state}) for state in (_S.READY, _S.SENT)},
    **{(state, "prepare_chunk"): frozenset({_S.SENT}) for state in (_S.READY, _S.SENT)},
    (_S.SENT, "process_chunk"): frozenset({_S.SENT, _S.READY, _S.FINISHED, _S.FAILED}),
    # The status query: built and judged in any state with a session (upstream's recover()
    # "works whether or not the upload is invalid"); a 308 makes it READY again.
    **{(state, "prepare_recover"): frozenset({state}) for state in _SESSION},
    **{(state, "process_recover"): frozenset({state, _S.READY}) for state in _SESSION},
    **{(state, "process_status"): frozenset({state, _S.READY, _S.FINISHED}) for state in _SESSION},
    # Caller-owned buffers (PipelinedUpload): a buffered PUT or a status query is out.
    **{(state, "prepare_buffer"): frozenset({_S.SENT}) for state in (_S.READY, _S.SENT)},
    **{(state, "prepare_status_query"): frozenset({_S.SENT}) for state in (_S.READY, _S.SENT)},
    (_S.FINISHED, "prepare_status_query"): frozenset({_S.FINISHED}),
    (_S.SENT, "process_buffer"): frozenset({_S.SENT, _S.READY, _S.FINISHED}),
    (_S.FINISHED, "process_buffer"): frozenset({_S.FINISHED}),
    **{(state, "prepare_cancel"): frozenset({state}) for state in _SESSION},
}
"""(state, call) -> the states the call may leave the object in.  ``prepare_delete_generation``
builds a request about the finished object, not the session, and is legal in every state."""

_NOT_INITIATED = (
    "This upload has not been initiated. Please call initiate() before beginning to "
    "transmit chunks."
)
_FINISHED = "Upload has finished."
_INVALID = "Upload is in an invalid state. To recover call `recover()`."
_SENDS_BYTES = ("next_read_size", "prepare_chunk", "prepare_buffer")


class ResumableUploadProtocol:
    """State of one resumable upload session.

    Args:
        upload_url: The URL that starts the session (``…?uploadType=resumable``).
        chunk_size: Bytes per chunk PUT; a multiple of 256 KiB.
        checksum: "md5", "crc32c", "auto" or None.
        headers: Extra headers for every request except the status query.

    Raises:
        ValueError: If ``chunk_size`` is not a multiple of 256 KiB, or ``checksum``
            is not an accepted value.
    """

    def __init__(
        self,
        upload_url: str,
        chunk_size: int,
        checksum: common.Checksum = None,
        headers: dict[str, Any] | None = None,
    ) -> None:
        if chunk_size <= 0 or chunk_size % common.UPLOAD_CHUNK_SIZE != 0:
            raise ValueError(f"{common.UPLOAD_CHUNK_SIZE / 1024} KB must divide chunk size")
        self.upload_url = upload_url
        self._chunk_size = chunk_size
        self._headers: dict[str, Any] = {} if headers is None else headers
        self._checksum_type = checks.resolve_download_checksum(checksum)
        self._checksum_object: checksums.Hasher | None = None
        self._bytes_checksummed = 0
        self._content_type: str | None = None
        self._bytes_uploaded = 0
        self._total_bytes: int | None = None
        self._resumable_url: str | None = None
        self.state = UploadState.NEW
        self._sent: tuple[int, int] | None = None
        self._sent_total: int | None = None
        self._auto_recover = False

    chunk_size = property(lambda self: self._chunk_size, doc="int: Bytes per chunk.")
    resumable_url = property(lambda self: self._resumable_url, doc="str | None: Session URL.")
    bytes_uploaded = property(lambda self: self._bytes_uploaded, doc="int: Bytes acknowledged.")
    total_bytes = property(lambda self: self._total_bytes, doc="int | None: Object size.")

    @property
    def invalid(self) -> bool:
        """bool: Whether recover() is needed (the state is ``FAILED``)."""
        return self.state is UploadState.FAILED

    @property
    def finished(self) -> bool:
        """bool: Whether the upload completed (the state is ``FINISHED``)."""
        return self.state is UploadState.FINISHED

    def _make_invalid(self) -> None:
        self.state = UploadState.FAILED

    def _enter(self, call: str) -> None:
        """Refuse ``call`` unless the table allows it, in upstream's words (and order) where
        upstream refuses it: finished, invalid, not initiated, already initiated."""
        if call in ("prepare_initiate", "use_session"):
            if self._resumable_url is not None:
                raise ValueError("This upload has already been initiated.")
        elif call != "process_initiate":
            if call in _SENDS_BYTES and self.state is UploadState.FINISHED:
                raise ValueError(_FINISHED)
            if call in _SENDS_BYTES and self.state is UploadState.FAILED:
                raise ValueError(_INVALID)
            if self._resumable_url is None:
                raise ValueError(_NOT_INITIATED)
        check(TRANSITIONS, self.state, call, f"ResumableUpload to {self.upload_url}")

    # -- initiate ------------------------------------------------------------------

    def _prepare_initiate_request(
        self,
        stream_position: int,
        metadata: dict[str, Any],
        content_type: str,
        total_bytes: int | None = None,
    ) -> RequestSpec:
        """Build the POST that starts the session.

        Args:
            stream_position: Where the caller's stream is (must be 0).
            metadata: The object resource (name, metadata, …).
            content_type: The media's content type.
            total_bytes: The object size, if known.

        Returns:
            The request.

        Raises:
            ValueError: If already initiated, or the stream is not at its beginning.
        """
        self._enter("prepare_initiate")
        if stream_position != 0:
            raise ValueError("Stream must be at beginning.")
        if total_bytes is not None and total_bytes < 0:
            raise ValueError(f"total_bytes must be >= 0, got {total_bytes}")
        self._content_type = content_type
        self._total_bytes = total_bytes
        self.state = UploadState.INITIATING
        if _is_signed(self.upload_url):
            headers = {**self._headers, "content-type": content_type}
        else:
            headers = {
                **self._headers,
                "content-type": "application/json; charset=UTF-8",
                "x-upload-content-type": content_type,
            }
        if total_bytes is not None:
            headers["x-upload-content-length"] = str(total_bytes)
        body = json.dumps(metadata).encode("utf-8")
        return RequestSpec("POST", self.upload_url, body, headers)

    def _process_initiate_response(self, response: Any, status: int, headers: Headers) -> None:
        """Take the session URL from ``location``.

        Raises:
            InvalidResponse: For a status other than 200/201, or no ``location``.
        """
        self._enter("process_initiate")
        require_status(response, status, (200, 201), self._make_invalid)
        self._resumable_url = require_header(response, headers, "location")
        self.state = UploadState.READY

    # -- chunks --------------------------------------------------------------------

    def next_read_size(self, stream_position: int) -> int:
        """How many bytes the caller should read for the next chunk.

        Args:
            stream_position: Where the caller's stream is.

        Returns:
            The number of bytes to read.

        Raises:
            ValueError: If the upload finished, is invalid, or was not initiated.
        """
        self._enter("next_read_size")
        total = self._total_bytes
        if total is not None and stream_position + self._chunk_size >= total > 0:
            return max(total - stream_position, 0)
        return self._chunk_size

    def _prepare_chunk_request(self, start: int, payload: bytes) -> RequestSpec:
        """Build the PUT for a chunk the caller read at ``start``.

        Args:
            start: The stream position the payload was read from.
            payload: The bytes read (``next_read_size`` of them, fewer at the end).

        Returns:
            The request (with ``x-goog-hash`` when it completes a checksummed upload).

        Raises:
            ValueError: If the stream and the upload disagree (see messages), or as
                :meth:`next_read_size`.
        """
        self._enter("prepare_chunk")
        end = start + len(payload) - 1
        total = self._total_bytes
        if total is None:
            if len(payload) < self._chunk_size:
                total = end + 1
        elif total == 0:
            if payload:
                raise ValueError("Stream specified as empty, but produced non-empty content.")
        elif not payload and not (self._auto_recover and start == total == self._bytes_uploaded):
            # (With automatic recovery, a server that persisted every byte but did not
            # finalize gets the empty final PUT ``bytes */total``.)
            raise ValueError("Stream is already exhausted. There is no content remaining.")
        if start != self._bytes_uploaded:
            raise ValueError(_STREAM_ERROR.format(start, self._bytes_uploaded))
        self._update_checksum(start, payload)
        assert self._resumable_url is not None
        headers = {
            **self._headers,
            "content-type": self._content_type,
            "content-range": ranges.format_content_range(start, end, total),
        }
        if total is not None and end + 1 == total:
            hasher = self._checksum_object
            if hasher is not None and self._bytes_checksummed == total:
                assert self._checksum_type is not None
                value = {self._checksum_type: hasher.b64digest()}
                headers["x-goog-hash"] = checksums.format_goog_hash(value)
        self._sent = (start, len(payload))
        self._sent_total = total
        self.state = UploadState.SENT
        return RequestSpec("PUT", self._resumable_url, payload, headers)

    def _update_checksum(self, start: int, payload: bytes) -> None:
        if self._checksum_type is None:
            return
        if self._checksum_object is None:
            self._checksum_object = checksums.new_hasher(self._checksum_type)
        skip = self._bytes_checksummed - start
        if skip >= len(payload):
            return
        data = memoryview(payload)[max(skip, 0) :]
        self._checksum_object.update(data)
        self._bytes_checksummed += len(data)

    def _process_chunk_response(
        self, response: Any, status: int, headers: Headers, body: bytes = b""
    ) -> int:
        """Interpret the answer to a chunk PUT.

        Args:
            response: The response.
            status: Its status.
            headers: Its headers.
            body: Its body (the object resource JSON after the final 200).

        Returns:
            The number of bytes of the chunk the server did not persist (0 normally;
            more when a 308 acknowledged less than was sent).

        Raises:
            InvalidResponse: For a status other than 200/308, or a bad ``range``.
            DataCorruption: If the final checksum differs from the server's.
            ProtocolStateError: Unless a chunk request is out.
        """
        self._enter("process_chunk")
        start, sent = self._sent if self._sent is not None else (self._bytes_uploaded, 0)
        require_status(response, status, (200, 308), self._make_invalid)
        if status == 200:
            total = self._sent_total
            if total is None or start + sent != total:
                # "Complete" while bytes remain: reporting success would lose them.
                self._make_invalid()
                raise common.InvalidResponse(
                    response,
                    "The server reported the upload complete, but only "
                    f"{start + sent} of {'the' if total is None else total} bytes were sent.",
                )
            self._bytes_uploaded = start + sent
            self.state = UploadState.FINISHED  # even if the checksum then differs (upstream)
            self._validate_checksum(response, headers, body)
            return 0
        previous = self._bytes_uploaded
        value = get_header(headers, "range")
        if value is None and self._auto_recover and previous == 0:
            # GCS omits ``range`` when nothing is persisted: start over.
            self.state = UploadState.READY
            return start + sent
        value = require_header(response, headers, "range", self._make_invalid)
        try:
            persisted = ranges.parse_persisted_range(value)
        except ValueError:
            persisted = -1
        if not previous <= persisted <= start + sent:
            # Unparsable, more than was ever sent, or less than already acknowledged.
            self._make_invalid()
            raise _bad_range(response, value)
        self._bytes_uploaded = persisted
        self.state = UploadState.READY
        return start + sent - persisted

    def _validate_checksum(self, response: Any, headers: Headers, body: bytes) -> None:
        if self._checksum_type is None or self._checksum_object is None:
            return
        key = "md5Hash" if self._checksum_type == "md5" else "crc32c"
        try:
            resource = json.loads(body) if body else {}
        except ValueError:
            resource = {}
        remote = resource.get(key) if isinstance(resource, dict) else None
        if remote is None:
            raise checks.missing_metadata_checksum(response, self._checksum_type, headers)
        local = self._checksum_object.b64digest()
        if local != remote:
            raise checks.upload_mismatch(response, self._checksum_type, local, remote)

    # -- status query --------------------------------------------------------------

    def _prepare_recover_request(self) -> RequestSpec:
        """Build the status query: an empty PUT with ``content-range: bytes */*``.

        Raises:
            ValueError: If the upload was not initiated.
        """
        self._enter("prepare_recover")
        return RequestSpec("PUT", self._session_url(), None, {"content-range": "bytes */*"})

    def _process_status_response(
        self, response: Any, status: int, headers: Headers, body: bytes
    ) -> int:
        """Like :meth:`_process_recover_response`, but a 200 (the upload already
        completed, e.g. its final answer was lost) finishes the upload.

        Returns:
            The stream position to resume from.

        Raises:
            InvalidResponse: For another status or a malformed ``range``.
            DataCorruption: If the completed object's checksum differs.
        """
        self._enter("process_status")
        if status != 200:
            return self._recovered(response, status, headers)
        try:
            resource = json.loads(body) if body else {}
            size = int(resource["size"])
        except (ValueError, KeyError, TypeError):
            size = self._bytes_checksummed
        self._bytes_uploaded = size
        self.state = UploadState.FINISHED
        self._validate_checksum(response, headers, body)
        return size

    def _process_recover_response(self, response: Any, status: int, headers: Headers) -> int:
        """Re-sync with the server's persisted size.

        Returns:
            The stream position to resume from (``bytes_uploaded``).

        Raises:
            InvalidResponse: If the status is not 308 or ``range`` is malformed.
        """
        self._enter("process_recover")
        return self._recovered(response, status, headers)

    def _recovered(self, response: Any, status: int, headers: Headers) -> int:
        require_status(response, status, (308,))
        value = get_header(headers, "range")
        if value is None:
            self._bytes_uploaded = 0
        else:
            try:
                persisted = ranges.parse_persisted_range(value)
            except ValueError:
                persisted = -1
            total = self._total_bytes
            if persisted < 0 or (total is not None and persisted > total):
                raise _bad_range(response, value)
            self._bytes_uploaded = persisted
        if self.state is not UploadState.FINISHED:  # upstream: finished stays finished
            self.state = UploadState.READY
        return self._bytes_uploaded

    # -- chunks from caller-owned buffers --------------------------------------------
    # A driver that keeps every unacknowledged byte in its own buffers (PipelinedUpload)
    # sends any slice of them: it says which request is the final one and hands in the
    # hashes it took itself, and a 308 without ``range`` means nothing is persisted.

    def use_session(self, resumable_url: str) -> None:
        """Continue an existing session (its URL from an earlier run) instead of initiating.

        Raises:
            ValueError: If this upload already has a session.
        """
        self._enter("use_session")
        self._resumable_url = resumable_url
        self.state = UploadState.READY

    def _session_url(self) -> str:
        if self._resumable_url is None:
            raise ValueError(
                "This upload has not been initiated. Please call initiate() before "
                "beginning to transmit chunks."
            )
        return self._resumable_url

    def prepare_buffer_request(
        self,
        start: int,
        length: int,
        body: Any,
        *,
        final: bool,
        hashes: dict[str, str] | None = None,
    ) -> RequestSpec:
        """Build the PUT of ``length`` caller-held bytes at ``start``.

        Args:
            start: The first byte (must be what the server acknowledged so far).
            length: The number of bytes ``body`` carries (0 only for a final request:
                ``bytes */start`` completes an upload that ended on a chunk boundary).
            body: A buffer, or an iterable of buffers (streamed with ``len(body)``).
            final: Whether these are the last bytes of the object.
            hashes: The whole object's base64 hashes for ``x-goog-hash`` (final only).

        Returns:
            The request.

        Raises:
            ValueError: If the upload finished, has no session, or ``start`` is not the
                acknowledged size.
        """
        url = self._session_url()
        self._enter("prepare_buffer")
        if start != self._bytes_uploaded:
            raise ValueError(_STREAM_ERROR.format(start, self._bytes_uploaded))
        if not length and not final:
            raise ValueError("Stream is already exhausted. There is no content remaining.")
        end = start + length
        headers = {
            **self._headers,
            "content-range": ranges.format_content_range(start, end - 1, end if final else None),
        }
        if final and hashes:
            headers["x-goog-hash"] = checksums.format_goog_hash(hashes)
        self._sent = (start, length)
        self._sent_total = end if final else None
        self.state = UploadState.SENT
        return RequestSpec("PUT", url, body, headers)

    def prepare_cancel_request(self) -> RequestSpec:
        """Build ``DELETE {session}``: cancel the session (GCS answers 499), with the extra
        headers, so nothing can finalize it any more."""
        self._enter("prepare_cancel")
        return RequestSpec("DELETE", self._session_url(), None, dict(self._headers))

    def prepare_delete_generation(self, resource: dict[str, Any]) -> RequestSpec | None:
        """Build the JSON API ``DELETE`` of exactly the generation this upload created, or
        None when the upload URL is not a JSON API one (a signed URL: no API to delete by).
        """
        head, marker, _ = self.upload_url.partition("/upload/storage/v1/b/")
        if not marker or not resource.get("bucket") or not resource.get("name"):
            return None
        bucket = urllib.parse.quote(str(resource["bucket"]), safe="")
        name = urllib.parse.quote(str(resource["name"]), safe="")
        url = f"{head}/storage/v1/b/{bucket}/o/{name}"
        if resource.get("generation") is not None:
            url += f"?ifGenerationMatch={resource['generation']}"
        return RequestSpec("DELETE", url, None, dict(self._headers))

    def prepare_status_query(self) -> RequestSpec:
        """Build the status query (``content-range: bytes */*``) with the extra headers."""
        self._enter("prepare_status_query")
        headers = {**self._headers, "content-range": "bytes */*"}
        spec = RequestSpec("PUT", self._session_url(), b"", headers)
        if self.state is not UploadState.FINISHED:
            self.state = UploadState.SENT
        return spec

    def process_buffer_response(
        self, response: Any, status: int, headers: Headers, body: Callable[[], Any]
    ) -> int | dict[str, Any]:
        """Interpret the answer to a buffered PUT or a status query.

        Args:
            response: The response.
            status: Its status.
            headers: Its headers.
            body: Returns the parsed JSON body (called only for a 200/201).

        Returns:
            The bytes the server persisted (308), or the object resource once complete.

        Raises:
            InvalidResponse: Another status, or a malformed ``range``.
            ConnectionError: The final JSON was cut off (the object exists; a status
                query fetches it again).
        """
        self._enter("process_buffer")
        if status == common.PERMANENT_REDIRECT:
            value = get_header(headers, "range")
            try:
                persisted = 0 if value is None else ranges.parse_persisted_range(value)
            except ValueError:
                raise _bad_range(response, value) from None
            self._bytes_uploaded = persisted
            if self.state is not UploadState.FINISHED:
                self.state = UploadState.READY
            return persisted
        if status not in (200, 201):
            excerpt = str(getattr(response, "text", "") or "")[:500]
            raise common.InvalidResponse(
                response,
                "Request failed with status code",
                status,
                "Expected one of",
                200,
                201,
                common.PERMANENT_REDIRECT,
                excerpt,
            )
        try:
            resource: dict[str, Any] = body()
        except ValueError:
            raise ConnectionError("the final response body was not valid JSON") from None
        self.state = UploadState.FINISHED
        return resource


def check_final_resource(
    response: Any, resource: dict[str, Any], sent: int, hashes: dict[str, str | None]
) -> bool:
    """Check a completed upload's object resource against what was sent.

    Args:
        response: The response that carried ``resource``.
        resource: The object resource JSON.
        sent: The number of bytes sent.
        hashes: ``{"crc32c": b64 | None, "md5Hash": b64 | None}``: the local hashes.

    Returns:
        True when at least one hash was compared (and matched).

    Raises:
        DataCorruption: The size or a hash differs.
    """
    size = resource.get("size")
    if size is not None and int(size) != sent:
        raise common.DataCorruption(
            response, f"the uploaded object has {size} bytes but {sent} were sent"
        )
    verified = False
    for key, local in hashes.items():
        remote = resource.get(key)
        if local is None or remote is None:
            continue
        if remote != local:
            raise common.DataCorruption(
                response, f"the uploaded object's {key} is {remote} but the data sent has {local}"
            )
        verified = True
    return verified
