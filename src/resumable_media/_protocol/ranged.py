"""Ranged read: one GET of bytes ``first``-``last`` of an object, resumed from what arrived.

Invariants:
- No I/O: the caller sends :meth:`RangedRead.prepare`'s request, hands the status and
  headers to :meth:`RangedRead.process_headers` before keeping a byte, then feeds every body
  piece it keeps (in order) to :meth:`RangedRead.feed`, which CRC32Cs it.
- A response is accepted only for exactly the bytes asked for: status 206, ``Content-Range``
  starting at the first missing byte and ending at ``last`` (or the object's last byte),
  the object size known so far, and the pinned generation.  A probe (the first request of
  a transfer) also accepts a 200 (the server ignored ``Range``) and the 416 of an empty
  object, and learns the size and generation from the answer.
- Once a generation is known every request is pinned to it (``generation=`` in the URL).
- The object's state is one :class:`RangeState`; :data:`TRANSITIONS` lists every legal
  step, a call that is not one raises :class:`ProtocolStateError` naming the state, and a
  non-retryable rejection moves it to ``FAILED`` for good.  A retryable rejection leaves
  it ``SENT``: the same request may be sent again as is.
"""

from __future__ import annotations

import dataclasses
import enum
import urllib.parse
from typing import Any

from resumable_media import checksums, common
from resumable_media._protocol import ranges
from resumable_media._protocol.request import Headers, RequestSpec, get_header, require_status
from resumable_media._protocol.state import ProtocolStateError, check

__all__ = [
    "TRANSITIONS",
    "ObjectFacts",
    "ProtocolStateError",
    "RangeState",
    "RangedRead",
    "add_generation",
    "header_int",
    "judge_generation",
    "judge_range",
    "object_facts",
    "url_generation",
]

_PARTIAL = 206
_PROBE_STATUSES = (200, 206)


def add_generation(url: str, generation: int | None) -> str:
    """Return ``url`` pinned to ``generation`` (unless it has a ``generation`` parameter).

    The parameter is appended; the rest of the URL is kept byte for byte.

    Args:
        url: The media URL.
        generation: The object generation to pin, or None (``url`` is returned as is).

    Returns:
        The URL with ``generation=<generation>`` in its query.
    """
    if generation is None or "generation" in _query(url):
        return url
    base, hash_mark, fragment = url.partition("#")
    separator = "&" if "?" in base else "?"
    if base.endswith(("?", "&")):
        separator = ""
    return f"{base}{separator}generation={generation}{hash_mark}{fragment}"


def _query(url: str) -> dict[str, list[str]]:
    return urllib.parse.parse_qs(urllib.parse.urlsplit(url).query, keep_blank_values=True)


def url_generation(url: str) -> int | None:
    """The ``generation`` parameter of ``url``'s query, or None."""
    values = _query(url).get("generation")
    return int(values[0]) if values else None


def header_int(response: Any, name: str, value: str) -> int:
    """Parse an integer response header.

    Raises:
        InvalidResponse: ``('Unexpected {name} header', value)``.
    """
    try:
        return int(value)
    except ValueError:
        raise common.InvalidResponse(response, f"Unexpected {name} header", value) from None


def judge_range(
    value: str | None,
    first: int | None,
    last: int | None,
    total: int | None,
    *,
    exact: bool = False,
) -> ranges.ContentRange | None:
    """The one rule for a 206's ``Content-Range``: the parsed range when it is acceptable.

    Every reader of ranged answers (``Download``, ``ChunkedDownload``, the parallel worker,
    the read-ahead reader behind ``open``) judges with this rule and words its own error.

    Args:
        value: The ``Content-Range`` header value (None: absent).
        first: The first byte asked for (None: unknown, e.g. a suffix range).
        last: The last byte asked for (None: to the end).
        total: The object size the answer must state (None: not checked).
        exact: The answer must reach ``last`` (or the object's last byte), not stop short.

    Returns:
        The parsed range, or None when it is absent, malformed or another range (a body
        for other bytes would land in the wrong place; another size means the object
        changed between requests).
    """
    try:
        received = ranges.parse_content_range(value or "")
    except ValueError:
        return None
    if not ranges.matches_request(received, first, last, total, exact=exact):
        return None
    return received


def judge_generation(response: Any, value: str | None, pinned: int | None) -> int | None:
    """The one rule for ``x-goog-generation``: learn it, or require the pinned one.

    Args:
        response: The response (stored on a raised exception).
        value: The header value (None: absent, which is accepted).
        pinned: The generation every answer must report, or None to learn it.

    Returns:
        The generation now known (``pinned``, or the one learnt).

    Raises:
        InvalidResponse: A malformed value, or one other than ``pinned``.
    """
    if value is None:
        return pinned
    got = header_int(response, "x-goog-generation", value)
    if pinned is not None and got != pinned:
        raise common.InvalidResponse(
            response,
            f"the object changed during the download: generation {got} != {pinned}",
        )
    return got


