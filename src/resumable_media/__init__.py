"""resumable_media: fast, verified, resumable Google Cloud Storage media transfers.

Invariants: curated re-exports only (the google-resumable-media 2.11 package surface, and
``SourceChanged`` of the accelerator's uploads); no logic lives here.
"""

from __future__ import annotations

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

__all__ = [
    "PERMANENT_REDIRECT",
    "TOO_MANY_REQUESTS",
    "UPLOAD_CHUNK_SIZE",
    "DataCorruption",
    "InvalidResponse",
    "RetryStrategy",
    "SourceChanged",
    "__version__",
]
