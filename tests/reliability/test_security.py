"""Security: no credentials in logs or exception messages; temp and journal files are 0600.

A fake bearer token rides on the transport (session headers) and on the classes' own
``headers=``; every failure path of every transfer kind runs with all logging captured at
DEBUG; the token must appear in no log record, no exception ``str``/``repr``/traceback, and
no CLI output.  File modes are checked under ``umask 0`` so that only the mode the library
asks for is visible.
"""

from __future__ import annotations

import io
import logging
import os
import pathlib
import stat
import subprocess
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from rel_kinds import CHUNK, Env
from rel_support import FAST_RETRY, TIMEOUT
from test_crash_resume import Driver

from resumable_media import transports
from resumable_media.parallel import ParallelDownload, ParallelUpload, PipelinedUpload
from resumable_media.parallel.sink import temp_path_for
from resumable_media.requests import (
    ChunkedDownload,
    Download,
    MultipartUpload,
    ResumableUpload,
    SimpleUpload,
)

TOKEN = "ya29.FAKE-SECRET-TOKEN-" + uuid.uuid4().hex
AUTH = {"Authorization": f"Bearer {TOKEN}"}
DATA = os.urandom(3 * CHUNK + 17)
GET, INSERT = "storage.objects.get", "storage.objects.insert"


class _AuthFactory:
    """A picklable transport factory whose sessions carry the fake credentials."""

    def __call__(self) -> requests.Session:
        session = transports.anonymous()()
        session.headers.update(AUTH)
        return session


@pytest.fixture
def secret_session() -> Iterator[requests.Session]:
    with _AuthFactory()() as session:
        yield session


def _headers(env: Env, instructions: dict[str, list[str]] | None) -> dict[str, str]:
    headers = dict(AUTH)
    if instructions:
        headers["x-retry-test-id"] = env.server.create_retry_test(instructions)
    return headers


def _failures(env: Env, session: requests.Session) -> dict[str, Callable[[], Any]]:
    """Every kind, made to fail: exhausted retries, corruption, missing objects."""
    env.server.put_object(env.bucket, "obj", DATA)
    url = env.media_url("obj")
    exhaust_get = {GET: ["return-503"] * 10}
    exhaust_put = {INSERT: ["return-503"] * 10}
    source = env.workdir / "src.bin"
    source.write_bytes(DATA)

    def parallel_download(instructions: dict[str, list[str]], name: str = "obj") -> Any:
        return ParallelDownload(
            env.media_url(name),
            env.workdir / "out.bin",
            chunk_size=CHUNK,
            processes=0,
            headers=_headers(env, instructions),
            retry=FAST_RETRY,
            timeout=TIMEOUT,
        ).consume(_AuthFactory())

    def resumable(instructions: dict[str, list[str]]) -> Any:
        upload = ResumableUpload(
            env.upload_url("resumable"),
            CHUNK,
            checksum="crc32c",
            headers=_headers(env, instructions),
            retry=FAST_RETRY,
            auto_recover=True,
        )
        upload.initiate(session, io.BytesIO(DATA), {"name": "r"}, "a/b", timeout=TIMEOUT)
        return upload.transmit(session, timeout=TIMEOUT)

    return {
        "Download exhausted": lambda: Download(
            url, io.BytesIO(), headers=_headers(env, exhaust_get), retry=FAST_RETRY
        ).consume(session, timeout=TIMEOUT),
        "Download corrupted": lambda: Download(
            url,
            io.BytesIO(),
            checksum="crc32c",
            headers=_headers(env, {GET: ["return-corrupted-data"]}),
            retry=FAST_RETRY,
        ).consume(session, timeout=TIMEOUT),
        "Download missing": lambda: Download(
            env.media_url("missing"), io.BytesIO(), headers=_headers(env, None)
        ).consume(session, timeout=TIMEOUT),
        "ChunkedDownload exhausted": lambda: ChunkedDownload(
            url, CHUNK, io.BytesIO(), headers=_headers(env, exhaust_get), retry=FAST_RETRY
        ).consume_next_chunk(session, timeout=TIMEOUT),
        "SimpleUpload exhausted": lambda: SimpleUpload(
            env.upload_url("media", "s"), headers=_headers(env, exhaust_put), retry=FAST_RETRY
        ).transmit(session, DATA, "a/b", timeout=TIMEOUT),
        "MultipartUpload exhausted": lambda: MultipartUpload(
            env.upload_url("multipart"), headers=_headers(env, exhaust_put), retry=FAST_RETRY
        ).transmit(session, DATA, {"name": "m"}, "a/b", timeout=TIMEOUT),
        "ResumableUpload exhausted": lambda: resumable(exhaust_put),
        "PipelinedUpload exhausted": lambda: PipelinedUpload(
            env.upload_url("resumable"),
            CHUNK,
            headers=_headers(env, exhaust_put),
            retry=FAST_RETRY,
            timeout=TIMEOUT,
        ).transmit(session, io.BytesIO(DATA), {"name": "p"}, "a/b"),
        "ParallelDownload exhausted": lambda: parallel_download(exhaust_get),
        "ParallelDownload corrupted": lambda: parallel_download({GET: ["return-corrupted-data"]}),
        "ParallelDownload missing": lambda: parallel_download({}, "missing"),
        "ParallelUpload exhausted": lambda: ParallelUpload(
            env.xml_url("x"),
            source,
            part_size=CHUNK,
            processes=0,
            headers=_headers(env, exhaust_put),
            retry=FAST_RETRY,
            timeout=TIMEOUT,
        ).transmit(_AuthFactory(), "a/b"),
    }