class RangeState(enum.Enum):
    """Where a ranged read stands."""

    READY = "ready"  # nothing sent yet
    SENT = "sent"  # a request is out; its answer has not been judged
    RECEIVING = "receiving"  # a 206 for the missing bytes was accepted; body pieces follow
    WHOLE = "whole"  # (probe) a 200: the whole object follows, as the caller handles it
    EMPTY = "empty"  # (probe) a 416 for an empty object
    COMPLETE = "complete"  # every byte of the range was fed
    FAILED = "failed"  # a non-retryable rejection: the read cannot continue


_S = RangeState
TRANSITIONS: dict[tuple[RangeState, str], frozenset[RangeState]] = {
    (_S.READY, "prepare"): frozenset({_S.SENT}),
    (_S.SENT, "prepare"): frozenset({_S.SENT}),
    (_S.RECEIVING, "prepare"): frozenset({_S.SENT}),  # resume after a mid-body failure
    (_S.SENT, "process_headers"): frozenset({_S.SENT, _S.RECEIVING, _S.WHOLE, _S.EMPTY, _S.FAILED}),
    (_S.READY, "adopt"): frozenset({_S.RECEIVING}),  # a response another read judged
    (_S.RECEIVING, "feed"): frozenset({_S.RECEIVING, _S.COMPLETE}),
    (_S.RECEIVING, "cut_short"): frozenset({_S.RECEIVING}),
}
"""(state, call) -> the states the call may leave the object in."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ObjectFacts:
    """What a response's headers say about the object it belongs to.

    Attributes:
        generation: ``x-goog-generation``, or None when absent.
        hashes: The parsed ``x-goog-hash`` (``{"crc32c": …, "md5": …}``; may be empty).
        encoding: ``content-encoding`` in lower case, or None.
    """

    generation: int | None
    hashes: dict[str, str]
    encoding: str | None


def object_facts(response: Any, headers: Headers) -> ObjectFacts:
    """Read the object's generation, hashes and encoding from a response's headers.

    Raises:
        InvalidResponse: A malformed ``x-goog-generation``.
    """
    generation = get_header(headers, "x-goog-generation")
    return ObjectFacts(
        generation=header_int(response, "x-goog-generation", generation) if generation else None,
        hashes=checksums.parse_goog_hash(get_header(headers, "x-goog-hash")),
        encoding=(get_header(headers, "content-encoding") or "").lower() or None,
    )


def _check_is_media(response: Any, headers: Headers, media_url: str) -> None:
    """Refuse an answer that is a JSON document rather than the object's bytes.

    GCS marks every media answer with ``x-goog-hash`` or ``x-goog-stored-content-length``;
    a JSON body without either is an API resource, typically the object's metadata from a
    JSON API URL without ``alt=media``.  Writing it to the destination would be wrong data.
    """
    content_type = (get_header(headers, "content-type") or "").lower()
    if not content_type.startswith("application/json"):
        return
    if get_header(headers, "x-goog-hash") or get_header(headers, "x-goog-stored-content-length"):
        return  # an object whose own content type is JSON
    where = media_url.split("?", 1)[0]  # never a signed URL's query
    raise common.InvalidResponse(
        response,
        f"{where} answered with a JSON document, not the object's bytes; is it the object's "
        "metadata URL? Download from its media URL (add alt=media to a JSON API object URL)",
    )


class RangedRead:
    """State of one ranged read of ``first``-``last`` (inclusive), across its attempts.

    Args:
        media_url: The media URL (pinned to ``generation`` here, when known).
        first: The first byte of the range.
        last: The last byte wanted (inclusive); the object may end sooner.
        total: The object size every answer must report, or None to learn it.
        generation: The generation every answer must report, or None to learn it.
        headers: Extra request headers (copied; ``range`` is set per attempt).
        received: Bytes of the range already in place (a resumed read).
        crc: The CRC32C of those ``received`` bytes.
        probe: Also accept a 200 (Range ignored) and a 416 (an empty object).
    """

    def __init__(
        self,
        media_url: str,
        first: int,
        last: int,
        *,
        total: int | None = None,
        generation: int | None = None,
        headers: Any = (),
        received: int = 0,
        crc: int = 0,
        probe: bool = False,
    ) -> None:
        self.media_url = media_url
        self.first = first
        self.last = last
        self.total = total
        self.generation = generation
        self._headers = dict(headers)
        self.received = received
        self.crc = crc
        self._probe = probe
        self.state = RangeState.COMPLETE if received >= last - first + 1 else RangeState.READY

    def _enter(self, call: str) -> None:
        check(TRANSITIONS, self.state, call, f"RangedRead of bytes {self.first}-{self.last}")

    @property
    def length(self) -> int:
        """int: Bytes the range covers (as asked)."""
        return self.last - self.first + 1

    @property
    def remaining(self) -> int:
        """int: Bytes of the range not yet received."""
        return self.length - self.received

    def prepare(self) -> RequestSpec:
        """The GET for the bytes still missing, pinned to the generation when known."""
        self._enter("prepare")
        self.state = RangeState.SENT
        headers = dict(self._headers)
        headers["range"] = f"bytes={self.first + self.received}-{self.last}"
        return RequestSpec("GET", add_generation(self.media_url, self.generation), None, headers)

    def process_headers(self, response: Any, status: int, headers: Headers) -> int:
        """Judge an answer before any of its body is kept.

        Args:
            response: The response (stored on raised exceptions).
            status: Its status code.
            headers: Its headers.

        Returns:
            The status: 206 (the body is the range), or for a probe 200 (the whole
            object follows) or 416 (the object is empty).

        Raises:
            InvalidResponse: Another status, a ``Content-Range`` other than the one asked
                for, another generation, or (probe) a start beyond the end of the object.
        """
        self._enter("process_headers")
        try:
            if status == 416 and self._probe:
                self._check_unsatisfied(response, headers)
                self.state = RangeState.EMPTY
                return status
            require_status(response, status, _PROBE_STATUSES if self._probe else (_PARTIAL,))
            _check_is_media(response, headers, self.media_url)
            if status == _PARTIAL:
                self._check_range(response, get_header(headers, "content-range"))
            self._check_generation(response, get_header(headers, "x-goog-generation"))
        except Exception:
            if status not in common.RETRYABLE:
                self.state = RangeState.FAILED
            raise
        self.state = RangeState.RECEIVING if status == _PARTIAL else RangeState.WHOLE
        return status

    def adopt(self) -> None:
        """Take over a response another :class:`RangedRead` judged for exactly the bytes
        this one is missing (the first request of a transfer); body pieces may follow."""
        self._enter("adopt")
        self.state = RangeState.RECEIVING

    def _check_unsatisfied(self, response: Any, headers: Headers) -> None:
        value = get_header(headers, "content-range") or ""
        try:
            size = ranges.parse_unsatisfied_range(value)
        except ValueError:
            raise common.InvalidResponse(
                response, f"416 response without a valid Content-Range: {value!r}"
            ) from None
        if size != 0 or self.first != 0:
            raise common.InvalidResponse(
                response, f"start {self.first} is beyond the end of the {size}-byte object"
            )
        self.total = 0

    def _check_range(self, response: Any, value: str | None) -> None:
        first = self.first + self.received
        received = judge_range(value, first, self.last, self.total, exact=True)
        if received is None:
            try:
                parsed = ranges.parse_content_range(value or "")
            except ValueError:
                raise common.InvalidResponse(
                    response, f"206 response without a valid Content-Range: {value!r}"
                ) from None
            size = parsed.total if self.total is None else self.total
            of = "an object of unknown size" if size is None else f"a {size}-byte object"
            raise common.InvalidResponse(
                response,
                f"Content-Range {value!r} does not match the requested range "
                f"bytes={first}-{self.last} of {of}",
            )
        if received.total is None:
            raise common.InvalidResponse(response, "206 response does not state the object size")
        self.total = received.total
        self.last = received.end  # the object may end before the last byte asked for

    def _check_generation(self, response: Any, value: str | None) -> None:
        self.generation = judge_generation(response, value, self.generation)

    def feed(self, piece: memoryview | bytes) -> None:
        """Account for the next body piece kept (in order): count it and CRC32C it."""
        self._enter("feed")
        if len(piece) > self.remaining:
            self.state = RangeState.FAILED
            raise ProtocolStateError(
                f"RangedRead of bytes {self.first}-{self.last}: {len(piece)} bytes fed with "
                f"only {self.remaining} missing"
            )
        self.crc = checksums.crc32c(piece, self.crc)
        self.received += len(piece)
        if self.remaining == 0:
            self.state = RangeState.COMPLETE

    def cut_short(self) -> ConnectionError:
        """The (retryable) error for a body that ended before the range was complete."""
        self._enter("cut_short")
        return ConnectionError(
            f"the response for bytes {self.first}-{self.last} ended after "
            f"{self.received} of {self.length} bytes"
        )
