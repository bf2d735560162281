"""Loopback GCS-compatible server for tests, demos and benchmarks, with fault injection.

Invariants: this package imports nothing from the client side of ``resumable_media`` (it is the
referee): hashes come from google-crc32c and hashlib directly.
"""

from __future__ import annotations

from .exchange import RequestRecord
from .network import PRESETS, NetworkProfile
from .server import GCSServer, PortInUseError, serve

__all__ = ["PRESETS", "GCSServer", "NetworkProfile", "PortInUseError", "RequestRecord", "serve"]
