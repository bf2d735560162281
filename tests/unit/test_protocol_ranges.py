"""Unit tests of resumable_media._protocol.ranges (no sockets)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from resumable_media._protocol import ranges


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (None, None, None),
        (None, 99, "bytes=0-99"),
        (5, None, "bytes=5-"),
        (-500, None, "bytes=-500"),
        (4096, 8191, "bytes=4096-8191"),
    ],
)
def test_range_header(start: int | None, end: int | None, expected: str | None) -> None:
    assert ranges.range_header(start, end) == expected


def test_suffix_range_with_end_rejected() -> None:
    with pytest.raises(ValueError, match="suffix"):
        ranges.range_header(-5, 10)


def test_parse_content_range_forms() -> None:
    assert ranges.parse_content_range("bytes 0-9/10") == ranges.ContentRange(0, 9, 10)
    assert ranges.parse_content_range("BYTES 3-4/*") == ranges.ContentRange(3, 4, None)
    assert ranges.parse_content_range("bytes 3-4/*").length == 2


@pytest.mark.parametrize(
    "value", ["", "bytes 1-0/5", "bytes 0-5/5", "bytes */5", "bytes=0-4", "bytes 0-4/x", "0-4/5"]
)
def test_parse_content_range_rejects(value: str) -> None:
    with pytest.raises(ValueError):
        ranges.parse_content_range(value)


def test_unsatisfied_and_persisted() -> None:
    assert ranges.parse_unsatisfied_range("bytes */0") == 0
    assert ranges.parse_persisted_range("bytes=0-262143") == 262144
    with pytest.raises(ValueError):
        ranges.parse_unsatisfied_range("bytes 0-1/2")
    with pytest.raises(ValueError):
        ranges.parse_persisted_range("bytes=5-9")


def test_format_content_range() -> None:
    assert ranges.format_content_range(0, 9, 10) == "bytes 0-9/10"
    assert ranges.format_content_range(0, 262143, None) == "bytes 0-262143/*"
    assert ranges.format_content_range(524288, 524287, 524288) == "bytes */524288"
    assert ranges.format_content_range(None, None, None) == "bytes */*"


@given(
    start=st.integers(min_value=0, max_value=2**62),
    length=st.integers(min_value=1, max_value=2**40),
    extra=st.integers(min_value=0, max_value=2**40),
    known=st.booleans(),
)
def test_content_range_round_trip(start: int, length: int, extra: int, known: bool) -> None:
    end = start + length - 1
    total = end + 1 + extra if known else None
    value = ranges.format_content_range(start, end, total)
    assert ranges.parse_content_range(value) == ranges.ContentRange(start, end, total)


@given(st.text(max_size=40))
def test_parse_content_range_total_function(value: str) -> None:
    # Any text either parses into a consistent range or raises ValueError.
    try:
        parsed = ranges.parse_content_range(value)
    except ValueError:
        return
    assert 0 <= parsed.start <= parsed.end
    assert parsed.total is None or parsed.end < parsed.total


@given(st.integers(min_value=0, max_value=2**62), st.one_of(st.none(), st.integers(0, 2**62)))
def test_range_header_parses_back(start: int, end: int | None) -> None:
    header = ranges.range_header(start, end)
    assert header is not None
    first, _, last = header.removeprefix("bytes=").partition("-")
    assert int(first) == start
    assert (int(last) if last else None) == end
