"""Chunked-download state machine: consecutive ranged GETs of ``chunk_size`` bytes.

Invariants:
- No I/O: callers hand in statuses, headers and each chunk's body.
- Bodies are stored bytes, never decoded; a chunk counts only once it is complete,
  so a retried chunk is requested again from its first byte.
- The running checksum covers the chunks in order; when they cover the whole
  object (start 0, no end) it is compared with the server's at the end.
- The object's state is one :class:`ChunkedState`; :data:`TRANSITIONS` lists every legal
  call per state, and any other call raises :class:`ProtocolStateError` naming the state.
- A failure with a non-retryable status, or inconsistent headers, moves it to ``FAILED``
  (``invalid``) for good.  As upstream, a retryable status and a 416 that is not the empty
  object's leave it usable: the same request may be sent again.
"""

from __future__ import annotations

import enum
from typing import Any

from resumable_media import checksums, common
from resumable_media._protocol import checks, ranges
from resumable_media._protocol.ranged import judge_range
from resumable_media._protocol.request import (
    Headers,
    RequestSpec,
    get_header,
    require_header,
    require_status,
)
from resumable_media._protocol.state import check

__all__ = ["TRANSITIONS", "ChunkedDownloadProtocol", "ChunkedState"]

_ACCEPTABLE = (200, 206)


class ChunkedState(enum.Enum):
    """Where a chunked download stands."""

    READY = "ready"  # the next chunk may be asked for
    SENT = "sent"  # a chunk's request is out; its answer has not been accepted
    RECEIVING = "receiving"  # a chunk's headers were accepted; its body is awaited
    FINISHED = "finished"  # the last chunk was consumed
    FAILED = "failed"  # invalid: a failure made the download unusable


_S = ChunkedState
TRANSITIONS: dict[tuple[ChunkedState, str], frozenset[ChunkedState]] = {
    (_S.READY, "prepare"): frozenset({_S.SENT}),
    (_S.SENT, "prepare"): frozenset({_S.SENT}),
    (_S.RECEIVING, "prepare"): frozenset({_S.SENT}),  # a chunk abandoned: ask again
    (_S.SENT, "process_response"): frozenset({_S.SENT, _S.RECEIVING, _S.FINISHED, _S.FAILED}),
    (_S.RECEIVING, "process_response"): frozenset(  # the same request sent again
        {_S.SENT, _S.RECEIVING, _S.FINISHED, _S.FAILED}
    ),
    (_S.RECEIVING, "process_body"): frozenset({_S.READY, _S.FINISHED, _S.FAILED}),
}
"""(state, call) -> the states the call may leave the object in."""

_REFUSALS = {
    _S.FINISHED: "Download has finished.",
    _S.FAILED: "Download is invalid and cannot be re-used.",
}
"""Upstream's words for a request asked of a finished or invalid download."""


