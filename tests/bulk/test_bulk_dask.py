"""Sync on a real ``distributed.LocalCluster`` (two worker processes, two threads each):
exact, survives a worker killed with SIGKILL mid-run, and the manifest has every object once."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from resumable_media import bulk
from resumable_media.testing import GCSServer
from support.cluster import bucket_objects, local_cluster, write_tree

distributed = pytest.importorskip("distributed", reason="the [dask] extra is not installed")


@pytest.fixture(scope="module")
def dask_client() -> Iterator[Any]:
    with local_cluster() as cluster, distributed.Client(cluster) as client:
        yield client


def _ledger(path: pathlib.Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_dask_sync_is_exact_and_manifest_complete(
    dask_client: Any, gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    files = write_tree(tmp_path / "src", 60)
    storage = bulk.connect(gcs_server.endpoint)
    plan = bulk.Plan(str(tmp_path / "src"), f"gs://{gcs_bucket}/p", storage)
    with bulk.Ledger(tmp_path / "m.jsonl") as ledger:
        summary = bulk.execute(plan, bulk.DaskExecutor(dask_client, shard_size=4), ledger=ledger)
    assert (summary.copied, summary.failed) == (60, 0)
    assert bucket_objects(gcs_server, gcs_bucket, "p/") == files
    records = _ledger(tmp_path / "m.jsonl")
    assert sorted(r["destination"] for r in records) == sorted(
        f"gs://{gcs_bucket}/p/{n}" for n in files
    )
    assert all(r["status"] == "copied" and r["crc32c"] and r["generation"] for r in records)

    down = tmp_path / "down"
    plan = bulk.Plan(f"gs://{gcs_bucket}/p", str(down), storage)
    summary = bulk.execute(plan, bulk.DaskExecutor(dask_client, shard_size=4))
    assert (summary.copied, summary.failed) == (60, 0)
    assert {p.relative_to(down).as_posix(): p.read_bytes() for p in down.rglob("f*")} == files


def test_dask_sync_survives_a_worker_killed_mid_run(
    dask_client: Any, gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    files = write_tree(tmp_path / "src", 160)
    pids: dict[str, int] = dask_client.run(os.getpid)
    victim = sorted(pids.values())[0]
    storage = bulk.connect(gcs_server.endpoint)
    plan = bulk.Plan(str(tmp_path / "src"), f"gs://{gcs_bucket}/k", storage)
    seen: list[bulk.JobResult] = []

    def kill_after_some(result: bulk.JobResult) -> None:
        seen.append(result)
        if len(seen) == 8:
            os.kill(victim, signal.SIGKILL)  # jobs are running on it right now

    with bulk.Ledger(tmp_path / "m.jsonl") as ledger:
        summary = bulk.execute(
            plan,
            bulk.DaskExecutor(dask_client, shard_size=2, window=16),
            ledger=ledger,
            on_result=kill_after_some,
        )
    assert victim not in dask_client.run(os.getpid).values()  # it really died
    assert (summary.copied, summary.failed) == (160, 0), summary.failures
    assert bucket_objects(gcs_server, gcs_bucket, "k/") == files
    records = _ledger(tmp_path / "m.jsonl")
    destinations = [r["destination"] for r in records]
    assert len(destinations) == len(set(destinations)) == 160  # every object exactly once
    assert {r["status"] for r in records} == {"copied"}


def test_cli_sync_with_dask_address(
    dask_client: Any, gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    files = write_tree(tmp_path / "src", 20)
    address = dask_client.scheduler.address
    env = {k: v for k, v in os.environ.items() if k != "STORAGE_EMULATOR_HOST"}
    env["RESUMABLE_MEDIA_STATE_DIR"] = str(tmp_path / "state")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "resumable_media",
            "sync",
            "--endpoint",
            gcs_server.endpoint,
            "--dask",
            address,
            "--json",
            str(tmp_path / "src"),
            f"gs://{gcs_bucket}/cli",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout.splitlines()[-1])
    assert (summary["copied"], summary["failed"]) == (20, 0)
    assert bucket_objects(gcs_server, gcs_bucket, "cli/") == files
