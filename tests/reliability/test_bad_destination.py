"""Bad destinations: a missing directory, a path under a regular file, a read-only file system,
a full disk -- each refused with the named OSError, and nothing left behind.

Tests run as root, which ignores permission bits, so read-only and full are real small
tmpfs mounts (``mount -t tmpfs``), unmounted afterwards.
"""

from __future__ import annotations

import errno
import pathlib
import re
import subprocess
from collections.abc import Iterator

import pytest
import requests
from rel_kinds import Env
from rel_support import DATA, FAST_RETRY, TIMEOUT, cp

from resumable_media import transports
from resumable_media.parallel import ParallelDownload
from resumable_media.requests import Download

CHUNK = 256 * 1024


def test_parallel_download_missing_directory(env: Env) -> None:
    destination = env.workdir / "no" / "such" / "dir" / "out.bin"
    download = ParallelDownload(
        env.media_url("obj"), destination, chunk_size=CHUNK, retry=FAST_RETRY
    )
    with pytest.raises(FileNotFoundError, match=re.escape(str(destination.parent))):
        download.consume(transports.anonymous())
    assert not (env.workdir / "no").exists()


def test_parallel_download_path_under_a_file(env: Env) -> None:
    regular = env.workdir / "file.txt"
    regular.write_bytes(b"keep me")
    download = ParallelDownload(env.media_url("obj"), regular / "out.bin", chunk_size=CHUNK)
    with pytest.raises((NotADirectoryError, FileNotFoundError), match=re.escape(str(regular))):
        download.consume(transports.anonymous())
    assert regular.read_bytes() == b"keep me"


def _mount_tmpfs(path: pathlib.Path, options: str) -> None:
    path.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs here ({result.stderr.strip()}); this test needs one")


@pytest.fixture
def readonly_dir(tmp_path: pathlib.Path) -> Iterator[pathlib.Path]:
    """A read-only file system (root ignores permission bits, not a ro mount)."""
    path = tmp_path / "ro"
    _mount_tmpfs(path, "ro,size=1m")
    yield path
    subprocess.run(["umount", str(path)], check=True)


@pytest.fixture
def full_dir(tmp_path: pathlib.Path) -> Iterator[pathlib.Path]:
    """A 512 KiB file system: too small for the 1 MiB object."""
    path = tmp_path / "full"
    _mount_tmpfs(path, "size=512k")
    yield path
    subprocess.run(["umount", str(path)], check=True)


def test_parallel_download_read_only_directory(env: Env, readonly_dir: pathlib.Path) -> None:
    download = ParallelDownload(env.media_url("obj"), readonly_dir / "out.bin", chunk_size=CHUNK)
    with pytest.raises(OSError) as caught:
        download.consume(transports.anonymous())
    assert caught.value.errno == errno.EROFS
    assert list(readonly_dir.iterdir()) == []


@pytest.mark.parametrize("chunk_size", [CHUNK, 4 * CHUNK])  # pooled ranges / one stream
def test_parallel_download_disk_full(env: Env, full_dir: pathlib.Path, chunk_size: int) -> None:
    download = ParallelDownload(
        env.media_url("obj"), full_dir / "out.bin", chunk_size=chunk_size, retry=FAST_RETRY
    )
    with pytest.raises(OSError) as caught:
        download.consume(transports.anonymous())
    assert caught.value.errno == errno.ENOSPC
    assert list(full_dir.iterdir()) == [], "a full disk must not keep partial files"


def test_download_into_full_disk_is_not_retried(
    env: Env, session: requests.Session, full_dir: pathlib.Path
) -> None:
    before = len(env.server.requests)
    with open(full_dir / "out.bin", "wb") as stream:
        download = Download(env.media_url("obj"), stream, retry=FAST_RETRY)
        with pytest.raises(OSError) as caught:
            download.consume(session, timeout=TIMEOUT)
    assert caught.value.errno == errno.ENOSPC
    assert len(env.server.requests) == before + 1, "a full disk is not a network fault: no retries"


