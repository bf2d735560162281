"""Run one ParallelDownload in a child process so a test can kill -9 it mid-transfer.

Usage: python _parallel_crash_helper.py MEDIA_URL DEST CHUNK_SIZE RETRY_TEST_ID PROCESSES
"""

from __future__ import annotations

import sys

from resumable_media import transports
from resumable_media.parallel import ParallelDownload


def main() -> None:
    url, dest, chunk_size, test_id, processes = sys.argv[1:6]
    download = ParallelDownload(
        url,
        dest,
        chunk_size=int(chunk_size),
        headers={"x-retry-test-id": test_id},
        processes=int(processes),
    )
    download.consume(transports.anonymous())


if __name__ == "__main__":
    main()
