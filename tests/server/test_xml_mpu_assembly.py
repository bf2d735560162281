"""How the server assembles XML multipart uploads: in place when it can, copied otherwise.

Every scenario checks the published bytes, the object's CRC32C (derived by the server from
the parts' own CRCs) and that no part or assembly file is left in the server's temp dir.
"""

from __future__ import annotations

import base64
import logging
import os
import random
import re
import threading
import time

import google_crc32c
import pytest
import requests

from resumable_media.testing import GCSServer
from resumable_media.testing.xmlapi import crc32c_concat

STRIDE = 256 * 1024


def _b64crc(data: bytes) -> str:
    return base64.b64encode(google_crc32c.value(data).to_bytes(4, "big")).decode()


def _start(server: GCSServer, bucket: str, name: str) -> tuple[str, str]:
    url = f"{server.endpoint}/{bucket}/{name}"
    resp = requests.post(url + "?uploads", timeout=10)
    assert resp.status_code == 200
    match = re.search(r"<UploadId>([^<]+)</UploadId>", resp.text)
    assert match
    return url, match[1]


def _put(url: str, upload_id: str, number: int, data: bytes, **headers: str) -> requests.Response:
    return requests.put(
        f"{url}?partNumber={number}&uploadId={upload_id}", data=data, headers=headers, timeout=10
    )


def _complete(url: str, upload_id: str, etags: dict[int, str]) -> requests.Response:
    inner = "".join(
        f"<Part><PartNumber>{n}</PartNumber><ETag>{etags[n]}</ETag></Part>" for n in sorted(etags)
    )
    body = f"<CompleteMultipartUpload>{inner}</CompleteMultipartUpload>".encode()
    return requests.post(f"{url}?uploadId={upload_id}", data=body, timeout=30)


def _temp_files(server: GCSServer) -> set[str]:
    return set(os.listdir(server._state.store.tmp_dir))


@pytest.fixture
def temp_before(gcs_server: GCSServer) -> set[str]:
    """The server's temp files before the test (the server is shared with other tests)."""
    return _temp_files(gcs_server)


def _check(server: GCSServer, bucket: str, name: str, whole: bytes, before: set[str]) -> None:
    assert server.object_bytes(bucket, name) == whole
    got = requests.head(f"{server.endpoint}/{bucket}/{name}", timeout=10)
    assert got.headers["x-goog-hash"] == f"crc32c={_b64crc(whole)}"
    assert _temp_files(server) - before == set()


