"""gcsfs (fsspec's GCS filesystem, aiohttp over the JSON API) against the loopback server.

Small writes are multipart uploads with LF-only line endings; the 40 MiB write is a resumable
upload. ``gcsfs.core.GCSFileSystem`` is used directly: the package's default class first asks
the Storage Control gRPC API for the bucket type, which an HTTP endpoint cannot answer.
"""

from __future__ import annotations

import pathlib

import pytest
from gcsfs.core import GCSFileSystem  # type: ignore[import-untyped]

from resumable_media.testing import GCSServer

# aiohttp warns about every large bytes body gcsfs sends; that is gcsfs's business.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Sending a large body directly with raw bytes:ResourceWarning"
)


def test_gcsfs_put_get_list(
    gcs_server: GCSServer,
    gcs_bucket: str,
    payloads: dict[str, bytes],
    tmp_path: pathlib.Path,
) -> None:
    fs = GCSFileSystem(endpoint_url=gcs_server.endpoint, token="anon", skip_instance_cache=True)
    fs.pipe(f"{gcs_bucket}/gf/small.bin", payloads["small.bin"])
    with fs.open(f"{gcs_bucket}/gf/large.bin", "wb") as f:
        f.write(payloads["large.bin"])
    for name, data in payloads.items():
        assert gcs_server.object_bytes(gcs_bucket, f"gf/{name}") == data
    fs.invalidate_cache()
    assert sorted(fs.ls(f"{gcs_bucket}/gf", detail=False)) == [
        f"{gcs_bucket}/gf/large.bin",
        f"{gcs_bucket}/gf/small.bin",
    ]
    assert fs.info(f"{gcs_bucket}/gf/large.bin")["size"] == len(payloads["large.bin"])
    assert fs.cat(f"{gcs_bucket}/gf/small.bin") == payloads["small.bin"]
    fs.get(f"{gcs_bucket}/gf/large.bin", str(tmp_path / "large.out"))
    assert (tmp_path / "large.out").read_bytes() == payloads["large.bin"]
