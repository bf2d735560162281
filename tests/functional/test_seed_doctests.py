"""The seed document's examples (``seed_examples.txt``) as doctests on the loopback server."""

from __future__ import annotations

import doctest
import io
from pathlib import Path
from typing import Any

import resumable_media

EXAMPLES = Path(__file__).with_name("seed_examples.txt")


def _object_data() -> bytes:
    head = b"The beginning of the chunk..."
    filler = bytes(range(256)) * 4096
    return (head + filler)[: 1024 * 1024]


def test_seed_examples(gcs_server: Any, gcs_bucket: str) -> None:
    data = _object_data()
    blob_name = "seed-blob"
    gcs_server.put_object(gcs_bucket, blob_name, data)
    globs = {
        "io": io,
        "resumable_media": resumable_media,
        "endpoint": gcs_server.endpoint,
        "bucket": gcs_bucket,
        "blob_name": blob_name,
        "object_data": data,
        "retry_test_503": gcs_server.create_retry_test({"storage.objects.insert": ["return-503"]}),
        "retry_test_400": gcs_server.create_retry_test({"storage.objects.insert": ["return-400"]}),
    }
    parser = doctest.DocTestParser()
    test = parser.get_doctest(EXAMPLES.read_text(), globs, "seed_examples", str(EXAMPLES), 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    output: list[str] = []
    runner.run(test, out=output.append)
    results = runner.summarize(verbose=False)
    assert results.attempted > 80
    assert results.failed == 0, "".join(output)
