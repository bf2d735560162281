"""google-resumable-media's transfer classes, bound to any requests-compatible transport.

A transport is any object with ``request(method, url, data=, headers=, timeout=,
[stream=])`` returning a ``requests.Response``-like object: a ``requests.Session``
or a ``google.auth.transport.requests.AuthorizedSession``.

Beyond google-resumable-media 2.11 every class takes a ``retry=`` keyword (a
:class:`~resumable_media.RetryStrategy`, or None for one attempt; the private
``_retry_strategy`` attribute stays settable), every call takes ``timeout=``
(``recover()`` included), ``checksum="auto"`` is accepted, and
``ResumableUpload(..., auto_recover=True)`` resynchronises with the server on
retryable chunk failures (``ResumableUpload.transmit`` sends every chunk).

Invariants: each class is a transport-free protocol object from
``resumable_media._protocol`` plus the I/O methods that send its requests and
retry them; nothing here decides protocol state itself.
"""

from __future__ import annotations

from resumable_media.requests.download import (
    ChunkedDownload,
    Download,
    RawChunkedDownload,
    RawDownload,
)
from resumable_media.requests.upload import MultipartUpload, ResumableUpload, SimpleUpload
from resumable_media.requests.xml_mpu import XMLMPUContainer, XMLMPUPart

__all__ = [
    "ChunkedDownload",
    "Download",
    "MultipartUpload",
    "RawChunkedDownload",
    "RawDownload",
    "ResumableUpload",
    "SimpleUpload",
    "XMLMPUContainer",
    "XMLMPUPart",
]