@pytest.mark.parametrize("where", ["under-a-file", "read-only", "full"])
def test_cli_download_bad_destination(
    env: Env, where: str, readonly_dir: pathlib.Path, full_dir: pathlib.Path
) -> None:
    (env.workdir / "afile").write_bytes(b"a file, not a directory")
    target = {
        "under-a-file": env.workdir / "afile" / "out.bin",
        "read-only": readonly_dir / "out.bin",
        "full": full_dir / "out.bin",
    }[where]
    proc = cp(env.endpoint, "-q", f"gs://{env.bucket}/obj", str(target))
    assert proc.returncode == 1, proc.stderr
    # One line, in words, about the user's own path: never our temp file, never a repr.
    expected = {
        "under-a-file": f"error: gs://{env.bucket}/obj: cannot write {target}: a part of its "
        "path is a file, not a directory",
        "read-only": f"error: gs://{env.bucket}/obj: cannot write {target}: its file system is "
        "read-only; choose another destination",
        "full": f"error: gs://{env.bucket}/obj: no space left on the device holding {target} "
        "(needs 1.0 MiB); free some space, then run the command again",
    }[where]
    assert proc.stderr.strip() == expected, proc.stderr
    assert "rm-part" not in proc.stderr and "rmpart" not in proc.stderr
    assert "Errno" not in proc.stderr and "OSError" not in proc.stderr
    assert not target.exists()
    if target.parent.is_dir():
        assert list(target.parent.iterdir()) == [], "temp files left behind"


def test_cli_download_makes_the_missing_directories(env: Env) -> None:
    """As gsutil does: ``cp gs://b/obj new/dirs/out.bin`` creates ``new/dirs``."""
    target = env.workdir / "new" / "dirs" / "out.bin"
    proc = cp(env.endpoint, "-q", f"gs://{env.bucket}/obj", str(target))
    assert proc.returncode == 0, proc.stderr
    assert target.read_bytes() == DATA
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.bin"]


def test_cli_tree_download_onto_a_full_disk_says_so_once(env: Env, full_dir: pathlib.Path) -> None:
    """A full device stops new downloads to it: one error line and one summary, not 40."""
    data = {f"t/f{i:02d}.bin": bytes([i]) * (64 * 1024) for i in range(40)}
    for name, body in data.items():
        env.server.put_object(env.bucket, name, body)
    target = full_dir / "restore"
    proc = cp(env.endpoint, "-r", "-q", f"gs://{env.bucket}/t", str(target))
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 2, proc.stderr
    assert re.fullmatch(
        rf"error: gs://{env.bucket}/t/f\d\d\.bin: no space left on the device holding "
        rf"{re.escape(str(target))}/f\d\d\.bin \(needs 64\.0 KiB\); free some space, then "
        "run the command again",
        lines[0],
    ), lines[0]
    copied = sorted(p.name for p in target.iterdir())
    match = re.fullmatch(
        rf"error: no space left on the device holding {re.escape(str(target))}/f\d\d\.bin: "
        r"(\d+) more download\(s\) to it failed the same way or were not started; free some "
        "space, then run the command again",
        lines[1],
    )
    assert match, lines[1]
    assert int(match.group(1)) + 1 + len(copied) == len(data)
    # What was written is whole and right; nothing half-written or temporary is left.
    for name in copied:
        assert (target / name).read_bytes() == data[f"t/{name}"]


def test_parallel_download_onto_a_directory(env: Env) -> None:
    target = env.workdir / "adir"
    target.mkdir()
    (target / "keep.txt").write_bytes(b"keep")
    download = ParallelDownload(env.media_url("obj"), target, chunk_size=CHUNK, retry=FAST_RETRY)
    with pytest.raises(IsADirectoryError):
        download.consume(transports.anonymous())
    assert (target / "keep.txt").read_bytes() == b"keep"
    assert sorted(p.name for p in env.workdir.iterdir()) == ["adir"], "temp files left behind"


def test_two_downloads_to_one_destination(env: Env) -> None:
    # The second download of the same destination must not interleave with the first:
    # it waits or fails clearly; the file ends up exact either way.
    import concurrent.futures

    test_id = env.server.create_retry_test({"storage.objects.get": ["stall-for-1s-after-64K"]})
    destination = env.workdir / "out.bin"

    def run(headers: dict[str, str]) -> str:
        download = ParallelDownload(
            env.media_url("obj"),
            destination,
            chunk_size=CHUNK,
            processes=0,
            headers=headers,
            retry=FAST_RETRY,
            timeout=(10, 5),
        )
        try:
            download.consume(transports.anonymous())
        except OSError as exc:
            return f"{type(exc).__name__}: {exc}"
        return "ok"

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        first = pool.submit(run, {"x-retry-test-id": test_id})
        second = pool.submit(run, {})
        outcomes = [first.result(timeout=60), second.result(timeout=60)]
    assert "ok" in outcomes, outcomes
    assert destination.read_bytes() == DATA
    assert sorted(p.name for p in env.workdir.iterdir()) == ["out.bin"], "temp files left behind"
