"""A shaped network for the loopback server: round trips and per-stream limits like GCS's.

On loopback every byte is free and every round trip takes microseconds, so concurrency -- the
main way a client hides latency and per-stream limits on a real link -- cannot show. A
``NetworkProfile`` simulates the link: a latency added before each response's first byte (the
round trip a request pays), a per-connection rate cap (GCS serves roughly 50-200 MB/s per
stream) and a total rate cap (the host's NIC), each applied to response and request bodies in
each direction separately.

Invariants: the caps are token buckets in GCRA form (a theoretical arrival time per bucket,
with ``BURST_S`` of credit), so sleeping too long never lowers the long-run rate and the rate a
stream sees converges on its cap; a bucket's lock is held only to book time, never while
sleeping; with no profile the server does none of this (``Link`` objects are never created).
"""

from __future__ import annotations

import dataclasses
import threading
import time

BURST_S = 0.01
"""Credit a bucket may accumulate: scheduling slips up to this long are made up later."""
MIN_PIECE = 64 << 10
MAX_PIECE = 4 << 20
PIECE_S = 0.005


@dataclasses.dataclass(frozen=True)
class NetworkProfile:
    """A simulated link.

    Args:
        latency_s: Added before the first byte of every response.
        connection_bytes_per_s: Cap per connection and direction (None: no cap).
        total_bytes_per_s: Cap over all connections, per direction (None: no cap).
    """

    latency_s: float = 0.0
    connection_bytes_per_s: float | None = None
    total_bytes_per_s: float | None = None

    @classmethod
    def named(cls, name: str) -> NetworkProfile:
        """The preset called ``name`` (``lan``, ``region`` or ``wan``).

        Raises:
            ValueError: no such preset.
        """
        try:
            return PRESETS[name]
        except KeyError:
            raise ValueError(
                f"unknown network profile {name!r}; choose one of {', '.join(PRESETS)}"
            ) from None


PRESETS = {
    "lan": NetworkProfile(0.0002),
    "region": NetworkProfile(0.002, 200e6, 1.5e9),
    "wan": NetworkProfile(0.030, 50e6, 1e9),
}


class TokenBucket:
    """A byte-rate cap shared by whoever holds it (thread-safe)."""

    def __init__(self, bytes_per_s: float) -> None:
        if bytes_per_s <= 0:
            raise ValueError("a rate cap must be positive")
        self.bytes_per_s = bytes_per_s
        self._due = 0.0
        self._lock = threading.Lock()

    def delay(self, count: int) -> float:
        """Book ``count`` bytes; returns how long to wait before sending them."""
        with self._lock:
            now = time.monotonic()
            self._due = max(self._due, now - BURST_S) + count / self.bytes_per_s
            return max(0.0, self._due - now)


class Network:
    """A profile in force on one server: its shared total buckets, one per direction."""

    def __init__(self, profile: NetworkProfile) -> None:
        self.profile = profile
        total = profile.total_bytes_per_s
        self._send_total = TokenBucket(total) if total else None
        self._recv_total = TokenBucket(total) if total else None

    def connect(self) -> Link:
        """The link of a new connection (its own per-connection buckets)."""
        per = self.profile.connection_bytes_per_s
        return Link(
            self.profile.latency_s,
            [b for b in (TokenBucket(per) if per else None, self._send_total) if b],
            [b for b in (TokenBucket(per) if per else None, self._recv_total) if b],
        )


class Link:
    """One connection's view of the network: when its bytes may go out or come in."""

    def __init__(
        self, latency_s: float, send: list[TokenBucket], receive: list[TokenBucket]
    ) -> None:
        self.latency_s = latency_s
        self._send = send
        self._receive = receive
        rates = [b.bytes_per_s for b in send]
        slowest = min(rates) if rates else None
        self.piece = (
            MAX_PIECE if slowest is None else max(MIN_PIECE, min(MAX_PIECE, int(slowest * PIECE_S)))
        )
        """How many bytes to send per paced step (about ``PIECE_S`` at the slowest cap)."""

    def first_byte(self) -> None:
        """Wait out the round trip before a response starts."""
        if self.latency_s:
            time.sleep(self.latency_s)

    def sending(self, count: int) -> None:
        """Wait until ``count`` more bytes may be sent."""
        for bucket in self._send:
            wait = bucket.delay(count)
            if wait:
                time.sleep(wait)

    def received(self, count: int) -> None:
        """Account for ``count`` bytes just received (waits when over a cap)."""
        for bucket in self._receive:
            wait = bucket.delay(count)
            if wait:
                time.sleep(wait)
