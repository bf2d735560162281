"""``resumable-media cp`` end to end against the loopback server, through a subprocess."""

from __future__ import annotations

import base64
import json
import os
import pathlib
import subprocess

import google_crc32c
import pytest
from cli_helpers import RunCli, cli_env, command

from resumable_media.testing import GCSServer

TRICKY = ["plain.txt", "with space.bin", "unicodé ✓.dat", "hash#tag", "what?.txt", "100%.raw"]


def _crc_b64(data: bytes) -> str:
    return base64.b64encode(google_crc32c.value(data).to_bytes(4, "big")).decode()


def _leftovers(directory: pathlib.Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def test_download_small_object(
    run_cli: RunCli, gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    data = os.urandom(100_000)
    gcs_server.put_object(gcs_bucket, "dir/small.bin", data)
    result = run_cli("cp", "--json", f"gs://{gcs_bucket}/dir/small.bin", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "small.bin").read_bytes() == data
    summary = json.loads(result.stdout)
    assert summary["status"] == "ok"
    assert summary["method"] == "single"
    assert summary["bytes"] == len(data)
    assert summary["crc32c"] == _crc_b64(data)
    assert summary["destination"] == str(tmp_path / "small.bin")
    assert summary["verified"] is True
    assert _leftovers(tmp_path) == []

    unchecked = run_cli(
        "cp", "--json", "--checksum", "none", f"gs://{gcs_bucket}/dir/small.bin", str(tmp_path)
    )
    assert unchecked.returncode == 0, unchecked.stderr
    assert json.loads(unchecked.stdout)["verified"] is False


def test_download_large_object_uses_accelerator(
    run_cli: RunCli, gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    data = os.urandom(3 * 2**20 + 12345)
    gcs_server.put_object(gcs_bucket, "big one", data)
    target = tmp_path / "out.bin"
    result = run_cli(
        "cp", "--json", "--chunk-size", "512KiB", f"gs://{gcs_bucket}/big one", str(target)
    )
    assert result.returncode == 0, result.stderr
    assert target.read_bytes() == data
    summary = json.loads(result.stdout)
    assert summary["method"] == "parallel"
    assert summary["crc32c"] == _crc_b64(data)
    assert summary["verified"] is True


def test_upload_small_and_large_files(
    run_cli: RunCli, gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    small, large = tmp_path / "notes.txt", tmp_path / "large.bin"
    small.write_bytes(b"hello, world\n")
    large.write_bytes(os.urandom(2 * 2**20 + 3))
    first = run_cli("cp", "--json", str(small), f"gs://{gcs_bucket}/docs/")
    assert first.returncode == 0, first.stderr
    assert gcs_server.object_bytes(gcs_bucket, "docs/notes.txt") == small.read_bytes()
    assert json.loads(first.stdout)["method"] == "multipart"

    second = run_cli(
        "cp",
        "--json",
        "--chunk-size",
        "256KiB",
        "--content-type",
        "application/x-test",
        str(large),
        f"gs://{gcs_bucket}/large copy.bin",
    )
    assert second.returncode == 0, second.stderr
    assert gcs_server.object_bytes(gcs_bucket, "large copy.bin") == large.read_bytes()
    summary = json.loads(second.stdout)
    assert summary["method"] == "pipelined"
    assert summary["verified"] is True
    assert summary["crc32c"] == _crc_b64(large.read_bytes())
    assert summary["destination"] == f"gs://{gcs_bucket}/large copy.bin"


def test_upload_guesses_content_type(
    run_cli: RunCli, gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    import requests

    page = tmp_path / "index.html"
    page.write_text("<p>hi</p>")
    result = run_cli("cp", str(page), f"gs://{gcs_bucket}/index.html")
    assert result.returncode == 0, result.stderr
    meta = requests.get(
        f"{gcs_server.endpoint}/storage/v1/b/{gcs_bucket}/o/index.html", timeout=10
    ).json()
    assert meta["contentType"] == "text/html"


@pytest.mark.parametrize("name", [*TRICKY, "a/b/c d", "percent%2Fslash"])
def test_tricky_names_round_trip(
    run_cli: RunCli, gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path, name: str
) -> None:
    source = tmp_path / "source"
    source.write_bytes(name.encode() * 100)
    up = run_cli("cp", str(source), f"gs://{gcs_bucket}/{name}")
    assert up.returncode == 0, up.stderr
    assert gcs_server.object_bytes(gcs_bucket, name) == source.read_bytes()
    back = tmp_path / "back"
    down = run_cli("cp", f"gs://{gcs_bucket}/{name}", str(back))
    assert down.returncode == 0, down.stderr
    assert back.read_bytes() == source.read_bytes()


def test_missing_object_exit_1_names_it(
    run_cli: RunCli, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    target = tmp_path / "never.bin"
    result = run_cli("cp", "--json", f"gs://{gcs_bucket}/no such thing", str(target))
    assert result.returncode == 1
    assert f"gs://{gcs_bucket}/no such thing" in result.stderr
    assert "not found" in result.stderr
    assert json.loads(result.stdout)["status"] == "error"
    assert list(tmp_path.iterdir()) == []


def test_missing_local_file_exit_1(
    run_cli: RunCli, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    missing = tmp_path / "ghost.txt"
    result = run_cli("cp", str(missing), f"gs://{gcs_bucket}/x")
    assert result.returncode == 1
    assert str(missing) in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["cp"],
        ["cp", "a", "b"],
        ["cp", "gs://b/x"],
        ["cp", "-I"],
        ["cp", "-I", "a", "gs://b/c"],
        ["cp", "-n", "--if-generation-match", "0", "a", "gs://b/c"],
        ["cp", "--chunk-size", "1000", "a", "gs://b/c"],
        ["cp", "--checksum", "sha1", "a", "gs://b/c"],
        ["cp", "--if-generation-match", "-1", "a", "gs://b/c"],
        ["cp", "--processes", "0", "a", "gs://b/c"],
        ["cp", "gs://", "x"],
        ["cp", "gs://b/dir/", "x"],
        ["cp", "--header", "no colon", "a", "gs://b/c"],
        ["frobnicate"],
        ["demo", "--size", "lots"],
    ],
)
def test_bad_arguments_exit_2(run_cli: RunCli, tmp_path: pathlib.Path, args: list[str]) -> None:
    result = run_cli(*args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "usage:" in result.stderr


def test_directory_without_recursive_is_usage_error(
    run_cli: RunCli, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    result = run_cli("cp", str(tmp_path), f"gs://{gcs_bucket}/x")
    assert result.returncode == 2
    assert "-r" in result.stderr


def test_if_generation_match(
    run_cli: RunCli, gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    source = tmp_path / "v2"
    source.write_bytes(b"version two")
    resource = gcs_server.put_object(gcs_bucket, "obj", b"version one")
    refused = run_cli("cp", "--if-generation-match", "0", str(source), f"gs://{gcs_bucket}/obj")
    assert refused.returncode == 1
    assert f"gs://{gcs_bucket}/obj" in refused.stderr and "412" in refused.stderr
    assert gcs_server.object_bytes(gcs_bucket, "obj") == b"version one"
    generation = str(resource["generation"])
    ok = run_cli("cp", "--if-generation-match", generation, str(source), f"gs://{gcs_bucket}/obj")
    assert ok.returncode == 0, ok.stderr
    assert gcs_server.object_bytes(gcs_bucket, "obj") == b"version two"


def test_corrupted_download_leaves_no_file(
    run_cli: RunCli, gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    gcs_server.put_object(gcs_bucket, "fragile", os.urandom(50_000))
    target = tmp_path / "fragile"
    result = run_cli(
        "cp",
        "--header",
        "x-goog-emulator-instructions: return-corrupted-data",
        f"gs://{gcs_bucket}/fragile",
        str(target),
    )
    assert result.returncode == 1
    assert f"gs://{gcs_bucket}/fragile" in result.stderr
    assert "corrupt" in result.stderr.lower() or "mismatch" in result.stderr.lower()
    assert list(tmp_path.iterdir()) == []


def test_extra_headers_from_environment_reach_the_server(
    run_cli: RunCli, gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    data = os.urandom(20_000)
    gcs_server.put_object(gcs_bucket, "flaky", data)
    test_id = gcs_server.create_retry_test({"storage.objects.get": ["return-503", "return-503"]})
    env = {"RESUMABLE_MEDIA_EXTRA_HEADERS": json.dumps({"x-retry-test-id": test_id})}
    result = run_cli("cp", f"gs://{gcs_bucket}/flaky", str(tmp_path / "flaky"), env=env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "flaky").read_bytes() == data
    assert gcs_server.retry_test(test_id)["completed"] is True


def test_default_endpoint_without_credentials_fails_clearly(tmp_path: pathlib.Path) -> None:
    env = cli_env({"HOME": str(tmp_path), "CLOUDSDK_CONFIG": str(tmp_path), "NO_GCE_CHECK": "True"})
    env.pop("GOOGLE_APPLICATION_CREDENTIALS", None)
    result = subprocess.run(
        command("cp", "gs://some-bucket/object", str(tmp_path / "x")),
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "gs://some-bucket/object" in result.stderr
    assert "credentials" in result.stderr and "--endpoint" in result.stderr
    assert not (tmp_path / "x").exists()
