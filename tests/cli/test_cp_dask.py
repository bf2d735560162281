"""``cp -r --dask ADDRESS`` on a real ``distributed.LocalCluster`` (worker processes, loopback):
the bulk engine's Dask executor copies a tree both ways and gs->gs exactly, with gsutil's
naming, one ``--json`` line and one manifest line per object, and failures named."""

from __future__ import annotations

import json
import os
import pathlib
from collections.abc import Iterator
from typing import Any

import pytest
from cli_helpers import RunCli

from resumable_media import bulk
from resumable_media.testing import GCSServer
from support.cluster import bucket_objects, local_cluster, write_tree

distributed = pytest.importorskip("distributed", reason="the [dask] extra is not installed")


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    with local_cluster() as cluster:
        yield str(cluster.scheduler_address)


def _lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_cp_r_dask_up_down_and_rewrite(
    run_cli: RunCli,
    scheduler: str,
    gcs_server: GCSServer,
    gcs_bucket: str,
    tmp_path: pathlib.Path,
) -> None:
    files = write_tree(tmp_path / "js", 30)
    manifest = tmp_path / "m.jsonl"
    up = run_cli(
        "cp", "-r", "-q", "--json", "--dask", scheduler, "--manifest", str(manifest),
        str(tmp_path / "js"), f"gs://{gcs_bucket}/",
        timeout=180,
    )  # fmt: skip
    assert up.returncode == 0, up.stderr
    # gsutil naming: the directory keeps its name under the bucket.
    assert bucket_objects(gcs_server, gcs_bucket, "js/") == files
    lines = _lines(up.stdout)
    assert len(lines) == 30 and all(line["status"] == "ok" for line in lines)
    records = _lines(manifest.read_text())
    assert sorted(r["destination"] for r in records) == sorted(
        f"gs://{gcs_bucket}/js/{name}" for name in files
    )
    assert all(r["status"] == "copied" and r["crc32c"] and r["generation"] for r in records)

    down = tmp_path / "down"
    down.mkdir()
    got = run_cli("cp", "-r", "-q", "--dask", scheduler, f"gs://{gcs_bucket}/js", str(down))
    assert got.returncode == 0, got.stderr
    copied = {
        p.relative_to(down / "js").as_posix(): p.read_bytes()
        for p in (down / "js").rglob("*")
        if p.is_file()
    }
    assert copied == files
    assert not [p for p in down.rglob("*") if "rm-part" in p.name]

    moved = run_cli(
        "cp", "-r", "-q", "--dask", scheduler, f"gs://{gcs_bucket}/js", f"gs://{gcs_bucket}/copy/"
    )
    assert moved.returncode == 0, moved.stderr
    assert bucket_objects(gcs_server, gcs_bucket, "copy/js/") == files


def test_cp_r_dask_names_a_failure(
    run_cli: RunCli, scheduler: str, gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    gcs_server.put_object(gcs_bucket, "bad/ok.txt", b"fine")
    gcs_server.put_object(gcs_bucket, "bad/f", b"a file here")
    down = tmp_path / "down"
    (down / "bad" / "f").mkdir(parents=True)  # a directory where the object's file goes
    proc = run_cli("cp", "-r", "-q", "--dask", scheduler, f"gs://{gcs_bucket}/bad", str(down))
    assert proc.returncode == 1
    assert (down / "bad" / "ok.txt").read_bytes() == b"fine"
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(down / "bad" / "f") in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_cp_r_dask_no_clobber_preserve_and_content_type(
    run_cli: RunCli, scheduler: str, gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    files = write_tree(tmp_path / "n", 6)
    old = 1_500_000_000
    for name in files:
        os.utime(tmp_path / "n" / name, (old, old))
    kept = "d0/f000"
    gcs_server.put_object(gcs_bucket, f"n/{kept}", b"already there")
    up = run_cli(
        "cp", "-r", "-q", "--json", "-n", "-P", "--content-type", "text/x-test",
        "--dask", scheduler, str(tmp_path / "n"), f"gs://{gcs_bucket}/",
        timeout=180,
    )  # fmt: skip
    assert up.returncode == 0, up.stderr
    statuses = {line["destination"]: line["status"] for line in _lines(up.stdout)}
    assert statuses[f"gs://{gcs_bucket}/n/{kept}"] == "skipped"
    assert sorted(statuses.values()).count("ok") == len(files) - 1
    stored = bucket_objects(gcs_server, gcs_bucket, "n/")
    assert stored == {**files, kept: b"already there"}  # -n left it alone
    storage = bulk.connect(gcs_server.endpoint)
    for item in storage.iter_objects(gcs_bucket, "n/d1/"):
        assert item["contentType"] == "text/x-test"
        assert item["metadata"]["goog-reserved-file-mtime"] == str(old)

    down = tmp_path / "down"
    (down / "n" / "d0").mkdir(parents=True)
    (down / "n" / "d0" / "f000").write_bytes(b"local, keep me")
    got = run_cli(
        "cp", "-r", "-q", "-n", "-P", "--dask", scheduler, f"gs://{gcs_bucket}/n", str(down)
    )
    assert got.returncode == 0, got.stderr
    assert (down / "n" / "d0" / "f000").read_bytes() == b"local, keep me"
    for name in files:
        if name != kept:
            assert (down / "n" / name).read_bytes() == files[name]
            assert int((down / "n" / name).stat().st_mtime) == old  # -P restored it