# (part sizes, upload order, assembled in place?) -- order lists part numbers (1-based).
SCENARIOS = {
    "in-order-last-smaller": ([STRIDE, STRIDE, STRIDE, 1000], [1, 2, 3, 4], True),
    "reversed-equal": ([STRIDE] * 4, [4, 3, 2, 1], True),
    "last-part-arrives-first": ([STRIDE, STRIDE, 777], [3, 1, 2], False),
    "middle-part-short": ([STRIDE, 5000, STRIDE], [1, 2, 3], False),
    "larger-than-first": ([STRIDE, 2 * STRIDE, 10], [1, 2, 3], False),
    "single-part": ([12345], [1], True),
    "empty-last-part": ([STRIDE, 0], [1, 2], False),
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_assembly_scenarios(
    gcs_server: GCSServer,
    gcs_bucket: str,
    scenario: str,
    caplog: pytest.LogCaptureFixture,
    temp_before: set[str],
) -> None:
    caplog.set_level(logging.DEBUG, logger="resumable_media.testing.xmlapi")
    sizes, order, in_place = SCENARIOS[scenario]
    parts = [os.urandom(size) for size in sizes]
    url, upload_id = _start(gcs_server, gcs_bucket, scenario)
    etags = {}
    for number in order:
        resp = _put(url, upload_id, number, parts[number - 1])
        assert resp.status_code == 200, resp.text
        etags[number] = resp.headers["ETag"]
    done = _complete(url, upload_id, etags)
    assert done.status_code == 200, done.text
    _check(gcs_server, gcs_bucket, scenario, b"".join(parts), temp_before)
    how = "already in place" if in_place else "copying"
    assert any(how in record.getMessage() for record in caplog.records), caplog.text


def test_reuploaded_part_wins_and_a_failed_attempt_changes_nothing(
    gcs_server: GCSServer, gcs_bucket: str, temp_before: set[str]
) -> None:
    first, second, third = os.urandom(STRIDE), os.urandom(STRIDE), os.urandom(99)
    url, upload_id = _start(gcs_server, gcs_bucket, "reupload")
    etags = {1: _put(url, upload_id, 1, first).headers["ETag"]}
    # Part 2 fails its hash check while being written in place; the retry succeeds.
    bad = _put(url, upload_id, 2, second, **{"x-goog-hash": f"crc32c={_b64crc(b'x')}"})
    assert bad.status_code == 400
    etags[2] = _put(url, upload_id, 2, second).headers["ETag"]
    etags[3] = _put(url, upload_id, 3, os.urandom(99)).headers["ETag"]
    # Part 1 and part 3 are uploaded again with other bytes: the latest ones count.
    first = os.urandom(STRIDE)
    etags[1] = _put(url, upload_id, 1, first).headers["ETag"]
    etags[3] = _put(url, upload_id, 3, third).headers["ETag"]
    # A failed re-upload of part 2 must not damage the part 2 already stored.
    broken = _put(url, upload_id, 2, os.urandom(STRIDE), **{"x-goog-hash": "crc32c=AAAAAA=="})
    assert broken.status_code == 400
    assert _complete(url, upload_id, etags).status_code == 200
    _check(gcs_server, gcs_bucket, "reupload", first + second + third, temp_before)


@pytest.mark.parametrize(("listed", "name"), [((1, 2), "prefix"), ((1, 3), "gap")])
def test_completing_a_subset_of_the_parts(
    gcs_server: GCSServer,
    gcs_bucket: str,
    temp_before: set[str],
    listed: tuple[int, ...],
    name: str,
) -> None:
    parts = [os.urandom(STRIDE) for _ in range(3)]
    url, upload_id = _start(gcs_server, gcs_bucket, name)
    etags = {n: _put(url, upload_id, n, parts[n - 1]).headers["ETag"] for n in (1, 2, 3)}
    chosen = {n: etags[n] for n in listed}
    assert _complete(url, upload_id, chosen).status_code == 200
    _check(gcs_server, gcs_bucket, name, b"".join(parts[n - 1] for n in listed), temp_before)


def test_abort_leaves_no_files(
    gcs_server: GCSServer, gcs_bucket: str, temp_before: set[str]
) -> None:
    url, upload_id = _start(gcs_server, gcs_bucket, "aborted")
    for number in (1, 2, 3):
        assert _put(url, upload_id, number, os.urandom(STRIDE)).status_code == 200
    assert _put(url, upload_id, 2, os.urandom(STRIDE)).status_code == 200  # a file of its own
    assert requests.delete(f"{url}?uploadId={upload_id}", timeout=10).status_code == 204
    assert _temp_files(gcs_server) - temp_before == set()
    assert not gcs_server.has_object(gcs_bucket, "aborted")


@pytest.mark.parametrize("seed", range(20))
def test_crc32c_concat_matches_hashing_the_concatenation(seed: int) -> None:
    rng = random.Random(seed)
    zeros: dict[int, int] = {}
    pieces = [rng.randbytes(rng.choice([0, 1, 7, 4096, (1 << 20) + 3])) for _ in range(4)]
    crc = 0
    for piece in pieces:
        crc = crc32c_concat(crc, google_crc32c.value(piece), len(piece), zeros)
    assert crc == google_crc32c.value(b"".join(pieces))


@pytest.mark.parametrize("ending", ["abort", "complete"])
def test_a_part_still_arriving_when_the_upload_ends_is_refused_and_not_kept(
    gcs_server: GCSServer, gcs_bucket: str, temp_before: set[str], ending: str
) -> None:
    url, upload_id = _start(gcs_server, gcs_bucket, f"late-{ending}")
    first = os.urandom(STRIDE)
    etag = _put(url, upload_id, 1, first).headers["ETag"]
    release = threading.Event()

    def slow_body():
        yield os.urandom(1000)
        release.wait(10)
        yield os.urandom(1000)

    late: list[requests.Response] = []
    sender = threading.Thread(
        target=lambda: late.append(
            requests.put(f"{url}?partNumber=2&uploadId={upload_id}", data=slow_body(), timeout=30)
        )
    )
    sender.start()
    time.sleep(0.3)  # part 2 is now half-received by the server
    if ending == "abort":
        assert requests.delete(f"{url}?uploadId={upload_id}", timeout=10).status_code == 204
    else:
        assert _complete(url, upload_id, {1: etag}).status_code == 200
    release.set()
    sender.join(30)
    assert late and late[0].status_code == 404 and "NoSuchUpload" in late[0].text
    assert _temp_files(gcs_server) - temp_before == set()
    if ending == "complete":
        assert gcs_server.object_bytes(gcs_bucket, f"late-{ending}") == first
