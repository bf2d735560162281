"""Which engine ``cp`` picks for a large file: parallel XML from 64 MiB, unless it cannot."""

from __future__ import annotations

import json
import os
import pathlib

import pytest
from cli_helpers import RunCli

from resumable_media.testing import GCSServer

SIZE = 64 * 2**20 + 5  # just above the parallel-upload threshold


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    path = tmp_path_factory.mktemp("engine") / "big.bin"
    path.write_bytes(os.urandom(SIZE))
    return path


@pytest.mark.parametrize(
    ("extra", "method"),
    [
        ([], "parallel-xml"),  # the default: no --processes needed
        (["--checksum", "md5"], "pipelined"),  # XML multipart objects have no MD5
        (["-n"], "pipelined"),  # nor a generation precondition
        (["--processes", "1"], "pipelined"),  # one stream asked for
    ],
)
def test_large_upload_engine(
    run_cli: RunCli,
    gcs_server: GCSServer,
    gcs_bucket: str,
    big_file: pathlib.Path,
    extra: list[str],
    method: str,
) -> None:
    name = f"big-{method}-{len(extra)}.bin"
    result = run_cli("cp", "--json", *extra, str(big_file), f"gs://{gcs_bucket}/{name}")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["method"] == method
    assert summary["verified"] is True and summary["bytes"] == SIZE
    assert gcs_server.object_bytes(gcs_bucket, name) == big_file.read_bytes()
