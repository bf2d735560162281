"""Trees with special files: FIFOs, sockets, dangling links, loops and links out of the tree
are skipped with one warning each (never a hang), our own temp files are never backed up,
and --follow-symlinks is the only way to follow a link out of the tree."""

from __future__ import annotations

import json
import os
import pathlib
import socket
import subprocess
from collections.abc import Iterator

import pytest
from cli_helpers import RunCli
from test_sync import bucket_tree, run_sync

from resumable_media.testing import GCSServer


@pytest.fixture
def tree(tmp_path: pathlib.Path) -> Iterator[tuple[pathlib.Path, dict[str, str]]]:
    """A tree with two regular files, a link to one of them, and one of each special kind.

    Yields the root and, for each special entry, the reason the command must give.
    """
    root = tmp_path / "tree"
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_bytes(b"alpha")
    (root / "sub" / "b.txt").write_bytes(b"beta" * 1000)
    (root / "inside-link").symlink_to("sub/b.txt")
    outside = tmp_path / "secret.txt"
    outside.write_bytes(b"outside the tree")
    (root / "outside-link").symlink_to(outside)
    os.mkfifo(root / "pipe")
    (root / "dangling").symlink_to(tmp_path / "gone")
    (root / "loop1").symlink_to(root / "loop2")
    (root / "loop2").symlink_to(root / "loop1")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(root / "sock"))
    # Our own leftovers from interrupted downloads: never uploaded.
    (root / ".c.txt.ab12cd34.rm-part").write_bytes(b"partial")
    (root / "big.bin.rmpart").write_bytes(b"partial")
    (root / "big.bin.rmpart.journal").write_bytes(b"{}")
    reasons = {
        "outside-link": "a symlink to a file outside the tree; skipped (use --follow-symlinks)",
        "pipe": "a FIFO (named pipe); skipped",
        "dangling": "a dangling symlink; skipped",
        "loop1": "a symlink loop; skipped",
        "loop2": "a symlink loop; skipped",
        "sock": "a socket; skipped",
    }
    yield root, reasons
    sock.close()


EXPECTED = {"a.txt": b"alpha", "sub/b.txt": b"beta" * 1000, "inside-link": b"beta" * 1000}


def _warnings(stderr: str) -> dict[str, str]:
    found = {}
    for line in stderr.splitlines():
        if line.startswith("warning: "):
            path, _, reason = line[len("warning: ") :].partition(": ")
            found[pathlib.Path(path).name] = reason
    return found


def test_sync_skips_special_files_with_one_warning_each(
    gcs_server: GCSServer, gcs_bucket: str, tree: tuple[pathlib.Path, dict[str, str]]
) -> None:
    root, reasons = tree
    done = run_sync(gcs_server, "--json", str(root), f"gs://{gcs_bucket}/t", timeout=60)
    assert done.returncode == 0, done.stderr
    assert _warnings(done.stderr) == reasons
    assert len([line for line in done.stderr.splitlines() if "warning" in line]) == len(reasons)
    assert bucket_tree(gcs_server, gcs_bucket, "t/") == EXPECTED
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["ignored"] == len(reasons) and summary["copied"] == len(EXPECTED)
    assert f"{len(reasons)} special file(s) skipped" in done.stderr


def test_sync_follow_symlinks_follows_a_link_out_of_the_tree(
    gcs_server: GCSServer, gcs_bucket: str, tree: tuple[pathlib.Path, dict[str, str]]
) -> None:
    root, reasons = tree
    done = run_sync(gcs_server, "--follow-symlinks", str(root), f"gs://{gcs_bucket}/f", timeout=60)
    assert done.returncode == 0, done.stderr
    del reasons["outside-link"]
    assert _warnings(done.stderr) == reasons
    assert bucket_tree(gcs_server, gcs_bucket, "f/") == {
        **EXPECTED,
        "outside-link": b"outside the tree",
    }


def test_cp_r_skips_special_files_and_never_hangs_on_a_fifo(
    run_cli: RunCli,
    gcs_server: GCSServer,
    gcs_bucket: str,
    tree: tuple[pathlib.Path, dict[str, str]],
) -> None:
    root, reasons = tree
    try:
        done = run_cli("cp", "-r", str(root), f"gs://{gcs_bucket}/c/", timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("cp -r hung on a FIFO with no writer")
    assert done.returncode == 0, done.stderr
    assert _warnings(done.stderr) == reasons
    copied = bucket_tree(gcs_server, gcs_bucket, "c/")
    # gsutil's naming puts the tree under c/tree/; the older one directly under c/.
    assert {name.removeprefix("tree/") for name in copied} == set(EXPECTED)
    assert not any("rm-part" in name or "rmpart" in name for name in copied)
