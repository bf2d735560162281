"""The ranged-read protocol object: requests as data, answers judged, state transitions."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resumable_media import checksums, common
from resumable_media._protocol.ranged import (
    TRANSITIONS,
    ProtocolStateError,
    RangedRead,
    RangeState,
    judge_generation,
    judge_range,
)

URL = "http://h/b/o/x?alt=media"


def _partial(start: int, end: int, total: int, generation: int | None = 5) -> dict[str, str]:
    headers = {"content-range": f"bytes {start}-{end}/{total}"}
    if generation is not None:
        headers["x-goog-generation"] = str(generation)
    return headers


def test_prepare_asks_for_the_missing_bytes_pinned_to_the_generation() -> None:
    ranged = RangedRead(URL, 100, 199, total=1000, generation=5, headers={"a": "b"}, received=40)
    spec = ranged.prepare()
    assert (spec.method, spec.url) == ("GET", URL + "&generation=5")
    assert spec.headers == {"a": "b", "range": "bytes=140-199"}
    assert ranged.state is RangeState.SENT


def test_an_exact_answer_is_accepted_and_fed_byte_at_a_time() -> None:
    data = bytes(range(100))
    ranged = RangedRead(URL, 100, 199, total=1000, generation=5)
    ranged.prepare()
    assert ranged.process_headers(None, 206, _partial(100, 199, 1000)) == 206
    for index in range(len(data)):
        assert ranged.state is RangeState.RECEIVING
        ranged.feed(data[index : index + 1])
    assert ranged.state is RangeState.COMPLETE
    assert ranged.crc == checksums.crc32c(data) and ranged.remaining == 0
    with pytest.raises(ProtocolStateError, match="in state COMPLETE"):
        ranged.feed(b"x")


@pytest.mark.parametrize(
    ("status", "headers", "text"),
    [
        (200, _partial(100, 199, 1000), "Expected one of"),
        (206, _partial(101, 199, 1000), "does not match the requested range"),
        (206, _partial(100, 198, 1000), "does not match the requested range"),
        (206, _partial(100, 199, 2000), "does not match the requested range"),
        (206, {"content-range": "bytes 100-199/*"}, "does not match the requested range"),
        (206, {"content-range": "nonsense"}, "without a valid Content-Range"),
        (206, _partial(100, 199, 1000, generation=6), "changed during the download"),
    ],
)
def test_other_answers_are_refused_and_fail_the_read(
    status: int, headers: dict[str, str], text: str
) -> None:
    ranged = RangedRead(URL, 100, 199, total=1000, generation=5)
    ranged.prepare()
    with pytest.raises(common.InvalidResponse) as caught:
        ranged.process_headers("resp", status, headers)
    assert caught.value.response == "resp" and text in " ".join(map(str, caught.value.args))
    assert ranged.state is RangeState.FAILED
    with pytest.raises(ProtocolStateError, match="in state FAILED"):
        ranged.prepare()


def test_a_retryable_refusal_keeps_the_request_for_another_try() -> None:
    ranged = RangedRead(URL, 0, 9, total=10)
    ranged.prepare()
    with pytest.raises(common.InvalidResponse):
        ranged.process_headers(None, 503, {})
    assert ranged.state is RangeState.SENT
    assert ranged.process_headers(None, 206, _partial(0, 9, 10)) == 206


def test_the_last_range_may_end_at_the_object_end() -> None:
    ranged = RangedRead(URL, 900, 1099, total=1000)
    ranged.prepare()
    ranged.process_headers(None, 206, _partial(900, 999, 1000))
    assert ranged.state is RangeState.RECEIVING


def test_a_probe_learns_size_and_generation_and_accepts_200_and_empty_416() -> None:
    probe = RangedRead(URL, 0, 99, probe=True)
    probe.prepare()
    probe.process_headers(None, 206, _partial(0, 99, 5000, generation=9))
    assert (probe.total, probe.generation) == (5000, 9)
    whole = RangedRead(URL, 0, 99, probe=True)
    whole.prepare()
    assert whole.process_headers(None, 200, {}) == 200 and whole.state is RangeState.WHOLE
    empty = RangedRead(URL, 0, 99, probe=True)
    empty.prepare()
    assert empty.process_headers(None, 416, {"content-range": "bytes */0"}) == 416
    assert empty.state is RangeState.EMPTY and empty.total == 0
    beyond = RangedRead(URL, 50, 99, probe=True)
    beyond.prepare()
    with pytest.raises(common.InvalidResponse, match="beyond the end of the 20-byte object"):
        beyond.process_headers(None, 416, {"content-range": "bytes */20"})


def test_a_body_cut_short_resumes_from_what_arrived() -> None:
    ranged = RangedRead(URL, 0, 9, total=10)
    ranged.prepare()
    ranged.process_headers(None, 206, _partial(0, 9, 10))
    ranged.feed(b"abcd")
    assert "ended after 4 of 10 bytes" in str(ranged.cut_short())
    assert ranged.prepare().headers["range"] == "bytes=4-9"
    ranged.process_headers(None, 206, _partial(4, 9, 10))
    ranged.feed(b"efghij")
    assert ranged.crc == checksums.crc32c(b"abcdefghij")


def test_illegal_calls_name_the_state() -> None:
    ranged = RangedRead(URL, 0, 9)
    with pytest.raises(ProtocolStateError, match=r"feed\(\) is not allowed in state READY"):
        ranged.feed(b"x")
    with pytest.raises(ProtocolStateError, match="process_headers"):
        ranged.process_headers(None, 206, _partial(0, 9, 10))
    ranged.adopt()
    with pytest.raises(ProtocolStateError, match="only 10 missing"):
        ranged.feed(b"x" * 11)
    assert ranged.state is RangeState.FAILED


@settings(deadline=None, max_examples=200)
@given(st.lists(st.sampled_from(["prepare", "ok", "retry", "feed", "cut", "adopt"]), max_size=12))
def test_every_sequence_stays_inside_the_transition_table(calls: list[str]) -> None:
    ranged = RangedRead(URL, 0, 9, total=10)
    for call in calls:
        before = ranged.state
        name = {"ok": "process_headers", "retry": "process_headers", "cut": "cut_short"}
        try:
            if call == "prepare":
                ranged.prepare()
            elif call == "ok":
                ranged.process_headers(None, 206, _partial(ranged.received, 9, 10))
            elif call == "retry":
                ranged.process_headers(None, 503, {})
            elif call == "feed":
                ranged.feed(b"x")
            elif call == "cut":
                ranged.cut_short()
            else:
                ranged.adopt()
        except ProtocolStateError:
            assert (before, name.get(call, call)) not in TRANSITIONS or ranged.state is (
                RangeState.FAILED
            )
            continue
        except common.InvalidResponse:
            pass
        assert ranged.state in TRANSITIONS[(before, name.get(call, call))]


@pytest.mark.parametrize(
    ("value", "first", "last", "total", "exact", "accepted"),
    [
        ("bytes 0-9/10", 0, 9, 10, True, True),
        ("bytes 0-9/10", 0, 20, None, True, True),  # the object ends before the last byte
        ("bytes 0-8/10", 0, 9, None, True, False),  # stops short
        ("bytes 0-8/10", 0, 9, None, False, True),
        ("bytes 1-9/10", 0, 9, None, False, False),  # another start
        ("bytes 0-9/11", 0, 9, 10, False, False),  # another size
        ("bytes 5-9/*", None, None, None, False, True),
        ("bytes 9-0/10", None, None, None, False, False),  # malformed
        (None, 0, 9, None, False, False),
    ],
)
def test_the_one_content_range_rule(
    value: str | None,
    first: int | None,
    last: int | None,
    total: int | None,
    exact: bool,
    accepted: bool,
) -> None:
    assert (judge_range(value, first, last, total, exact=exact) is not None) is accepted


def test_the_one_generation_rule() -> None:
    assert judge_generation(None, None, 7) == 7
    assert judge_generation(None, "8", None) == 8
    assert judge_generation(None, "7", 7) == 7
    with pytest.raises(common.InvalidResponse, match="generation 8 != 7"):
        judge_generation(None, "8", 7)
    with pytest.raises(common.InvalidResponse, match="x-goog-generation"):
        judge_generation(None, "eight", None)


def test_a_probe_longer_than_the_object_completes_at_its_end() -> None:
    ranged = RangedRead(URL, 0, 99, probe=True)
    ranged.prepare()
    assert ranged.process_headers(None, 206, _partial(0, 9, 10)) == 206
    assert (ranged.last, ranged.remaining) == (9, 10)
    ranged.feed(bytes(10))
    assert ranged.state is RangeState.COMPLETE
