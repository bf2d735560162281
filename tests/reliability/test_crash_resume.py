"""Crash and resume: kill -9 a 64 MiB ParallelDownload / PipelinedUpload at 10 seeded moments.

For each moment a driver subprocess (``crash_driver.py``) starts the transfer while the
server stalls eight requests for 0.2 s each at random offsets (so a 64 MiB transfer lasts long
enough to be cut anywhere, without a bigger object); the test kills it with SIGKILL as soon
as its progress passes a seeded random fraction, checks that nothing wrong was left (no
destination file with wrong content, no finalized wrong object, no orphaned worker
processes), then reruns the transfer without faults: the rerun must finish, verify, and
produce exact bytes.  Downloads resume from the journal; at least one rerun must have
fetched less than the whole object (proof that resume is real).
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import queue
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from resumable_media.parallel.sink import temp_path_for

DRIVER = pathlib.Path(__file__).with_name("crash_driver.py")
SIZE = 64 * 1024 * 1024
CHUNK = 4 * 1024 * 1024
KILLS = 10
SEED = 7


@pytest.fixture(scope="module")
def big_data() -> bytes:
    """The 64 MiB object, the same bytes every run."""
    return random.Random(SEED).randbytes(SIZE)


class Driver:
    """A running crash_driver.py with its stdout lines in a queue."""

    def __init__(self, args: list[str], marker: str, **extra_env: str) -> None:
        env = {**os.environ, "RM_CRASH_MARKER": marker, "PYTHONWARNINGS": "ignore", **extra_env}
        self.proc = subprocess.Popen(
            [sys.executable, str(DRIVER), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def next_line(self, deadline: float) -> str | None:
        """The next stdout line; None at EOF.  Fails the test at ``deadline``."""
        try:
            return self.lines.get(timeout=max(deadline - time.monotonic(), 0.01))
        except queue.Empty:
            self.proc.kill()
            pytest.fail(f"driver produced no output before its deadline: {self.stderr()}")

    def stderr(self) -> str:
        self.proc.wait(timeout=30)
        assert self.proc.stderr is not None
        return self.proc.stderr.read()[-2000:]

    def close(self) -> None:
        """Reap the process and close its pipes."""
        self.proc.wait(timeout=30)
        self._reader.join(timeout=30)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


def _marked_processes(marker: str) -> list[int]:
    """Pids of live processes whose environment carries ``marker`` (the driver's children)."""
    found = []
    needle = f"RM_CRASH_MARKER={marker}".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError), open(f"/proc/{entry}/environ", "rb") as f:
            if needle in f.read():
                with open(f"/proc/{entry}/stat", "rb") as s:
                    if s.read().split(b") ")[-1][:1] != b"Z":
                        found.append(int(entry))
    return found


