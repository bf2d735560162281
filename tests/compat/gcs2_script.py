"""Run inside a venv holding google-cloud-storage 2.19 and resumable-media, but not
google-resumable-media: every transfer google-cloud-storage makes goes through ours.

Usage: python gcs2_script.py BUCKET WORKDIR RETRY_TEST_ID  (STORAGE_EMULATOR_HOST names the
server; the Retry Test corrupts one download).
Prints one line per check; exits non-zero on the first failure.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys

assert importlib.util.find_spec("google.resumable_media") is None, (
    "google-resumable-media is installed in this venv; the test needs it absent"
)

from resumable_media import compat  # noqa: E402

compat.install()

import google.resumable_media  # noqa: E402
import google.resumable_media.requests as grm_requests  # noqa: E402
from google.auth.credentials import AnonymousCredentials  # noqa: E402
from google.cloud import storage  # noqa: E402
from google.cloud.storage import transfer_manager  # noqa: E402

import resumable_media  # noqa: E402

assert grm_requests.Download.__module__ == "resumable_media.requests.download"
assert sys.modules["google.resumable_media"] is resumable_media
assert storage.__version__ == "2.19.0", storage.__version__

import resumable_media.requests  # noqa: E402

bucket_name, workdir, corrupt_test = sys.argv[1], sys.argv[2], sys.argv[3]
client = storage.Client(project="compat", credentials=AnonymousCredentials())
bucket = client.bucket(bucket_name)
small = os.urandom(300 * 1024 + 7)
large = os.urandom(3 * 1024 * 1024 + 12345)


def check(name: str, ok: bool) -> None:
    print(f"{'ok' if ok else 'FAIL'} {name}", flush=True)
    if not ok:
        sys.exit(1)


# google-cloud-storage bound our classes at import time.
blob_module = sys.modules["google.cloud.storage.blob"]
tm_module = sys.modules["google.cloud.storage.transfer_manager"]
check(
    "google-cloud-storage uses resumable_media's classes",
    blob_module.Download is resumable_media.requests.Download
    and blob_module.ResumableUpload is resumable_media.requests.ResumableUpload
    and blob_module.RawChunkedDownload is resumable_media.requests.RawChunkedDownload
    and tm_module.XMLMPUPart is resumable_media.requests.XMLMPUPart
    and blob_module.resumable_media is resumable_media,
)

# Multipart upload (no chunk_size, small object) with each checksum.
for checksum in ("md5", "crc32c"):
    blob = bucket.blob(f"multipart-{checksum}.bin")
    blob.upload_from_string(small, checksum=checksum)
    check(f"multipart upload ({checksum})", blob.size == len(small))

# Resumable upload: chunk_size set, the object larger than one chunk.
blob = bucket.blob("resumable.bin", chunk_size=1024 * 1024)
path = os.path.join(workdir, "large.bin")
with open(path, "wb") as f:
    f.write(large)
blob.upload_from_filename(path, checksum="crc32c")
check("resumable upload (crc32c)", blob.size == len(large))

# Downloads: whole, ranged, each checksum, chunked (blob.chunk_size set).
whole = bucket.blob("resumable.bin").download_as_bytes()
check("whole download", whole == large)
for checksum in ("md5", "crc32c"):
    got = bucket.blob("resumable.bin").download_as_bytes(checksum=checksum)
    check(f"download with checksum={checksum}", got == large)
ranged = bucket.blob("resumable.bin").download_as_bytes(start=1000, end=200_000)
check("ranged download", ranged == large[1000:200_001])
raw = bucket.blob("multipart-md5.bin").download_as_bytes(raw_download=True)
check("raw download", raw == small)
chunked = bucket.blob("resumable.bin", chunk_size=256 * 1024)
out = os.path.join(workdir, "chunked.bin")
chunked.download_to_filename(out)
with open(out, "rb") as chunked_file:
    check("chunked download", chunked_file.read() == large)

# blob.open: write (BlobWriter: resumable, chunk by chunk) and read (ranged reads).
with bucket.blob("opened.bin").open("wb", chunk_size=256 * 1024) as writer:
    for offset in range(0, len(large), 100_000):
        writer.write(large[offset : offset + 100_000])
with bucket.blob("opened.bin").open("rb", chunk_size=256 * 1024) as reader:
    first = reader.read(5000)
    reader.seek(2_000_000)
    rest = reader.read()
check(
    "blob.open write and read",
    first == large[:5000] and rest == large[2_000_000:],
)
digest = hashlib.md5(bucket.blob("opened.bin").download_as_bytes()).hexdigest()
check("blob.open round trip", digest == hashlib.md5(large).hexdigest())

# XML multipart upload through transfer_manager (XMLMPUContainer / XMLMPUPart).
transfer_manager.upload_chunks_concurrently(
    path,
    bucket.blob("xml-mpu.bin"),
    chunk_size=1024 * 1024,
    worker_type=transfer_manager.THREAD,
    max_workers=2,
)
check("XML multipart upload", bucket.blob("xml-mpu.bin").download_as_bytes() == large)

# A corrupted download raises DataCorruption (ours, under its upstream name), and
# google-cloud-storage removes the partial file as it does with upstream.
corrupt_client = storage.Client(
    project="compat",
    credentials=AnonymousCredentials(),
    extra_headers={"x-retry-test-id": corrupt_test},
)
target = os.path.join(workdir, "corrupt.bin")
try:
    corrupt_client.bucket(bucket_name).blob("resumable.bin").download_to_filename(target)
except google.resumable_media.DataCorruption as exc:
    check(
        "corrupted download raises DataCorruption",
        # At run time google.resumable_media is ours (compat.install), which mypy cannot know.
        type(exc) is resumable_media.DataCorruption  # type: ignore[comparison-overlap]
        and not os.path.exists(target),  # type: ignore[unreachable]
    )
else:
    check("corrupted download raises DataCorruption", False)

print("done", flush=True)
