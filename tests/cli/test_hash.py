"""``resumable-media hash``: digests as GCS shows them, checked against hashlib/google-crc32c."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import pathlib

import google_crc32c
from cli_helpers import RunCli


def _expected(data: bytes) -> tuple[str, str, str, str]:
    crc = google_crc32c.value(data).to_bytes(4, "big")
    md5 = hashlib.md5(data).digest()
    return (
        base64.b64encode(crc).decode(),
        base64.b64encode(md5).decode(),
        crc.hex(),
        md5.hex(),
    )


def test_hash_prints_base64_and_hex(run_cli: RunCli, tmp_path: pathlib.Path) -> None:
    data = os.urandom(3 * 2**20 + 17)
    path = tmp_path / "data file.bin"
    path.write_bytes(data)
    crc_b64, md5_b64, crc_hex, md5_hex = _expected(data)

    plain = run_cli("hash", str(path))
    assert plain.returncode == 0, plain.stderr
    assert f"Hash (crc32c):\t{crc_b64}" in plain.stdout
    assert f"Hash (md5):\t{md5_b64}" in plain.stdout
    assert crc_hex not in plain.stdout

    hexed = run_cli("hash", "--hex", str(path))
    assert hexed.returncode == 0, hexed.stderr
    assert crc_hex in hexed.stdout and md5_hex in hexed.stdout and crc_b64 in hexed.stdout


def test_hash_json_several_files_and_empty(run_cli: RunCli, tmp_path: pathlib.Path) -> None:
    files = {tmp_path / "empty": b"", tmp_path / "abc.txt": b"123456789"}
    for path, data in files.items():
        path.write_bytes(data)
    result = run_cli("hash", "--json", "--hex", *map(str, files))
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["file"] for line in lines] == [str(p) for p in files]
    for line, data in zip(lines, files.values(), strict=True):
        crc_b64, md5_b64, crc_hex, md5_hex = _expected(data)
        assert (line["crc32c"], line["md5"]) == (crc_b64, md5_b64)
        assert (line["crc32c_hex"], line["md5_hex"]) == (crc_hex, md5_hex)
    # RFC 3720 check value of "123456789" is 0xE3069283.
    assert lines[1]["crc32c_hex"] == "e3069283"


def test_hash_missing_file_exit_1(run_cli: RunCli, tmp_path: pathlib.Path) -> None:
    good = tmp_path / "good"
    good.write_bytes(b"x")
    missing = tmp_path / "nope.bin"
    result = run_cli("hash", str(missing), str(good))
    assert result.returncode == 1
    assert str(missing) in result.stderr
    assert str(good) in result.stdout


def test_hash_without_file_is_usage_error(run_cli: RunCli) -> None:
    result = run_cli("hash")
    assert result.returncode == 2
    assert "usage:" in result.stderr