def _run_and_kill(
    args: list[str], fraction: float, timeout_s: float = 60, **extra_env: str
) -> tuple[str, int]:
    """Start the driver and SIGKILL it once its progress passes ``fraction``.

    Returns:
        ("killed", progress bytes seen) or ("finished", total) if it completed first.
    """
    marker = uuid.uuid4().hex
    driver = Driver(args, marker, **extra_env)
    deadline = time.monotonic() + timeout_s
    seen = 0
    state = "finished"
    while True:
        line = driver.next_line(deadline)
        if line is None:
            break
        if line.startswith("P "):
            done, total = (int(x) for x in line.split()[1:])
            seen = max(seen, done)
            if total > 0 and done >= fraction * total:
                driver.proc.send_signal(signal.SIGKILL)
                state = "killed"
                break
        elif line.startswith("DONE"):
            break
    driver.close()
    # Worker processes must follow their parent (they watch a pipe only it holds).
    deadline = time.monotonic() + 10
    while _marked_processes(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    orphans = _marked_processes(marker)
    for pid in orphans:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    assert not orphans, f"worker processes outlived the killed driver: {orphans}"
    return state, seen


def _run_to_end(args: list[str], timeout_s: float = 120, **extra_env: str) -> dict[str, Any]:
    driver = Driver(args, uuid.uuid4().hex, **extra_env)
    deadline = time.monotonic() + timeout_s
    result: dict[str, Any] | None = None
    while True:
        line = driver.next_line(deadline)
        if line is None:
            break
        if line.startswith("DONE "):
            result = json.loads(line[5:])
    code = driver.proc.wait(timeout=30)
    errors = driver.stderr() if code != 0 or result is None else ""
    driver.close()
    assert code == 0 and result is not None, f"rerun failed ({code}): {errors}"
    return result


def _stalls(rng: random.Random, count: int) -> list[str]:
    """``count`` stall instructions at random offsets inside a chunk."""
    return [f"stall-for-0.2s-after-{rng.randrange(0, CHUNK // 1024)}K" for _ in range(count)]


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Iterator[list[str]]:
    lines: list[str] = []
    yield lines
    capman = request.config.pluginmanager.getplugin("capturemanager")
    with capman.global_and_fixture_disabled() if capman else contextlib.nullcontext():
        print(f"\n{request.node.name}:\n  " + "\n  ".join(lines))


def test_parallel_download_killed_and_resumed(
    gcs_server: Any, gcs_bucket: str, big_data: bytes, tmp_path: pathlib.Path, report: list[str]
) -> None:
    name = "crash-download.bin"
    gcs_server.put_object(gcs_bucket, name, big_data)
    destination = tmp_path / "out.bin"
    rng = random.Random(SEED)
    resumed = 0
    for point in range(KILLS):
        for leftover in tmp_path.iterdir():
            leftover.unlink()
        fraction = rng.uniform(0.03, 0.97)
        processes = point % 2 * 2  # alternate: threads here, then 2 worker processes
        test_id = gcs_server.create_retry_test({"storage.objects.get": _stalls(rng, 8)})
        base = ["download", gcs_server.endpoint, gcs_bucket, name, str(destination), str(CHUNK)]
        state, seen = _run_and_kill([*base, str(processes), test_id], fraction)
        if destination.exists():
            assert destination.read_bytes() == big_data, f"kill {point}: wrong destination"
        before = gcs_server.media_bytes_sent_for(gcs_bucket)
        result = _run_to_end([*base, str(processes)])
        fetched = gcs_server.media_bytes_sent_for(gcs_bucket) - before
        resumed += fetched < SIZE
        assert result["verified"] is True and result["bytes"] == SIZE
        assert destination.read_bytes() == big_data, f"rerun {point}: wrong content"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"], "leftovers after rerun"
        report.append(
            f"kill {point}: target {fraction:.0%}, {state} at {seen / SIZE:.0%} "
            f"(processes={processes}); rerun fetched {fetched / SIZE:.0%}, verified"
        )
    assert resumed >= 1, "no rerun resumed from the journal"


def test_pipelined_upload_killed_and_rerun(
    gcs_server: Any, gcs_bucket: str, big_data: bytes, tmp_path: pathlib.Path, report: list[str]
) -> None:
    name = "crash-upload.bin"
    source = tmp_path / "src.bin"
    source.write_bytes(big_data)
    rng = random.Random(SEED + 1)
    generation = None
    session: dict[str, Any] = {"RM_SESSION_FILE": str(tmp_path / "session-url")}
    resumed = 0
    for point in range(KILLS):
        fraction = rng.uniform(0.03, 0.97)
        test_id = gcs_server.create_retry_test({"storage.objects.insert": _stalls(rng, 8)})
        base = ["upload", gcs_server.endpoint, gcs_bucket, name, str(source), str(CHUNK), "0"]
        state, seen = _run_and_kill([*base, test_id], fraction, **session)
        if gcs_server.has_object(gcs_bucket, name):
            # Either the previous rerun's object, or a complete one if the kill came late.
            with open(gcs_server.object_path(gcs_bucket, name), "rb") as f:
                assert f.read() == big_data, f"kill {point}: a wrong object was finalized"
        gcs_server.clear_requests()
        result = _run_to_end(base, **session)
        time.sleep(0.3)  # the server logs a request just after answering it
        sent = sum(r.body_bytes_in for r in gcs_server.requests if r.method == "PUT")
        assert result["verified"] is True and result["bytes"] == SIZE
        assert result["generation"] != generation
        generation = result["generation"]
        with open(gcs_server.object_path(gcs_bucket, name), "rb") as f:
            assert f.read() == big_data, f"rerun {point}: wrong object"
        assert not (tmp_path / "session-url").exists(), "a finished upload kept its session"
        resumed += sent < SIZE
        report.append(
            f"kill {point}: target {fraction:.0%}, {state} at {seen / SIZE:.0%} acknowledged; "
            f"rerun continued the session and sent {sent / SIZE:.0%}, verified"
        )
    assert resumed >= KILLS // 2, f"only {resumed} of {KILLS} reruns continued their session"


def test_crash_inside_journal_save_leaves_no_litter(
    gcs_server: Any, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    """A kill between writing the journal's temp file and renaming it (exact point, via a
    hook in the driver) must not leave files beside the destination after the rerun."""
    name = "crash-journal.bin"
    data = random.Random(SEED + 2).randbytes(8 * CHUNK // 4)  # 8 MiB, 8 chunks of 1 MiB
    gcs_server.put_object(gcs_bucket, name, data)
    destination = tmp_path / "out.bin"
    test_id = gcs_server.create_retry_test({"storage.objects.get": ["stall-for-1s-after-512K"] * 2})
    base = ["download", gcs_server.endpoint, gcs_bucket, name, str(destination), str(CHUNK // 4)]
    driver = Driver([*base, "0", test_id], uuid.uuid4().hex, RM_CRASH_IN_JOURNAL="1")
    code = driver.proc.wait(timeout=60)
    driver.close()
    assert code == -signal.SIGKILL, "the driver should have died inside Journal.save"
    assert not destination.exists()
    result = _run_to_end([*base, "0"])
    assert result["verified"] is True
    assert destination.read_bytes() == data
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name != "out.bin")
    assert not leftovers, f"files left beside the destination after a successful rerun: {leftovers}"


def _kill_mid_download(
    gcs_server: Any, bucket: str, name: str, destination: pathlib.Path
) -> pathlib.Path:
    """Start a download of ``name``, SIGKILL it once a journal exists; return the journal."""
    test_id = gcs_server.create_retry_test({"storage.objects.get": ["stall-for-2s-after-512K"] * 8})
    args = ["download", gcs_server.endpoint, bucket, name, str(destination), str(CHUNK // 4)]
    driver = Driver([*args, "0", test_id], uuid.uuid4().hex)
    journal = pathlib.Path(temp_path_for(destination) + ".journal")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        chunks = json.loads(journal.read_bytes()).get("chunks", []) if journal.exists() else []
        if any(done for done, _ in chunks):
            break
        time.sleep(0.02)
    driver.proc.send_signal(signal.SIGKILL)
    driver.close()
    assert journal.exists(), "the download never saved a journal"
    return journal


def test_resume_after_the_object_changed(
    gcs_server: Any, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    """Killed mid-download; the object is then replaced by different bytes of the SAME size.
    The rerun must not splice old and new: it must produce exactly the new bytes."""
    name = "changing.bin"
    old = random.Random(SEED + 3).randbytes(8 * CHUNK // 4)
    new = random.Random(SEED + 4).randbytes(len(old))
    gcs_server.put_object(gcs_bucket, name, old)
    destination = tmp_path / "out.bin"
    _kill_mid_download(gcs_server, gcs_bucket, name, destination)
    gcs_server.put_object(gcs_bucket, name, new)
    base = ["download", gcs_server.endpoint, gcs_bucket, name, str(destination), str(CHUNK // 4)]
    result = _run_to_end([*base, "0"])
    assert result["verified"] is True
    assert destination.read_bytes() == new


def test_resume_does_not_trust_lost_writes(
    gcs_server: Any, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    """Killed mid-download, then the bytes the journal counts as written are lost (as after
    a power cut before write-back: the temp file reads back zeros there).  The rerun must
    not commit a file with those zeros."""
    name = "lost-writes.bin"
    data = random.Random(SEED + 5).randbytes(8 * CHUNK // 4)
    gcs_server.put_object(gcs_bucket, name, data)
    destination = tmp_path / "out.bin"
    journal = _kill_mid_download(gcs_server, gcs_bucket, name, destination)
    record = json.loads(journal.read_bytes())
    chunk_size = record["chunk_size"]
    index, (done, _) = next((i, c) for i, c in enumerate(record["chunks"]) if c[0])
    with open(temp_path_for(destination), "r+b") as temp:
        temp.seek(index * chunk_size)
        temp.write(bytes(min(done, 4096)))  # the first 4 KiB of a "done" region: zeros
    base = ["download", gcs_server.endpoint, gcs_bucket, name, str(destination), str(CHUNK // 4)]
    driver = Driver([*base, "0"], uuid.uuid4().hex)
    code = driver.proc.wait(timeout=120)
    driver.close()
    if destination.exists():
        assert destination.read_bytes() == data, "a resumed download committed lost bytes"
    else:
        assert code != 0, "the rerun reported success without a destination file"
