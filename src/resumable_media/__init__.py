"""resumable_media: fast, verified, resumable Google Cloud Storage media transfers."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
