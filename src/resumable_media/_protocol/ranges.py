"""Byte-range arithmetic: ``Range`` / ``Content-Range`` headers, parsed and formatted.

Invariants: pure functions over strings and ints; no I/O.  Every parser either
returns a fully validated value or raises ``ValueError`` (never a partial result).
Ranges are inclusive at both ends, as in HTTP.
"""

from __future__ import annotations

import dataclasses
import re

__all__ = [
    "ContentRange",
    "format_content_range",
    "matches_request",
    "parse_content_range",
    "parse_persisted_range",
    "parse_unsatisfied_range",
    "range_header",
]

_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)", re.IGNORECASE)
_UNSATISFIED = re.compile(r"bytes \*/(\d+)", re.IGNORECASE)
_PERSISTED = re.compile(r"bytes=0-(\d+)", re.IGNORECASE)


@dataclasses.dataclass(frozen=True, slots=True)
class ContentRange:
    """A parsed ``Content-Range: bytes start-end/total`` value.

    Attributes:
        start: The first byte position (inclusive).
        end: The last byte position (inclusive).
        total: The full object size, or None when the header said ``*``.
    """

    start: int
    end: int
    total: int | None

    @property
    def length(self) -> int:
        """int: The number of bytes the range covers."""
        return self.end - self.start + 1


def range_header(start: int | None, end: int | None) -> str | None:
    """Build a ``Range`` request header value.

    Args:
        start: The first byte wanted; a negative value asks for the last
            ``-start`` bytes (a suffix range).  None means "from the beginning".
        end: The last byte wanted (inclusive), or None for "to the end".

    Returns:
        ``"bytes=s-e"``, ``"bytes=s-"``, ``"bytes=-n"`` or ``"bytes=0-e"``; None
        when both ends are open (no header should be sent).

    Raises:
        ValueError: If a suffix range is combined with an ``end``.
    """
    if start is None:
        return None if end is None else f"bytes=0-{end}"
    if start < 0:
        if end is not None:
            raise ValueError("A suffix range (negative start) cannot have an end.")
        return f"bytes={start}"
    return f"bytes={start}-" if end is None else f"bytes={start}-{end}"


def parse_content_range(value: str) -> ContentRange:
    """Parse a ``Content-Range`` response value of the form ``bytes s-e/T``.

    Args:
        value: The header value; ``T`` may be ``*`` (unknown total).

    Returns:
        The parsed range.

    Raises:
        ValueError: If the value is malformed or inconsistent (end before start,
            end beyond the total).
    """
    match = _CONTENT_RANGE.fullmatch(value.strip())
    if match is None:
        raise ValueError(f"Malformed Content-Range value: {value!r}")
    start, end = int(match.group(1)), int(match.group(2))
    total = None if match.group(3) == "*" else int(match.group(3))
    if end < start:
        raise ValueError(f"Content-Range ends before it starts: {value!r}")
    if total is not None and end >= total:
        raise ValueError(f"Content-Range extends past the object size: {value!r}")
    return ContentRange(start, end, total)


def matches_request(
    received: ContentRange,
    start: int | None,
    last: int | None,
    total: int | None,
    *,
    exact: bool = False,
) -> bool:
    """Whether a 206's ``Content-Range`` is the range that was asked for.

    A body for other bytes would land in the wrong place, and another object size means
    the object changed between requests.

    Args:
        received: The parsed ``Content-Range``.
        start: The first byte asked for (None: not known, e.g. a suffix range).
        last: The last byte asked for (None: to the end).
        total: The object size the answer must state (None: not checked).
        exact: The answer must reach ``last`` (or the object's last byte), not stop short.

    Returns:
        True when the answer is acceptable.
    """
    if start is not None and received.start != start:
        return False
    if total is not None and received.total != total:
        return False
    if last is None:
        return True
    if exact:
        return received.end == (last if received.total is None else min(last, received.total - 1))
    return received.end <= last


def parse_unsatisfied_range(value: str) -> int:
    """Parse the ``bytes */N`` form a 416 response carries.

    Args:
        value: The ``Content-Range`` header value.

    Returns:
        The object size ``N``.

    Raises:
        ValueError: If the value is not of that form.
    """
    match = _UNSATISFIED.fullmatch(value.strip())
    if match is None:
        raise ValueError(f"Malformed unsatisfied Content-Range value: {value!r}")
    return int(match.group(1))


def parse_persisted_range(value: str) -> int:
    """Parse the ``Range: bytes=0-N`` header of a resumable-upload 308 response.

    Args:
        value: The header value.

    Returns:
        The number of bytes the server has persisted (``N + 1``).

    Raises:
        ValueError: If the value is not of the form ``bytes=0-N``.
    """
    match = _PERSISTED.fullmatch(value.strip())
    if match is None:
        raise ValueError(f"Malformed persisted Range value: {value!r}")
    return int(match.group(1)) + 1


def format_content_range(start: int | None, end: int | None, total: int | None) -> str:
    """Build an upload ``Content-Range`` request header value.

    Args:
        start: The first byte of the payload, or None for an empty payload.
        end: The last byte of the payload (inclusive), or None for an empty payload.
        total: The object size if known, else None (rendered as ``*``).

    Returns:
        ``"bytes s-e/T"``, ``"bytes s-e/*"``, ``"bytes */T"`` or ``"bytes */*"``
        (the last two when the payload is empty, i.e. ``start``/``end`` are None
        or ``end < start``).
    """
    size = "*" if total is None else str(total)
    if start is None or end is None or end < start:
        return f"bytes */{size}"
    return f"bytes {start}-{end}/{size}"
