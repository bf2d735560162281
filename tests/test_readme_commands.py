"""README's command examples run as written, against the loopback server.

Every line of the first ``bash`` block under "### The command" runs in a fresh directory
with ``STORAGE_EMULATOR_HOST`` set, except ``serve`` (it runs until stopped; see
tests/server/test_serve.py) and ``bench`` (tests/functional/test_bench.py).
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import re
import subprocess
import sys

import pytest

from resumable_media.testing import GCSServer

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _command_lines() -> list[str]:
    section = README.split("### The command", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, flags=re.S)
    assert block is not None
    lines = []
    for line in block.group(1).splitlines():
        command = line.split("  #", 1)[0].strip()
        if command and not command.startswith(("resumable-media serve", "resumable-media bench")):
            lines.append(command)
    return lines


def test_the_command_examples_run_as_written(gcs_server: GCSServer, tmp_path: pathlib.Path) -> None:
    lines = _command_lines()
    assert len(lines) >= 8
    with contextlib.suppress(Exception):  # another test made it already
        gcs_server.create_bucket("my-bucket")
    backup = os.urandom(3 * 1024 * 1024 + 11)
    (tmp_path / "backup.tar").write_bytes(backup)
    site = {"index.html": b"<html>", "css/site.css": b"body{}", "img/logo.png": os.urandom(9000)}
    for name, data in site.items():
        path = tmp_path / "site" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    env = {k: v for k, v in os.environ.items() if k != "RESUMABLE_MEDIA_EXTRA_HEADERS"}
    env["STORAGE_EMULATOR_HOST"] = gcs_server.endpoint
    env["PATH"] = f"{pathlib.Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["RESUMABLE_MEDIA_STATE_DIR"] = str(tmp_path / "state")
    for line in lines:
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", line],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            timeout=120,
        )
        assert done.returncode == 0, f"{line}\n{done.stderr.decode()}"
    assert (tmp_path / "restored.tar").read_bytes() == backup
    for name, data in site.items():
        assert (tmp_path / "site-copy" / name).read_bytes() == data
        assert (tmp_path / "site" / name).read_bytes() == data  # unpacked from stdout again
    assert gcs_server.has_object("my-bucket", "site.tar")


@pytest.mark.parametrize("line", _command_lines())
def test_each_command_example_names_only_real_commands(line: str) -> None:
    from resumable_media.cli import build_parser

    commands = {"cp", "sync", "ls", "rm", "cat", "stat", "du", "hash", "cleanup"}
    used = re.findall(r"resumable-media (\w+)", line)
    assert used and set(used) <= commands
    parser = build_parser()
    for word in used:
        with pytest.raises(SystemExit) as shown:  # ``COMMAND --help`` exits 0 only if it exists
            parser.parse_args([word, "--help"])
        assert shown.value.code == 0
