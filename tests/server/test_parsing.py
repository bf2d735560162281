"""Pure-logic checks of the server's Range and fault-instruction parsers (no sockets)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resumable_media.testing.download import Unsatisfiable, accepts_gzip, parse_range
from resumable_media.testing.faults import parse_header_instruction, parse_instruction


@settings(deadline=None)
@given(size=st.integers(0, 10_000), start=st.integers(0, 12_000), length=st.integers(1, 12_000))
def test_closed_range_matches_model(size: int, start: int, length: int) -> None:
    end = start + length - 1
    if start >= size:
        with pytest.raises(Unsatisfiable):
            parse_range(f"bytes={start}-{end}", size)
    else:
        assert parse_range(f"bytes={start}-{end}", size) == (start, min(end, size - 1))


@settings(deadline=None)
@given(size=st.integers(0, 10_000), suffix=st.integers(0, 12_000))
def test_suffix_range_matches_model(size: int, suffix: int) -> None:
    if suffix == 0 or size == 0:
        with pytest.raises(Unsatisfiable):
            parse_range(f"bytes=-{suffix}", size)
    else:
        assert parse_range(f"bytes=-{suffix}", size) == (max(0, size - suffix), size - 1)


@pytest.mark.parametrize(
    "header", [None, "", "bytes=5-2", "items=0-1", "bytes=0-1,3-4", "bytes=x-"]
)
def test_ignored_ranges(header: str | None) -> None:
    assert parse_range(header, 100) is None


def test_accepts_gzip() -> None:
    assert accepts_gzip("gzip, deflate")
    assert accepts_gzip("*")
    assert not accepts_gzip("identity")
    assert not accepts_gzip("gzip;q=0")
    assert not accepts_gzip(None)


def test_instructions() -> None:
    assert parse_instruction("return-503").status == 503
    cut = parse_instruction("return-503-after-256K")
    assert (cut.kind, cut.status, cut.after_bytes) == ("status_after", 503, 262144)
    assert parse_instruction("return-broken-stream-after-1K").after_bytes == 1024
    assert parse_instruction("return-broken-stream").after_bytes == 4
    assert parse_instruction("return-broken-stream-final-chunk-after-7B").after_bytes == 7
    stall = parse_instruction("stall-for-1.5s-after-128K")
    assert (stall.kind, stall.stall_s, stall.after_bytes) == ("stall", 1.5, 131072)
    assert parse_instruction("return-corrupted-data").kind == "corrupt"
    assert parse_instruction("return-reset-connection").kind == "reset"
    for bad in ("return-50", "stall-for-s-after-1K", "return-503-after-K", "bogus"):
        with pytest.raises(ValueError):
            parse_instruction(bad)
    assert parse_header_instruction("return-503-after-256K/retry-2").kind == "status"  # type: ignore[union-attr]
    assert parse_header_instruction("return-503-after-256K/retry-3") is None
    assert parse_header_instruction("stall-always").stall_s == 10.0  # type: ignore[union-attr]
