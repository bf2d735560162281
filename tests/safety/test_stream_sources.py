"""stdin (``-``) and FIFOs are streamed to an exact object: pipelined, size unknown to EOF."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import threading
import time

from resumable_media.testing import GCSServer


def _cp(
    server: GCSServer, *args: str, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "STORAGE_EMULATOR_HOST"}
    argv = [sys.executable, "-m", "resumable_media", "cp", "--endpoint", server.endpoint, *args]
    return subprocess.run(argv, input=stdin, capture_output=True, timeout=120, env=env)


def test_stdin_is_streamed_to_an_exact_object(gcs_server: GCSServer, gcs_bucket: str) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)  # several chunks, a short last one
    done = _cp(
        gcs_server,
        "--json",
        "--chunk-size",
        "1MiB",
        "-",
        f"gs://{gcs_bucket}/piped.bin",
        stdin=data,
    )
    assert done.returncode == 0, done.stderr
    assert gcs_server.object_bytes(gcs_bucket, "piped.bin") == data
    line = json.loads(done.stdout.decode().strip().splitlines()[-1])
    assert line["verified"] is True and line["bytes"] == len(data)
    assert line["source"] == "stdin" and line["method"] == "pipelined-stream"


def test_a_fifo_is_streamed_once_its_writer_comes(
    gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    fifo = tmp_path / "feed"
    os.mkfifo(fifo)
    data = os.urandom(2 * 1024 * 1024 + 5)

    def writer() -> None:
        time.sleep(0.5)  # the command is already waiting for us
        with open(fifo, "wb") as out:
            for at in range(0, len(data), 65536):
                out.write(data[at : at + 65536])

    thread = threading.Thread(target=writer)
    thread.start()
    done = _cp(gcs_server, "--chunk-size", "512KiB", str(fifo), f"gs://{gcs_bucket}/in/")
    thread.join()
    assert done.returncode == 0, done.stderr
    assert b"a FIFO or device; streaming it (waiting for a writer)" in done.stderr
    assert gcs_server.object_bytes(gcs_bucket, "in/feed") == data  # named after the FIFO


def test_stdin_needs_an_object_name_and_goes_alone(gcs_server: GCSServer, gcs_bucket: str) -> None:
    no_name = _cp(gcs_server, "-", f"gs://{gcs_bucket}/dir/", stdin=b"x")
    assert no_name.returncode == 2
    assert b"stdin has no name: give the object's name" in no_name.stderr
    several = _cp(gcs_server, "-", "other.txt", f"gs://{gcs_bucket}/d/", stdin=b"x")
    assert several.returncode == 2 and b"copied alone" in several.stderr


def test_a_failed_stream_leaves_no_object(gcs_server: GCSServer) -> None:
    done = _cp(gcs_server, "-", "gs://no-such-bucket/x.bin", stdin=b"y" * 1000)
    assert done.returncode == 1
    assert done.stderr.decode().startswith("error: gs://no-such-bucket/x.bin: ")
    assert not gcs_server.has_object("no-such-bucket", "x.bin")


def test_an_object_is_copied_to_stdout_in_order(gcs_server: GCSServer, gcs_bucket: str) -> None:
    data = os.urandom(5 * 1024 * 1024 + 3)
    gcs_server.put_object(gcs_bucket, "out.bin", data)
    done = _cp(gcs_server, f"gs://{gcs_bucket}/out.bin", "-")
    assert done.returncode == 0, done.stderr
    assert done.stdout == data


def test_a_corrupted_object_to_stdout_ends_with_an_error(
    gcs_server: GCSServer, gcs_bucket: str
) -> None:
    data = os.urandom(3 * 1024 * 1024)
    gcs_server.put_object(gcs_bucket, "bad.bin", data)
    test_id = gcs_server.create_retry_test({"storage.objects.get": ["return-corrupted-data"]})
    done = _cp(gcs_server, "-H", f"x-retry-test-id: {test_id}", f"gs://{gcs_bucket}/bad.bin", "-")
    assert done.returncode == 1
    assert len(done.stdout) < len(data)  # the last bytes are withheld: never complete-looking
    assert done.stderr.decode().startswith(f"error: gs://{gcs_bucket}/bad.bin: ")
    missing = _cp(gcs_server, f"gs://{gcs_bucket}/nope", "-")
    assert missing.returncode == 1 and f"gs://{gcs_bucket}/nope" in missing.stderr.decode()
