"""Download state machine: one streaming GET of an object or a range, resumed on failure.

Invariants:
- No I/O: callers hand in statuses, headers and body bytes; methods return request
  descriptions and the bytes to write.
- A single download hashes the *stored* bytes (compressed, when served with
  ``Content-Encoding: gzip``) in order, and the running hash continues across resumed
  attempts, so the whole-object check is made whenever the bytes cover the object.
- Resume requests ask for exactly the bytes not yet received, pinned to the
  generation seen first.
- ``_bytes_downloaded`` counts bytes handed back for the caller's stream; the resume
  offset counts stored bytes received (they differ only while decoding gzip).
- The object's state is one :class:`DownloadState`; :data:`TRANSITIONS` lists every legal
  call per state, and any other call raises :class:`ProtocolStateError` naming the state
  (``_prepare_request`` of a used download raises upstream's ``ValueError`` instead).
- Any exception while judging an answer or its body moves it to ``FAILED``: that attempt
  is over, and only a new one (:meth:`DownloadProtocol.prepare_attempt`, which resumes)
  may follow.  ``prepare_attempt`` is legal in every state after the first request, so a
  retry driver can always ask for the next attempt.
"""

from __future__ import annotations

import enum
import logging
import zlib
from typing import Any

from resumable_media import checksums, common
from resumable_media._protocol import checks, ranges
from resumable_media._protocol.ranged import (
    add_generation,
    header_int,
    judge_generation,
    judge_range,
    url_generation,
)
from resumable_media._protocol.request import (
    Headers,
    RequestSpec,
    get_header,
    require_status,
)
from resumable_media._protocol.state import check, step

__all__ = ["TRANSITIONS", "DownloadProtocol", "DownloadState", "add_generation", "header_int"]

_LOGGER = logging.getLogger(__name__)
_ACCEPTABLE = (200, 206)
_DECODE_PIECE = 8 * 1024 * 1024


def _new_decoder(encoding: str | None) -> Any:
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return zlib.decompressobj()
    if encoding == "br":
        try:
            import brotli  # type: ignore[import-not-found, unused-ignore]
        except ImportError:
            _LOGGER.warning("brotli is not installed: writing the br-encoded bytes as stored")
            return None
        return brotli.Decompressor()
    return None


class DownloadState(enum.Enum):
    """Where a (possibly resumed) streaming download stands."""

    READY = "ready"  # nothing prepared yet
    SENT = "sent"  # the first request is out; no answer has been judged
    RESENT = "resent"  # a later attempt is out (an earlier answer was judged)
    RECEIVING = "receiving"  # an answer was accepted; its body pieces follow
    COMPLETE = "complete"  # the body ended and passed the whole-object check
    FAILED = "failed"  # the last attempt failed; only a new attempt may follow


_S = DownloadState
TRANSITIONS: dict[tuple[DownloadState, str], frozenset[DownloadState]] = {
    (_S.READY, "prepare"): frozenset({_S.SENT}),
    (_S.SENT, "prepare"): frozenset({_S.SENT}),  # as upstream: reusable until answered
    (_S.SENT, "prepare_attempt"): frozenset({_S.SENT}),
    **{
        (state, "prepare_attempt"): frozenset({_S.RESENT})
        for state in (_S.RESENT, _S.RECEIVING, _S.COMPLETE, _S.FAILED)
    },
    (_S.SENT, "process_response"): frozenset({_S.RECEIVING, _S.FAILED}),
    (_S.RESENT, "process_response"): frozenset({_S.RECEIVING, _S.FAILED}),
    (_S.RECEIVING, "feed"): frozenset({_S.RECEIVING, _S.FAILED}),
    (_S.RECEIVING, "flush"): frozenset({_S.RECEIVING, _S.FAILED}),
    (_S.RECEIVING, "finish"): frozenset({_S.COMPLETE, _S.FAILED}),
}
"""(state, call) -> the states the call may leave the object in."""