class ChunkedDownloadProtocol:
    """State of a download made of consecutive ranged GETs of ``chunk_size`` bytes.

    Bodies are handled as stored bytes (never decoded).  When the chunks cover the
    whole object (``start == 0``, ``end is None``) and the server reported a
    checksum, the running checksum is checked after the last chunk.

    Args:
        media_url: The media URL.
        chunk_size: Bytes per request.
        start: The first byte (must be >= 0).
        end: The last byte (inclusive), or None for the end of the object.
        headers: Extra request headers; ``range`` is written into this dict.
        checksum: "auto", "md5", "crc32c" or None (for whole-object runs).

    Raises:
        ValueError: If ``start`` is negative or ``checksum`` is unknown.
    """

    def __init__(
        self,
        media_url: str,
        chunk_size: int,
        start: int = 0,
        end: int | None = None,
        headers: dict[str, Any] | None = None,
        checksum: common.Checksum = "auto",
    ) -> None:
        if start < 0:
            raise ValueError("On a chunked download the starting value cannot be negative.")
        if chunk_size <= 0:
            raise ValueError(f"chunk_size must be positive, got {chunk_size}")
        if end is not None and end < start:
            raise ValueError(f"end ({end}) must be >= start ({start})")
        self.media_url = media_url
        self.chunk_size = chunk_size
        self.start = start
        self.end = end
        self._headers: dict[str, Any] = {} if headers is None else headers
        self.checksum = checksum
        self._checksum_type = checks.resolve_download_checksum(checksum)
        self._checksum_object: checksums.Hasher | None = None
        if self._checksum_type is not None and start == 0 and end is None:
            self._checksum_object = checksums.new_hasher(self._checksum_type)
        self._expected_checksum: str | None = None
        self._bytes_downloaded = 0
        self._total_bytes: int | None = None
        self._announced_total: int | None = None
        self.state = ChunkedState.READY
        # The last chunk was consumed, even if its whole-object check then failed (upstream
        # calls such a download both finished and invalid).
        self._consumed_last = False
        self._pending: ranges.ContentRange | None = None
        self._requested: tuple[int, int] | None = None

    def _enter(self, call: str) -> None:
        if (self.state, call) in TRANSITIONS:
            return
        if call == "prepare" and self.state in _REFUSALS:
            finished = ChunkedState.FINISHED if self._consumed_last else self.state
            raise ValueError(_REFUSALS[finished])  # upstream's exact error
        check(TRANSITIONS, self.state, call, f"ChunkedDownload of {self.media_url}")

    @property
    def finished(self) -> bool:
        """bool: Whether the last chunk has been consumed."""
        return self.state is ChunkedState.FINISHED or self._consumed_last

    @property
    def invalid(self) -> bool:
        """bool: Whether a failure has made the download unusable."""
        return self.state is ChunkedState.FAILED

    @property
    def bytes_downloaded(self) -> int:
        """int: Bytes consumed so far."""
        return self._bytes_downloaded

    @property
    def total_bytes(self) -> int | None:
        """int | None: The object size, once a response has revealed it."""
        return self._total_bytes

    def _make_invalid(self) -> None:
        self.state = ChunkedState.FAILED

    def _prepare_request(self) -> RequestSpec:
        """Build the GET for the next chunk.

        Returns:
            The request, with ``range: bytes=s-e`` in the caller's headers dict.

        Raises:
            ValueError: If the download has finished or is invalid.
        """
        self._enter("prepare")
        self.state = ChunkedState.SENT
        self._pending = None
        curr_start = self.start + self._bytes_downloaded
        curr_end = curr_start + self.chunk_size - 1
        if self.end is not None:
            curr_end = min(curr_end, self.end)
        if self._total_bytes is not None:
            curr_end = min(curr_end, self._total_bytes - 1)
        self._headers["range"] = f"bytes={curr_start}-{curr_end}"
        self._requested = (curr_start, curr_end)
        return RequestSpec("GET", self.media_url, None, self._headers)

    def process_response(self, response: Any, status: int, headers: Headers) -> int:
        """Check a chunk's status and headers before its body is read.

        Args:
            response: The response (stored on raised exceptions).
            status: Its status.
            headers: Its headers.

        Returns:
            The number of body bytes to read (0 for the empty object).

        Raises:
            InvalidResponse: For an unexpected status, a bad ``content-range``, or a
                ``content-length`` that disagrees with it.
        """
        self._enter("process_response")
        self.state = ChunkedState.SENT
        # As upstream: a 416 must say what it covers (the download stays valid).
        if status == 416 and require_header(response, headers, "content-range") == "bytes */0":
            self.state = ChunkedState.FINISHED
            self._total_bytes = 0
            return 0
        require_status(response, status, _ACCEPTABLE, self._make_invalid)
        value = require_header(response, headers, "content-range", self._make_invalid)
        parsed = self._check_range(response, value)
        if get_header(headers, "transfer-encoding") is None:
            raw_length = require_header(response, headers, "content-length", self._make_invalid)
            try:
                length = int(raw_length)
            except ValueError:
                self._make_invalid()
                raise common.InvalidResponse(
                    response, "Unexpected content-length header", raw_length
                ) from None
            if length != parsed.length:
                # Expected: what Content-Range announced; Received: what will arrive.
                self._make_invalid()
                raise common.InvalidResponse(
                    response,
                    "Response is different size than content-length",
                    "Expected",
                    parsed.length,
                    "Received",
                    length,
                )
        if self._checksum_object is not None and self._expected_checksum is None:
            self._expected_checksum = checks.expected_download_checksum(
                response, headers, self._checksum_type or "", self.media_url, log_missing=False
            )
        self._pending = parsed
        self.state = ChunkedState.RECEIVING
        return parsed.length

    def _check_range(self, response: Any, value: str) -> ranges.ContentRange:
        # A chunk is only acceptable for the bytes that were asked for, and the object
        # may not change size between chunks: anything else would be written in the
        # wrong place or end the download early.
        requested = self._requested
        total = self._total_bytes if self._total_bytes is not None else self._announced_total
        first, last = (None, None) if requested is None else requested
        parsed = judge_range(value, first, last, None)
        if parsed is not None and parsed.total is not None and total is not None:
            parsed = judge_range(value, first, last, total)
        if parsed is None:
            self._make_invalid()
            if judge_range(value, None, None, None) is None:  # not a range at all
                raise common.InvalidResponse(
                    response,
                    "Unexpected content-range header",
                    value,
                    'Expected to be of the form "bytes {start}-{end}/{total}"',
                )
            expected = "?" if requested is None else f"{requested[0]}-{requested[1]}"
            raise common.InvalidResponse(
                response,
                "Unexpected content-range header",
                value,
                f"Expected bytes {expected}/{total if total is not None else '*'}",
            )
        # The first announced size binds later chunks; total_bytes itself is learnt only
        # once a chunk has been accepted (process_body), as upstream.
        if total is None:
            self._announced_total = parsed.total
        return parsed

    def chunk_hasher(self) -> checksums.Hasher | None:
        """A copy of the running hasher, for the caller to feed one chunk's pieces as
        they arrive (hand it back to :meth:`process_body`); None when not hashing."""
        return None if self._checksum_object is None else self._checksum_object.copy()

    def process_body(
        self,
        response: Any,
        body: bytes | bytearray | memoryview,
        hashed: checksums.Hasher | None = None,
    ) -> None:
        """Account for a chunk's complete body (already read by the caller).

        Args:
            response: The response it came from.
            body: The body bytes.
            hashed: The :meth:`chunk_hasher` copy, already fed exactly ``body``.

        Raises:
            InvalidResponse: If the body length differs from the announced length.
            DataCorruption: If this was the last chunk of a whole-object run and
                the checksum does not match.
        """
        self._enter("process_body")
        parsed = self._pending
        assert parsed is not None  # RECEIVING always has the accepted range
        self._pending = None
        self.state = ChunkedState.READY
        if len(body) != parsed.length:
            self._make_invalid()
            raise common.InvalidResponse(
                response,
                "Response is different size than content-length",
                "Expected",
                parsed.length,
                "Received",
                len(body),
            )
        if hashed is not None:
            self._checksum_object = hashed
        elif self._checksum_object is not None:
            self._checksum_object.update(body)
        self._bytes_downloaded += parsed.length
        if self._total_bytes is None:
            self._total_bytes = parsed.total
        if (self.end is not None and parsed.end >= self.end) or (
            parsed.total is not None and parsed.end >= parsed.total - 1
        ):
            self.state = ChunkedState.FINISHED
            self._consumed_last = True
            self._check_whole(response, parsed)

    def _check_whole(self, response: Any, parsed: ranges.ContentRange) -> None:
        hasher, expected = self._checksum_object, self._expected_checksum
        if hasher is None or expected is None or self.end is not None:
            return
        if parsed.total is None or self._bytes_downloaded != parsed.total:
            return
        actual = hasher.b64digest()
        if actual != expected:
            self._make_invalid()
            raise common.DataCorruption(
                response,
                checks.mismatch_message(
                    self.media_url,
                    self._checksum_type or "",
                    expected,
                    actual,
                    parsed.total,
                    None,
                    self._bytes_downloaded,
                ),
            )
