"""Unit tests of the backoff arithmetic and the requests-layer retry loop (no sockets)."""

from __future__ import annotations

import http.client
import logging
import random
from types import SimpleNamespace

import pytest
import requests.exceptions
import urllib3.exceptions

from resumable_media import _transport, common
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


# -- the one retry driver (resumable_media._transport.Retrying) ----------------------


def test_jitter_s_zero_removes_jitter_without_patching() -> None:
    strategy = common.RetryStrategy(initial_delay=0.5, jitter_s=0)
    backoff = Backoff(strategy, rng=random.Random(7))
    assert [backoff.next_wait() for _ in range(3)] == [0.5, 1.0, 2.0]


def test_jitter_s_scales_the_jitter() -> None:
    strategy = common.RetryStrategy(initial_delay=1.0, jitter_s=0.01)
    waits = [Backoff(strategy, rng=random.Random(seed)).next_wait() for seed in range(20)]
    assert all(w is not None and 1.0 <= w <= 1.01 for w in waits)
    assert len(set(waits)) > 1


def test_on_retry_gets_number_error_and_delay(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[tuple[int, BaseException, float]] = []
    sleeps: list[float] = []
    errors = [_invalid(503), ConnectionResetError("secret-session-id")]

    def func() -> str:
        if errors:
            raise errors.pop(0)
        return "ok"

    strategy = common.RetryStrategy(initial_delay=0.25, jitter_s=0)
    retrying = _transport.Retrying(
        strategy,
        sleep=sleeps.append,
        on_retry=lambda n, e, d: seen.append((n, e, d)),
        what="object x",
    )
    caplog.set_level(logging.WARNING, logger="resumable_media._transport")
    assert retrying.call(func) == "ok"
    assert [(n, type(e), d) for n, e, d in seen] == [
        (1, common.InvalidResponse, 0.25),
        (2, ConnectionResetError, 0.5),
    ]
    assert sleeps == [0.25, 0.5]
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert messages == [
        "object x: HTTP 503; retry 1 in 0.25 s",
        "object x: connection reset; retry 2 in 0.50 s",
    ]
    assert "secret" not in caplog.text


def test_deadline_stops_retrying_before_the_budget() -> None:
    sleeps: list[float] = []

    def func() -> None:
        raise ConnectionResetError("down")

    # Waits 1, 2, 4, 8 ... with no jitter.  The recorder does not sleep, so the wall clock
    # hardly moves: the 8 s wait alone would end past the 5 s deadline.
    strategy = common.RetryStrategy(jitter_s=0, deadline_s=5)
    with pytest.raises(ConnectionResetError):
        _transport.Retrying(strategy, sleep=sleeps.append).call(func)
    assert sleeps == [1.0, 2.0, 4.0]
    # The driver's own deadline overrides the strategy's.
    sleeps.clear()
    with pytest.raises(ConnectionResetError):
        _transport.Retrying(strategy, sleep=sleeps.append, deadline_s=0.5).call(func)
    assert sleeps == []


def test_deadline_counts_wall_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(_transport.time, "monotonic", lambda: now[0])  # type: ignore[attr-defined]

    def sleep(seconds: float) -> None:
        now[0] += seconds + 10  # each attempt also takes 10 s

    def func() -> None:
        raise ConnectionResetError()

    strategy = common.RetryStrategy(initial_delay=1.0, jitter_s=0, deadline_s=30)
    retrying = _transport.Retrying(strategy, sleep=sleep)
    with pytest.raises(ConnectionResetError):
        retrying.call(func)
    assert retrying.retries == 3  # waits end at 1, 13 and 27 s; the 4th (8 s) would end at 45 s


def test_progress_resets_backoff_only_when_asked() -> None:
    position = [0]
    sleeps: list[float] = []

    def func() -> None:
        position[0] += 1  # every attempt moves forward, then fails
        if position[0] < 5:
            raise ConnectionResetError()

    strategy = common.RetryStrategy(initial_delay=1.0, jitter_s=0, max_retries=2)
    _transport.Retrying(strategy, sleep=sleeps.append, progress_resets_backoff=True).call(
        func, progress=lambda: position[0]
    )
    assert sleeps == [1.0, 1.0, 1.0, 1.0]  # fresh backoff each time, never out of retries
    position[0] = 0
    sleeps.clear()
    with pytest.raises(ConnectionResetError):
        _transport.Retrying(strategy, sleep=sleeps.append).call(func, progress=lambda: position[0])
    assert sleeps == [1.0, 2.0]


def test_retryable_override_and_no_strategy() -> None:
    retrying = _transport.Retrying(common.RetryStrategy(jitter_s=0), sleep=lambda s: None)
    assert not retrying.backoff(ValueError("x"))
    assert retrying.backoff(ValueError("x"), retryable=True)
    assert not _transport.Retrying(None).backoff(ConnectionResetError())
