"""Ctrl-C and interrupted copies: stop fast, leave no temp files, resume from the journal."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import time

import requests
from cli_helpers import cli_env, command

from resumable_media.testing import GCSServer


def _start(gcs_server: GCSServer, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        command("cp", "--endpoint", gcs_server.endpoint, *args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )


def _wait_for(predicate: object, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return True
        time.sleep(0.05)
    return False


def _interrupt(proc: subprocess.Popen[str]) -> tuple[float, str]:
    """Send SIGINT; return (seconds until exit, stderr)."""
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    try:
        _, stderr = proc.communicate(timeout=10)
    finally:
        proc.kill()
    return time.monotonic() - sent, stderr


def test_ctrl_c_during_single_request_download(
    gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    gcs_server.put_object(gcs_bucket, "slow.bin", os.urandom(200_000))
    gcs_server.clear_requests()
    proc = _start(
        gcs_server,
        "--header",
        "x-goog-emulator-instructions: stall-always",
        f"gs://{gcs_bucket}/slow.bin",
        str(tmp_path / "slow.bin"),
    )

    def media_requested() -> bool:
        return any("alt=media" in r.path for r in gcs_server.requests) or bool(
            list(tmp_path.iterdir())
        )

    assert _wait_for(media_requested, 15), "the download never started"
    time.sleep(0.3)
    assert list(tmp_path.iterdir()), "expected a temp file while the download stalls"
    elapsed, stderr = _interrupt(proc)
    assert elapsed < 2.0, f"took {elapsed:.2f} s to stop"
    assert proc.returncode == 130
    assert "interrupted" in stderr
    assert list(tmp_path.iterdir()) == []


def test_interrupted_parallel_download_resumes(
    gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    size = 4 * 2**20
    data = os.urandom(size)
    gcs_server.put_object(gcs_bucket, "resume me.bin", data)
    test_id = gcs_server.create_retry_test({"storage.objects.get": ["stall-for-30s-after-256K"]})
    target = tmp_path / "resume me.bin"
    args = ["--chunk-size", "512KiB", f"gs://{gcs_bucket}/resume me.bin", str(target)]
    before = gcs_server.media_bytes_sent_for(gcs_bucket)
    proc = _start(gcs_server, "--header", f"x-retry-test-id: {test_id}", *args)
    # Everything but the stalled chunk arrives; then the user presses Ctrl-C.
    assert _wait_for(lambda: gcs_server.media_bytes_sent_for(gcs_bucket) - before >= size // 2, 20)
    time.sleep(0.5)
    elapsed, stderr = _interrupt(proc)
    assert proc.returncode == 130, stderr
    assert elapsed < 2.0, f"took {elapsed:.2f} s to stop"
    assert not target.exists()
    leftovers = sorted(p.name for p in tmp_path.iterdir())
    assert any(name.endswith(".journal") for name in leftovers), leftovers

    before = gcs_server.media_bytes_sent_for(gcs_bucket)
    rerun = _rerun(gcs_server, args)
    assert rerun.returncode == 0, rerun.stderr
    assert target.read_bytes() == data
    resent = gcs_server.media_bytes_sent_for(gcs_bucket) - before
    assert resent < size // 2, f"resumed run fetched {resent} of {size} bytes"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["resume me.bin"]
    # The resume is visible: --json says so, with the bytes this run itself moved.
    line = json.loads(rerun.stdout.strip().splitlines()[-1])
    assert line["resumed"] is True and line["bytes"] == size
    assert 0 < line["bytes_transferred"] < size // 2
    assert line["bytes_transferred"] <= resent


def test_no_resume_starts_over(
    gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    size = 2 * 2**20
    data = os.urandom(size)
    gcs_server.put_object(gcs_bucket, "fresh.bin", data)
    target = tmp_path / "fresh.bin"
    test_id = gcs_server.create_retry_test({"storage.objects.get": ["stall-for-30s-after-128K"]})
    args = ["--chunk-size", "256KiB", f"gs://{gcs_bucket}/fresh.bin", str(target)]
    before = gcs_server.media_bytes_sent_for(gcs_bucket)
    proc = _start(gcs_server, "--header", f"x-retry-test-id: {test_id}", "--no-resume", *args)
    assert _wait_for(lambda: gcs_server.media_bytes_sent_for(gcs_bucket) - before >= size // 2, 20)
    _, stderr = _interrupt(proc)
    assert proc.returncode == 130, stderr
    # Without resume nothing is kept: no data, no journal.
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_during_recursive_download(
    gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    for i in range(6):
        gcs_server.put_object(gcs_bucket, f"tree/{i}.bin", os.urandom(30_000))
    destination = tmp_path / "dest"
    gcs_server.clear_requests()
    proc = _start(
        gcs_server,
        "-r",
        "--header",
        "x-goog-emulator-instructions: stall-always",
        f"gs://{gcs_bucket}/tree",
        str(destination),
    )

    def stalled() -> bool:
        return sum("alt=media" in r.path for r in gcs_server.requests) >= 1 or (
            destination.exists() and bool(list(destination.iterdir()))
        )

    assert _wait_for(stalled, 15)
    time.sleep(0.3)
    elapsed, stderr = _interrupt(proc)
    assert proc.returncode == 130, stderr
    assert elapsed < 2.0, f"took {elapsed:.2f} s to stop"
    assert list(destination.iterdir()) == []


def test_sigterm_stops_an_upload_with_143(
    gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    source = tmp_path / "up.bin"
    source.write_bytes(os.urandom(600_000))
    proc = _start(
        gcs_server,
        "--header",
        "x-goog-emulator-instructions: stall-always",
        "--chunk-size",
        "256KiB",
        str(source),
        f"gs://{gcs_bucket}/up.bin",
    )
    time.sleep(1.0)
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=10)
    assert time.monotonic() - sent < 2.0
    assert proc.returncode == 143, stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["up.bin"]


CHUNK = 256 * 1024


def _kill_mid_upload(
    gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> tuple[list[str], bytes, pathlib.Path]:
    """Start a ``cp`` upload whose chunks each stall, kill -9 it after three chunks.

    Returns the command's arguments, the file's bytes and the session file it left.
    """
    data = os.urandom(8 * CHUNK + 99)
    source = tmp_path / "backup.tar"
    source.write_bytes(data)
    args = ["--chunk-size", "256KiB", str(source), f"gs://{gcs_bucket}/backup.tar"]
    state_dir = pathlib.Path(cli_env()["RESUMABLE_MEDIA_STATE_DIR"])
    earlier = set(state_dir.glob("*.json"))  # other tests' interrupted uploads
    gcs_server.clear_requests()
    proc = _start(
        gcs_server, "--header", "x-goog-emulator-instructions: stall-for-1s-after-128K", *args
    )

    def chunks_acknowledged() -> int:
        return sum(
            1
            for r in gcs_server.requests
            if r.method == "PUT"
            and r.status == 308
            and not r.headers.get("content-range", "bytes */*").startswith("bytes */")
        )

    try:
        assert _wait_for(lambda: chunks_acknowledged() >= 3, 30), "the upload never progressed"
    finally:
        proc.kill()  # kill -9: no cleanup, no goodbye
        proc.communicate(timeout=10)
    assert not gcs_server.has_object(gcs_bucket, "backup.tar")
    saved = set(state_dir.glob("*.json")) - earlier
    assert len(saved) == 1, "the session was not kept for resuming"
    session_file = saved.pop()
    assert oct(session_file.stat().st_mode & 0o777) == oct(0o600)
    return args, data, session_file


def _rerun(gcs_server: GCSServer, args: list[str]) -> subprocess.CompletedProcess[str]:
    gcs_server.clear_requests()
    return subprocess.run(
        command("cp", "--endpoint", gcs_server.endpoint, "--json", *args),
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=60,
        check=False,
    )


def test_killed_upload_continues_its_session(
    gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    args, data, session_file = _kill_mid_upload(gcs_server, gcs_bucket, tmp_path)
    rerun = _rerun(gcs_server, args)
    assert rerun.returncode == 0, rerun.stderr
    assert '"method": "pipelined-resumed"' in rerun.stdout
    line = json.loads(rerun.stdout.strip().splitlines()[-1])
    assert line["resumed"] is True and line["bytes"] == len(data)
    assert 0 < line["bytes_transferred"] <= len(data) - 3 * CHUNK  # only what was missing
    assert gcs_server.object_bytes(gcs_bucket, "backup.tar") == data
    starts = [
        int(r.headers["content-range"].split()[1].split("-")[0])
        for r in gcs_server.requests
        if r.method == "PUT" and r.headers.get("content-range", "")[6:7].isdigit()
    ]
    assert starts and min(starts) >= 3 * CHUNK, starts  # nothing already stored went again
    assert not any(r.method == "POST" for r in gcs_server.requests)  # the same session
    assert not session_file.exists()  # a finished upload forgets its session


def test_upload_whose_session_is_gone_starts_afresh(
    gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    args, data, session_file = _kill_mid_upload(gcs_server, gcs_bucket, tmp_path)
    url = json.loads(session_file.read_text())["url"]
    assert requests.delete(url, timeout=10).status_code in (204, 499)  # cancelled meanwhile
    rerun = _rerun(gcs_server, args)
    assert rerun.returncode == 0, rerun.stderr
    assert '"method": "pipelined"' in rerun.stdout
    line = json.loads(rerun.stdout.strip().splitlines()[-1])
    assert line["resumed"] is False and line["bytes_transferred"] == len(data)
    assert gcs_server.object_bytes(gcs_bucket, "backup.tar") == data
    assert any(r.method == "POST" for r in gcs_server.requests)  # a new session
    assert not session_file.exists()


def test_rerun_with_other_metadata_does_not_continue_the_old_session(
    gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    args, data, session_file = _kill_mid_upload(gcs_server, gcs_bucket, tmp_path)
    rerun = _rerun(gcs_server, ["--content-type", "text/x-changed", *args])
    assert rerun.returncode == 0, rerun.stderr
    assert '"method": "pipelined"' in rerun.stdout  # a new session, not the old one
    assert gcs_server.object_bytes(gcs_bucket, "backup.tar") == data
    meta = requests.get(
        f"{gcs_server.endpoint}/storage/v1/b/{gcs_bucket}/o/backup.tar", timeout=10
    ).json()
    assert meta["contentType"] == "text/x-changed"
    session_file.unlink()  # the interrupted session of the other settings, left to expire
