"""google-resumable-media's transfer classes, bound to any requests-compatible transport.

Invariants: each class is a transport-free protocol object from
``resumable_media._protocol`` plus the I/O methods that send its requests and
retry them; nothing here decides protocol state itself.
"""

from __future__ import annotations

__all__: list[str] = []
