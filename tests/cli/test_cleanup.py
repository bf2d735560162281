"""``cleanup DIR`` removes only our stale temp files and journals; temp files are hidden."""

from __future__ import annotations

import fcntl
import json
import os
import pathlib
import subprocess
import time

from cli_helpers import cli_env, command

from resumable_media.parallel.sink import temp_path_for

OLD = time.time() - 30 * 86400


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command("cleanup", *args), capture_output=True, text=True, timeout=60, env=cli_env()
    )


def _make(path: pathlib.Path, data: bytes = b"x", *, old: bool = True) -> pathlib.Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if old:
        os.utime(path, (OLD, OLD))
    return path


def test_the_accelerators_temp_file_is_hidden(tmp_path: pathlib.Path) -> None:
    temp = pathlib.Path(temp_path_for(tmp_path / "photo.jpg"))
    assert temp.parent == tmp_path and temp.name == ".photo.jpg.rmpart"
    long_name = "n" * 250
    a = pathlib.Path(temp_path_for(tmp_path / long_name))
    b = pathlib.Path(temp_path_for(tmp_path / (long_name[:-1] + "m")))
    assert a.name.startswith(".") and len(os.fsencode(a.name + ".journal.tmp")) <= 255
    assert a != b  # shortened names still differ


def test_cleanup_removes_only_stale_temp_files_of_ours(tmp_path: pathlib.Path) -> None:
    tree = tmp_path / "restore"
    stale = [
        _make(tree / ".a.txt.k2j4h5l6.rm-part"),
        _make(tree / "sub" / ".big.bin.rmpart", b"y" * 1000),
        _make(tree / "sub" / ".big.bin.rmpart.journal"),
        _make(tree / "sub" / ".big.bin.rmpart.journal.tmp"),
        _make(tree / "old-style.bin.rmpart"),
    ]
    kept = [
        _make(tree / "a.txt"),  # a user's file, however old
        _make(tree / "notes.rm-part"),  # not one of our names (no leading dot and tag)
        _make(tree / ".fresh.bin.rmpart", old=False),  # a recent download may resume
        _make(tree / ".fresh.bin.rmpart.journal"),  # old, but its partial file is fresh
    ]
    dry = _run("--dry-run", "--json", str(tree))
    assert dry.returncode == 0, dry.stderr
    listed = sorted(json.loads(line)["path"] for line in dry.stdout.splitlines())
    assert listed == sorted(map(str, stale))
    assert all(p.exists() for p in stale)
    done = _run(str(tree))
    assert done.returncode == 0, done.stderr
    assert not any(p.exists() for p in stale)
    assert all(p.exists() for p in kept)
    assert f"cleanup: removed {len(stale)} stale temp file(s)" in done.stderr
    assert (tree / "a.txt").read_bytes() == b"x"


def test_cleanup_never_removes_a_temp_file_in_use(tmp_path: pathlib.Path) -> None:
    busy = _make(tmp_path / ".movie.mkv.rmpart")
    journal = _make(tmp_path / ".movie.mkv.rmpart.journal")
    fd = os.open(busy, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # what a running download holds
        done = _run("--older-than", "0", str(tmp_path))
        assert done.returncode == 0, done.stderr
        assert busy.exists() and journal.exists()
    finally:
        os.close(fd)
    assert _run("--older-than", "0", str(tmp_path)).returncode == 0
    assert not busy.exists() and not journal.exists()


def test_cleanup_refuses_a_missing_directory_and_bad_days(tmp_path: pathlib.Path) -> None:
    missing = _run(str(tmp_path / "nope"))
    assert missing.returncode == 1
    assert (
        missing.stderr == f"error: {tmp_path / 'nope'}: not a directory; give the tree to clean\n"
    )
    bad = _run("--older-than", "-1", str(tmp_path))
    assert bad.returncode == 2 and "expected a number of days >= 0" in bad.stderr