def test_no_credentials_in_logs_or_exceptions(
    env: Env, secret_session: requests.Session, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("urllib3", "requests", "resumable_media"):
        caplog.set_level(logging.DEBUG, logger=name)
    texts: list[str] = []
    outcomes: dict[str, str] = {}
    for label, run in _failures(env, secret_session).items():
        try:
            run()
        except Exception as exc:
            outcomes[label] = type(exc).__name__
            texts += [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
            texts += [repr(arg) for arg in exc.args]
        else:
            outcomes[label] = "no error"
    assert all(v != "no error" for v in outcomes.values()), outcomes
    assert caplog.records, "nothing was logged at DEBUG: the capture is not working"
    for record in caplog.records:
        texts += [record.getMessage(), repr(record.args)]
        if record.exc_info:
            texts.append("".join(traceback.format_exception(*record.exc_info)))
    leaks = [text for text in texts if TOKEN in text or "Bearer" in text]
    assert not leaks, f"credentials leaked into {len(leaks)} messages, e.g. {leaks[0][:500]}"


def test_cli_does_not_print_credentials(env: Env) -> None:
    env.server.put_object(env.bucket, "obj", DATA)
    test_id = env.server.create_retry_test({GET: ["return-corrupted-data"]})
    cases = [
        ["-H", f"Authorization: Bearer {TOKEN}", f"gs://{env.bucket}/missing", "out1"],
        [
            "-H",
            f"Authorization: Bearer {TOKEN}",
            "-H",
            f"x-retry-test-id: {test_id}",
            f"gs://{env.bucket}/obj",
            "out2",
        ],
        ["--json", f"gs://{env.bucket}/missing", "out3"],  # header from the environment
    ]
    for args in cases:
        proc = subprocess.run(
            [sys.executable, "-m", "resumable_media", "cp", "--endpoint", env.endpoint, *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=env.workdir,
            env={**os.environ, "RESUMABLE_MEDIA_EXTRA_HEADERS": f"Authorization: Bearer {TOKEN}"},
        )
        assert proc.returncode == 1, proc.stderr
        output = proc.stdout + proc.stderr
        assert TOKEN not in output and "Bearer" not in output, output


def _mode(path: pathlib.Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_parallel_download_temp_and_journal_are_0600(env: Env) -> None:
    # Interrupt a download (kill -9 while the server stalls) under umask 0: what is left
    # for resume must be private to the owner.
    env.server.put_object(env.bucket, "big", DATA * 8)
    destination = env.workdir / "out.bin"
    test_id = env.server.create_retry_test({GET: ["stall-for-3s-after-64K"] * 8})
    args = ["download", env.endpoint, env.bucket, "big", str(destination), str(CHUNK), "0"]
    driver = Driver([*args, test_id], uuid.uuid4().hex, RM_UMASK="000")
    deadline = time.monotonic() + 60
    temp = pathlib.Path(temp_path_for(destination))
    journal = pathlib.Path(temp_path_for(destination) + ".journal")
    while not journal.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    driver.proc.kill()
    driver.close()
    assert temp.exists() and journal.exists(), sorted(p.name for p in env.workdir.iterdir())
    assert _mode(temp) == 0o600
    assert _mode(journal) == 0o600


def test_cli_download_temp_is_0600(env: Env) -> None:
    env.server.put_object(env.bucket, "obj", DATA)
    test_id = env.server.create_retry_test({GET: ["stall-for-3s-after-64K"]})
    command = [sys.executable, "-m", "resumable_media", "cp", "--endpoint", env.endpoint, "-q"]
    command += ["-H", f"x-retry-test-id: {test_id}", f"gs://{env.bucket}/obj", "out.bin"]
    proc = subprocess.Popen(
        ["sh", "-c", 'umask 000 && exec "$@"', "sh", *command],
        cwd=env.workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        temps: list[pathlib.Path] = []
        while not temps and time.monotonic() < deadline:
            temps = [p for p in env.workdir.iterdir() if p.name != "out.bin"]
            time.sleep(0.02)
        assert temps, "no temp file appeared during the stalled download"
        assert all(_mode(p) == 0o600 for p in temps), {p.name: oct(_mode(p)) for p in temps}
    finally:
        assert proc.wait(timeout=60) == 0
    assert (env.workdir / "out.bin").read_bytes() == DATA