class DownloadProtocol:
    """State of one (possibly resumed) streaming download of an object or a byte range.

    Args:
        media_url: The media URL.
        start: The first byte wanted (negative: a suffix of ``-start`` bytes), or None.
        end: The last byte wanted (inclusive), or None.
        headers: Extra request headers; the ``range`` header is written into this dict.
        checksum: "md5", "crc32c", "auto" or None.
        decode: Whether ``Content-Encoding`` bodies are decoded before being handed
            back (``Download``) or returned as stored (``RawDownload``).

    Raises:
        ValueError: If ``checksum`` is not one of the accepted values.
    """

    def __init__(
        self,
        media_url: str,
        start: int | None = None,
        end: int | None = None,
        headers: dict[str, Any] | None = None,
        checksum: common.Checksum = "md5",
        *,
        decode: bool = True,
    ) -> None:
        self.media_url = media_url
        self.start = start
        self.end = end
        self._headers: dict[str, Any] = {} if headers is None else headers
        self.checksum = checksum
        self._checksum_type = checks.resolve_download_checksum(checksum)
        self._decode = decode
        self.state = DownloadState.READY
        self._bytes_downloaded = 0
        self._stored_received = 0
        self._expected_checksum: str | None = None
        self._checksum_object: checksums.Hasher | None = None
        self._object_generation: int | None = None
        self._range_origin: int | None = None
        self._covers_object = False
        self._stored_total: int | None = None
        self._transcoded = False
        self._decoder: Any = None
        self._last_headers: Headers = {}
        self._first_start: int | None = None
        self._expected_start: int | None = None

    def _enter(self, call: str) -> None:
        check(TRANSITIONS, self.state, call, f"Download of {self.media_url}")

    def _fail(self) -> None:
        self.state = DownloadState.FAILED

    @property
    def finished(self) -> bool:
        """bool: Whether an answer has been judged (the download can only be used once)."""
        return self.state not in (DownloadState.READY, DownloadState.SENT)

    @property
    def bytes_downloaded(self) -> int:
        """int: Bytes handed back for the caller's stream so far."""
        return self._bytes_downloaded

    def _prepare_request(self) -> RequestSpec:
        """Build the first request; the object is single use.

        Returns:
            The GET request.

        Raises:
            ValueError: If the download was already used.
        """
        if self.finished:
            raise ValueError("A download can only be used once.")  # upstream's exact error
        self._enter("prepare")
        start, end = self.start, self.end
        if start is not None and start >= 0 and end is not None and end < start:
            raise ValueError(f"end ({end}) must be >= start ({start})")
        if self._object_generation is None:
            self._object_generation = url_generation(self.media_url)
        # A 206 must start where the request did (unknown for a suffix range).
        self._first_start = None if start is not None and start < 0 else (start or 0)
        self._expected_start = self._first_start
        value = ranges.range_header(self.start, self.end)
        if value is not None:
            self._headers["range"] = value
        self.state = DownloadState.SENT
        return RequestSpec("GET", self.media_url, None, self._headers)

    def prepare_attempt(self, first: RequestSpec) -> RequestSpec:
        """The request for the next attempt: the first request, or a resume of it.

        Args:
            first: The request returned by :meth:`_prepare_request`.

        Returns:
            ``first`` when nothing was received yet; otherwise a GET for the bytes
            still missing, pinned to the object generation.

        Raises:
            ProtocolStateError: Before :meth:`_prepare_request`.
        """
        self._enter("prepare_attempt")
        if self.state is not DownloadState.SENT:
            self.state = DownloadState.RESENT
        if self._stored_received == 0 or self._transcoded:
            self._expected_start = self._first_start
            return first
        origin = self._range_origin
        if origin is None:
            origin = self.start if self.start is not None and self.start >= 0 else 0
        self._expected_start = origin + self._stored_received
        value = ranges.range_header(origin + self._stored_received, self.end)
        assert value is not None
        self._headers["range"] = value
        url = first.url
        if self._object_generation is not None:
            url = add_generation(url, self._object_generation)
        return RequestSpec("GET", url, None, self._headers)

    @step("process_response")
    def process_response(self, response: Any, status: int, headers: Headers) -> bool:
        """Interpret the status and headers of one attempt (before its body is read).

        Args:
            response: The response object (stored on raised exceptions).
            status: Its status code.
            headers: Its headers (case-insensitive, or lower-case keys).

        Returns:
            True when the caller must rewind its stream to 0 first (a transcoded
            response, which ignores Range, or a full 200 answer to a resume request
            arrived after bytes were written).

        Raises:
            InvalidResponse: For a status other than 200/206 or a repeated x-goog-hash.
            ProtocolStateError: Unless a request is out.
        """
        # No answer was accepted before this one: the object's facts are still to learn.
        first = self._range_origin is None
        self._last_headers = headers
        require_status(response, status, _ACCEPTABLE)
        if status == 206:
            self._check_partial(response, headers)
        if self._object_generation is None:
            self._object_generation = judge_generation(
                response, get_header(headers, "x-goog-generation"), None
            )
        encoding = (get_header(headers, "content-encoding") or "").lower() or None
        stored_encoding = (get_header(headers, "x-goog-stored-content-encoding") or "").lower()
        transcoded = stored_encoding == "gzip" and encoding != "gzip"
        # A transcoded body ignores Range, and a 200 to a resume request is the whole
        # object again: either way the bytes start over at 0.
        resumed = self._stored_received > 0 or self._bytes_downloaded > 0
        rewind = resumed and (transcoded or status == 200)
        if rewind or transcoded:
            self._restart_body()
        self._transcoded = transcoded
        if first or rewind:
            self._learn_object(response, status, headers)
        if self._decode and self._decoder is None and not transcoded:
            self._decoder = _new_decoder(encoding)
        self.state = DownloadState.RECEIVING
        return rewind

    def _check_partial(self, response: Any, headers: Headers) -> None:
        # A 206 whose range is not the one requested would put bytes in the wrong place.
        value = get_header(headers, "content-range")
        expected = self._expected_start
        known_total = self._stored_total if self._stored_received > 0 else None
        if judge_range(value, expected, self.end, known_total) is None:
            wanted = "?" if expected is None else str(expected)
            raise common.InvalidResponse(
                response,
                "Unexpected content-range header",
                value,
                f'Expected to be of the form "bytes {wanted}-{{end}}/{{total}}"',
            )

    def _restart_body(self) -> None:
        self._bytes_downloaded = 0
        self._stored_received = 0
        self._decoder = None
        if self._checksum_type is not None:
            self._checksum_object = checksums.new_hasher(self._checksum_type)

    def _learn_object(self, response: Any, status: int, headers: Headers) -> None:
        if self._checksum_type is not None:
            self._expected_checksum = checks.expected_download_checksum(
                response, headers, self._checksum_type, self.media_url
            )
            self._checksum_object = checksums.new_hasher(self._checksum_type)
        if status == 200:
            length = get_header(headers, "content-length")
            self._stored_total = (
                header_int(response, "content-length", length) if length is not None else None
            )
            self._range_origin = 0  # set last: it marks the object's facts as learnt
            self._covers_object = True
            return
        value = get_header(headers, "content-range")
        if value is None:
            return
        try:
            parsed = ranges.parse_content_range(value)
        except ValueError:
            return
        self._range_origin = parsed.start
        self._stored_total = parsed.total
        self._covers_object = parsed.start == 0 and (
            parsed.total is not None and parsed.end == parsed.total - 1
        )

    @property
    def running_hash(self) -> checksums.Hasher | None:
        """The hasher of the stored bytes received so far (None without a checksum)."""
        return self._checksum_object

    @step("feed")
    def feed(
        self, data: bytes | bytearray | memoryview, *, hashed: bool = False
    ) -> list[bytes | memoryview]:
        """Account for body bytes as received (stored form) and return what to write.

        Args:
            data: The next piece of the body, exactly as received.
            hashed: True when the caller has fed ``data`` to :attr:`running_hash`
                itself (e.g. on another thread, in order).

        Returns:
            The pieces to write to the caller's stream, in order (decoded when
            decoding is on and the body is encoded; otherwise ``data`` itself).
        """
        if self._checksum_object is not None and not hashed:
            self._checksum_object.update(data)
        self._stored_received += len(data)
        if self._decoder is None:
            self._bytes_downloaded += len(data)
            return [data if isinstance(data, memoryview) else memoryview(data)]
        out: list[bytes | memoryview] = []
        chunk: Any = data
        while chunk:
            try:
                piece = self._decoder.decompress(chunk, _DECODE_PIECE)
            except Exception as exc:  # zlib.error, brotli.error: the body is not what it claims
                raise self._undecodable(exc) from exc
            chunk = getattr(self._decoder, "unconsumed_tail", b"")
            if piece:
                out.append(piece)
                self._bytes_downloaded += len(piece)
        return out

    @step("flush")
    def flush(self) -> list[bytes | memoryview]:
        """Return any bytes the decoder still holds once the body has ended."""
        if self._decoder is None or not hasattr(self._decoder, "flush"):
            return []
        try:
            tail = self._decoder.flush()
        except Exception as exc:  # a truncated or corrupt encoded body
            raise self._undecodable(exc) from exc
        self._bytes_downloaded += len(tail)
        return [tail] if tail else []

    def _undecodable(self, exc: Exception) -> common.DataCorruption:
        return common.DataCorruption(
            None,
            f"The encoded response body of {self.media_url} could not be decoded "
            f"({type(exc).__name__}: {exc}); nothing more was written.",
        )

    @step("finish")
    def finish(self, response: Any) -> None:
        """Validate the whole-object checksum once the last body byte has arrived.

        The check runs when the received bytes cover the whole stored object
        (a 200, or a 206 that started at 0 and reached the end, including any
        number of resumed attempts) and the server reported a checksum.

        Args:
            response: The final response.

        Raises:
            ConnectionError: If fewer bytes arrived than the object holds (retryable;
                the next attempt resumes).
            DataCorruption: If the checksum does not match.
        """
        self.state = DownloadState.COMPLETE  # unless a check below raises (then FAILED)
        hasher, expected = self._checksum_object, self._expected_checksum
        if hasher is None or expected is None or self._transcoded or not self._covers_object:
            return
        headers = self._last_headers
        stored_length = get_header(headers, "x-goog-stored-content-length")
        stored_encoding = get_header(headers, "x-goog-stored-content-encoding")
        actual = hasher.b64digest()
        if actual == expected:
            return
        if (
            stored_length is not None
            and self._stored_received < int(stored_length)
            and stored_encoding != "gzip"
        ):
            raise ConnectionError(
                checks.incomplete_message(stored_length, stored_encoding, self._stored_received)
            )
        assert self._checksum_type is not None
        raise common.DataCorruption(
            response,
            checks.mismatch_message(
                self.media_url,
                self._checksum_type,
                expected,
                actual,
                stored_length,
                stored_encoding,
                self._stored_received,
            ),
        )
