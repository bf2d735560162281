"""A real Dask cluster and tree/bucket helpers for the bulk engine's tests."""

from __future__ import annotations

import contextlib
import logging
import pathlib
from collections.abc import Iterator
from typing import Any

from resumable_media import bulk
from resumable_media.testing import GCSServer


@contextlib.contextmanager
def local_cluster(workers: int = 2, threads: int = 2) -> Iterator[Any]:
    """A ``distributed.LocalCluster`` of worker *processes* on loopback, closed afterwards."""
    import distributed

    cluster = distributed.LocalCluster(
        processes=True,
        n_workers=workers,
        threads_per_worker=threads,
        dashboard_address=":0",  # any free port: 8787 may be taken on a shared machine
        silence_logs=logging.CRITICAL,
    )
    try:
        yield cluster
    finally:
        cluster.close()


def write_tree(
    root: pathlib.Path, count: int, *, dirs: int = 3, suffix: str = ""
) -> dict[str, bytes]:
    """Write ``count`` small files of distinct sizes spread over ``dirs`` directories."""
    files = {
        f"d{i % dirs}/f{i:03d}{suffix}": f"object {i} ".encode() * (i % 7 + 1) for i in range(count)
    }
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return files


def bucket_objects(server: GCSServer, bucket: str, prefix: str) -> dict[str, bytes]:
    """``{name without prefix: bytes}`` of the objects under ``prefix``."""
    storage = bulk.connect(server.endpoint)
    return {
        str(item["name"])[len(prefix) :]: server.object_bytes(bucket, str(item["name"]))
        for item in storage.iter_objects(bucket, prefix)
    }
