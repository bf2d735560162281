"""Unit tests of the backoff arithmetic and the requests-layer retry loop (no sockets)."""

from __future__ import annotations

import http.client
import random
from types import SimpleNamespace

import pytest
import requests.exceptions
import urllib3.exceptions

from resumable_media import common
from resumable_media._protocol.retry import Backoff
from resumable_media.requests import _send


class _NoJitter:
    def randint(self, a: int, b: int) -> int:
        return 0


def test_default_waits_double_and_cap() -> None:
    backoff = Backoff(common.RetryStrategy(), rng=_NoJitter())
    waits = [backoff.next_wait() for _ in range(9)]
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 64.0, 64.0]


def test_default_budget_allows_about_fourteen_retries() -> None:
    backoff = Backoff(common.RetryStrategy(), rng=random.Random(0))
    count = 0
    while backoff.next_wait() is not None:
        count += 1
    assert 13 <= count <= 15
    assert backoff.total_sleep > common.MAX_CUMULATIVE_RETRY


def test_max_retries_and_custom_multiplier() -> None:
    backoff = Backoff(
        common.RetryStrategy(max_retries=2, initial_delay=0.5, multiplier=3), rng=_NoJitter()
    )
    assert backoff.next_wait() == 0.5
    assert backoff.next_wait() == 1.5
    assert backoff.next_wait() is None


def test_jitter_in_millisecond_steps() -> None:
    backoff = Backoff(common.RetryStrategy(initial_delay=1.0), rng=random.Random(1))
    wait = backoff.next_wait()
    assert wait is not None and 1.0 <= wait <= 2.0
    assert round((wait - 1.0) * 1000) == pytest.approx((wait - 1.0) * 1000)


def _invalid(status: int) -> common.InvalidResponse:
    return common.InvalidResponse(SimpleNamespace(status_code=status), "x", status)


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionResetError(),
        ConnectionError("incomplete"),
        http.client.IncompleteRead(b""),
        requests.exceptions.ChunkedEncodingError(),
        requests.exceptions.ReadTimeout(),
        urllib3.exceptions.ProtocolError("x"),
        _invalid(503),
        _invalid(429),
        _invalid(408),
    ],
)
def test_retryable(exc: BaseException) -> None:
    assert _send.is_retryable_error(exc)


@pytest.mark.parametrize(
    "exc",
    [ValueError(), _invalid(400), _invalid(404), common.DataCorruption(None, "m"), KeyError()],
)
def test_not_retryable(exc: BaseException) -> None:
    assert not _send.is_retryable_error(exc)


def test_wait_and_retry_until_success() -> None:
    attempts: list[int] = []
    sleeps: list[float] = []

    def func() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise _invalid(503)
        return "ok"

    strategy = common.RetryStrategy(initial_delay=0.01)
    assert _send.wait_and_retry(func, strategy, sleep=sleeps.append) == "ok"
    assert len(attempts) == 3
    assert len(sleeps) == 2 and all(0.01 <= s <= 1.02 for s in sleeps)


def test_wait_and_retry_reraises_last_error() -> None:
    errors = [ConnectionResetError("a"), ConnectionResetError("b")]

    def func() -> None:
        raise errors.pop(0)

    with pytest.raises(ConnectionResetError, match="b"):
        _send.wait_and_retry(func, common.RetryStrategy(max_retries=1), sleep=lambda s: None)
    assert errors == []


def test_wait_and_retry_non_retryable_immediately() -> None:
    sleeps: list[float] = []

    def func() -> None:
        raise _invalid(400)

    with pytest.raises(common.InvalidResponse):
        _send.wait_and_retry(func, common.RetryStrategy(), sleep=sleeps.append)
    assert sleeps == []


def test_wait_and_retry_none_strategy_single_attempt() -> None:
    calls: list[int] = []

    def func() -> None:
        calls.append(1)
        raise ConnectionResetError()

    with pytest.raises(ConnectionResetError):
        _send.wait_and_retry(func, None)
    assert calls == [1]


def test_each_transfer_owns_its_default_retry_strategy() -> None:
    from resumable_media.requests import ChunkedDownload, Download, ResumableUpload

    first = Download("http://example.invalid/o")
    second = Download("http://example.invalid/o")
    assert first._retry_strategy is not second._retry_strategy
    first._retry_strategy.max_sleep = 0.5  # type: ignore[union-attr]
    assert second._retry_strategy.max_sleep == 64.0  # type: ignore[union-attr]
    chunked = ChunkedDownload("http://example.invalid/o", 1024, None)  # type: ignore[arg-type]
    assert chunked._retry_strategy.max_cumulative_retry == 600.0  # type: ignore[union-attr]
    upload = ResumableUpload("http://example.invalid/u", 262144)
    assert (
        upload._retry_strategy
        is not ResumableUpload("http://example.invalid/u", 262144)._retry_strategy
    )
    assert Download("http://example.invalid/o", retry=None)._retry_strategy is None
