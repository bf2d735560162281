"""resumable_media: fast, verified, resumable Google Cloud Storage media transfers.

Invariants: curated re-exports only (the google-resumable-media 2.11 package surface, and
``SourceChanged`` of the accelerator's uploads); no logic lives here.  ``open`` is
:func:`resumable_media._streams.open_url`, imported on first use (it pulls in the
accelerator, which ``import resumable_media`` should not).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from resumable_media._source import SourceChanged
from resumable_media.common import (
    PERMANENT_REDIRECT,
    TOO_MANY_REQUESTS,
    UPLOAD_CHUNK_SIZE,
    DataCorruption,
    InvalidResponse,
    RetryStrategy,
)

__version__ = "0.1.0"

if TYPE_CHECKING:
    from resumable_media._streams import open_url as open


def __getattr__(name: str) -> Any:
    if name == "open":
        from resumable_media._streams import open_url

        return open_url
    raise AttributeError(f"module 'resumable_media' has no attribute {name!r}")


__all__ = [
    "PERMANENT_REDIRECT",
    "TOO_MANY_REQUESTS",
    "UPLOAD_CHUNK_SIZE",
    "DataCorruption",
    "InvalidResponse",
    "RetryStrategy",
    "SourceChanged",
    "__version__",
    "open",
]
