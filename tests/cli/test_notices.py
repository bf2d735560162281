"""A lost server is reported at once, in words, and then not more than every 30 s."""

from __future__ import annotations

import io
import logging
import pathlib
import socket
import subprocess
import time

import pytest
from cli_helpers import RunCli, cli_env, command

from resumable_media import common
from resumable_media._cli.notices import REPEAT_S, NoticeHandler, format_duration
from resumable_media._transport import Retrying, RetryNotice, describe_error, failed_origin
from resumable_media.testing import GCSServer

RAW_WORDS = ("HTTPConnectionPool", "Max retries", "urllib3", "NewConnectionError", "object at 0x")


def _closed_port() -> int:
    """A loopback port with nobody listening (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(*args: str, timeout: float = 60) -> tuple[subprocess.CompletedProcess[str], float]:
    began = time.monotonic()
    done = subprocess.run(
        command(*args), capture_output=True, text=True, timeout=timeout, env=cli_env()
    )
    return done, time.monotonic() - began


def test_unreachable_server_is_reported_at_once_then_fails_in_words(
    tmp_path: pathlib.Path,
) -> None:
    port = _closed_port()
    source = tmp_path / "notes.txt"
    source.write_bytes(b"x" * 1000)
    endpoint = f"http://127.0.0.1:{port}"
    done, elapsed = _run(
        "cp", "--endpoint", endpoint, "--retry-deadline", "4", str(source), "gs://b/notes.txt"
    )
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    notice = (
        f"cannot reach {endpoint} (connection refused); retrying for up to 4 s (--retry-deadline)"
    )
    assert lines.count(notice) == 1, done.stderr
    assert lines[0] == notice  # the first thing the user sees, before any backoff
    error = [line for line in lines if line.startswith("error:")]
    assert len(error) == 1, done.stderr
    assert "gs://b/notes.txt" in error[0] and "connection refused" in error[0]
    assert "run the command again" in error[0]
    assert not any(word in done.stderr for word in RAW_WORDS), done.stderr
    assert elapsed < 30  # the deadline holds (4 s of retries, not 10 minutes)


def test_quiet_prints_no_retry_lines_but_still_the_error(tmp_path: pathlib.Path) -> None:
    source = tmp_path / "a.txt"
    source.write_bytes(b"a")
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    done, _ = _run(
        "cp", "-q", "--endpoint", endpoint, "--retry-deadline", "2", str(source), "gs://b/a"
    )
    assert done.returncode == 1
    assert "retrying" not in done.stderr
    assert done.stderr.startswith("error: gs://b/a"), done.stderr
    assert ": cannot reach http://127.0.0.1:" in done.stderr


def test_a_server_answering_503_is_named_once_and_the_copy_succeeds(
    run_cli: RunCli, gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    source = tmp_path / "ok.bin"
    source.write_bytes(b"z" * 5000)
    test_id = gcs_server.create_retry_test({"storage.objects.insert": ["return-503", "return-503"]})
    done = run_cli(
        "cp", "-H", f"x-retry-test-id: {test_id}", str(source), f"gs://{gcs_bucket}/ok.bin"
    )
    assert done.returncode == 0, done.stderr
    notices = [line for line in done.stderr.splitlines() if "retrying" in line]
    assert notices == [
        f"{gcs_server.endpoint} answered HTTP 503; retrying for up to 10 min (--retry-deadline)"
    ]
    assert gcs_server.object_bytes(gcs_bucket, "ok.bin") == b"z" * 5000


def test_retry_deadline_rejects_nonsense() -> None:
    done, _ = _run("cp", "--retry-deadline", "soon", "a", "gs://b/a")
    assert done.returncode == 2
    assert "expected a number of seconds >= 0, got 'soon'" in done.stderr


def _notice(retry: int) -> RetryNotice:
    return RetryNotice("http://h:1", "connection refused", retry, 1.0, 600.0)


def _record(notice: RetryNotice | None, message: str = "m") -> logging.LogRecord:
    record = logging.LogRecord("resumable_media.x", logging.WARNING, __file__, 1, message, (), None)
    if notice is not None:
        record.rm_retry = notice
    return record


def test_notice_lines_are_rate_limited_across_threads_and_runs() -> None:
    now = [100.0]
    out = io.StringIO()
    handler = NoticeHandler(out, clock=lambda: now[0])
    handler.emit(_record(_notice(1)))
    for retry in range(2, 8):  # many threads, many retries: quiet for REPEAT_S
        now[0] += REPEAT_S / 8
        handler.emit(_record(_notice(retry)))
    now[0] = 100.0 + REPEAT_S + 1
    handler.emit(_record(_notice(1)))
    handler.emit(_record(_notice(2)))
    handler.emit(_record(RetryNotice("http://h:1", "connection refused", 9, 0.0, 600.0, True)))
    handler.emit(_record(None, "could not abort the upload of gs://b/x"))
    assert out.getvalue().splitlines() == [
        "cannot reach http://h:1 (connection refused); "
        "retrying for up to 10 min (--retry-deadline)",
        "still retrying: cannot reach http://h:1 (connection refused); first failure 31 s ago",
        "warning: could not abort the upload of gs://b/x",
    ]


def test_quiet_handler_prints_only_errors() -> None:
    out = io.StringIO()
    handler = NoticeHandler(out, quiet=True)
    handler.emit(_record(_notice(1)))
    handler.emit(_record(None, "a warning"))
    error = _record(None, "an error")
    error.levelno = logging.ERROR
    handler.emit(error)
    assert out.getvalue() == "warning: an error\n"


@pytest.mark.parametrize(
    ("seconds", "words"),
    [(4, "4 s"), (89, "89 s"), (600, "10 min"), (5400, "1 h 30 min"), (7200, "2 h")],
)
def test_format_duration(seconds: float, words: str) -> None:
    assert format_duration(seconds) == words


def test_library_logs_each_retry_at_warning_with_origin_and_words(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import requests

    port = _closed_port()
    session = requests.Session()
    retrying = Retrying(
        common.RetryStrategy(max_retries=2, jitter_s=0), sleep=lambda _s: None, what="upload"
    )
    with (
        caplog.at_level(logging.WARNING, logger="resumable_media"),
        pytest.raises(requests.ConnectionError) as caught,
    ):
        retrying.call(lambda: session.get(f"http://user:secret@127.0.0.1:{port}/b?upload_id=S"))
    assert describe_error(caught.value) == "connection refused"
    assert failed_origin(caught.value) == f"http://127.0.0.1:{port}"
    records = [r for r in caplog.records if r.name == "resumable_media._transport"]
    assert [r.levelno for r in records] == [logging.WARNING, logging.WARNING]
    notices = [getattr(r, "rm_retry") for r in records]  # noqa: B009
    assert [n.retry for n in notices] == [1, 2]
    assert all(n.reason == "connection refused" for n in notices)
    text = caplog.text
    assert "secret" not in text and "upload_id" not in text and "/b" not in text


def test_a_broken_transfer_is_not_called_unreachable() -> None:
    out = io.StringIO()
    handler = NoticeHandler(out)
    handler.emit(
        _record(RetryNotice("http://h:1", "connection closed mid-response", 1, 1.0, 600.0))
    )
    assert out.getvalue() == (
        "http://h:1: connection closed mid-response; retrying for up to 10 min (--retry-deadline)\n"
    )
