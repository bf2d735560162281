"""Fault injection: the storage-testbench Retry Test API and ``x-goog-emulator-instructions``.

Invariants: each queued instruction is consumed exactly once, first-in first-out per JSON-API
method name, by the first request carrying ``x-retry-test-id`` to which it applies; an
instruction that does not apply to a request (for example a broken download stream seen by an
upload) stays at the head of its queue. All state is guarded by one lock. Requests without
fault headers never reach this module's lock.
"""

from __future__ import annotations

import dataclasses
import re
import secrets
import threading
from collections.abc import Callable, Mapping
from typing import Any

METHODS = frozenset(
    {
        "storage.bucket_acl.delete",
        "storage.bucket_acl.get",
        "storage.bucket_acl.insert",
        "storage.bucket_acl.list",
        "storage.bucket_acl.patch",
        "storage.bucket_acl.update",
        "storage.buckets.delete",
        "storage.buckets.get",
        "storage.buckets.getIamPolicy",
        "storage.buckets.insert",
        "storage.buckets.list",
        "storage.buckets.lockRetentionPolicy",
        "storage.buckets.patch",
        "storage.buckets.setIamPolicy",
        "storage.buckets.testIamPermissions",
        "storage.buckets.update",
        "storage.default_object_acl.delete",
        "storage.default_object_acl.get",
        "storage.default_object_acl.insert",
        "storage.default_object_acl.list",
        "storage.default_object_acl.patch",
        "storage.default_object_acl.update",
        "storage.hmacKey.create",
        "storage.hmacKey.delete",
        "storage.hmacKey.get",
        "storage.hmacKey.list",
        "storage.hmacKey.update",
        "storage.notifications.delete",
        "storage.notifications.get",
        "storage.notifications.insert",
        "storage.notifications.list",
        "storage.object_acl.delete",
        "storage.object_acl.get",
        "storage.object_acl.insert",
        "storage.object_acl.list",
        "storage.object_acl.patch",
        "storage.object_acl.update",
        "storage.objects.compose",
        "storage.objects.copy",
        "storage.objects.delete",
        "storage.objects.get",
        "storage.objects.insert",
        "storage.objects.list",
        "storage.objects.patch",
        "storage.objects.rewrite",
        "storage.objects.update",
        "storage.serviceaccount.get",
    }
)
"""Every JSON API method this server implements (``jsonapi.api_methods()``, tested equal)."""


@dataclasses.dataclass(frozen=True)
class Fault:
    """A parsed instruction.

    kind is one of ``status`` (answer ``status`` at once), ``reset`` (TCP RST before any
    response), ``status_after`` (uploads: persist ``after_bytes`` then answer ``status``;
    downloads: send ``after_bytes`` then reset), ``broken_stream`` (downloads: send
    ``after_bytes`` of the body then close), ``broken_final`` (final upload chunk: finalize,
    then cut the JSON body to ``after_bytes``), ``stall`` (sleep ``stall_s`` once
    ``after_bytes`` of the body have passed), ``corrupt`` (flip body byte 0).
    """

    kind: str
    text: str
    status: int = 0
    after_bytes: int = 0
    stall_s: float = 0.0

    @property
    def streaming(self) -> bool:
        """True for faults that act on a download body."""
        return self.kind in ("status_after", "broken_stream", "stall", "corrupt")


_PATTERNS: list[tuple[re.Pattern[str], Callable[[re.Match[str], str], Fault]]] = [
    (re.compile(r"return-(\d{3})"), lambda m, t: Fault("status", t, status=int(m[1]))),
    (re.compile(r"return-reset-connection"), lambda m, t: Fault("reset", t)),
    (
        re.compile(r"return-(\d{3})-after-(\d+)K"),
        lambda m, t: Fault("status_after", t, status=int(m[1]), after_bytes=int(m[2]) * 1024),
    ),
    (
        re.compile(r"return-broken-stream-after-(\d+)K"),
        lambda m, t: Fault("broken_stream", t, after_bytes=int(m[1]) * 1024),
    ),
    (re.compile(r"return-broken-stream"), lambda m, t: Fault("broken_stream", t, after_bytes=4)),
    (
        re.compile(r"return-broken-stream-final-chunk-after-(\d+)B"),
        lambda m, t: Fault("broken_final", t, after_bytes=int(m[1])),
    ),
    (
        re.compile(r"stall-for-(\d+(?:\.\d+)?)s-after-(\d+)K"),
        lambda m, t: Fault("stall", t, stall_s=float(m[1]), after_bytes=int(m[2]) * 1024),
    ),
    (re.compile(r"return-corrupted-data"), lambda m, t: Fault("corrupt", t)),
]

# Older per-request header forms (x-goog-emulator-instructions) that the Retry Test API lacks.
_HEADER_ONLY: dict[str, Fault] = {
    "stall-always": Fault("stall", "stall-always", stall_s=10.0, after_bytes=0),
    "stall-at-256KiB": Fault("stall", "stall-at-256KiB", stall_s=10.0, after_bytes=256 * 1024),
    "return-broken-stream": Fault("broken_stream", "return-broken-stream", after_bytes=1 << 20),
}
_RETRY_SUFFIX = re.compile(r"(.+)/retry-(\d+)")


def parse_instruction(text: str) -> Fault:
    """Parse one Retry Test instruction.

    Raises:
        ValueError: the text is not a known instruction.
    """
    for pattern, build in _PATTERNS:
        match = pattern.fullmatch(text)
        if match:
            return build(match, text)
    raise ValueError(
        f"Unknown retry test instruction: {text} (e.g. return-503, return-reset-connection)"
    )


def parse_header_instruction(text: str) -> Fault | None:
    """Parse ``x-goog-emulator-instructions``; None when the instruction asks for no fault.

    ``X/retry-N`` answers a plain 503 for N <= 2 and nothing from the third retry on.

    Raises:
        ValueError: the text is not a known instruction.
    """
    text = text.strip()
    suffix = _RETRY_SUFFIX.fullmatch(text)
    if suffix:
        if int(suffix[2]) >= 3:
            return None
        return Fault("status", text, status=503)
    if text in _HEADER_ONLY:
        return _HEADER_ONLY[text]
    return parse_instruction(text)


class RetryTests:
    """Registry of Retry Test resources."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tests: dict[str, dict[str, list[str]]] = {}

    def create(self, instructions: Mapping[str, Any]) -> str:
        """Validate and register a test; returns its id.

        Raises:
            ValueError: unknown method name or instruction, or a malformed document.
        """
        queues: dict[str, list[str]] = {}
        for method, items in instructions.items():
            if method not in METHODS:
                raise ValueError(
                    f"Unknown method name in retry test: {method} (e.g. storage.objects.get)"
                )
            if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
                raise ValueError(f"Instructions for {method} must be a list of strings")
            for item in items:
                parse_instruction(item)
            queues[method] = list(items)
        test_id = secrets.token_hex(16)
        with self._lock:
            self._tests[test_id] = queues
        return test_id

    def describe(self, test_id: str) -> dict[str, Any]:
        """The test's JSON document (remaining queues).

        Raises:
            KeyError: unknown id.
        """
        with self._lock:
            queues = self._tests[test_id]
            return {
                "id": test_id,
                "instructions": {m: list(q) for m, q in queues.items()},
                "completed": not any(queues.values()),
                "transport": "HTTP",
            }

    def list(self) -> list[dict[str, Any]]:
        """All tests' documents."""
        with self._lock:
            ids = list(self._tests)
        return [self.describe(i) for i in ids]

    def delete(self, test_id: str) -> None:
        """Forget a test.

        Raises:
            KeyError: unknown id.
        """
        with self._lock:
            del self._tests[test_id]

    def exists(self, test_id: str) -> bool:
        """True when ``test_id`` is registered."""
        with self._lock:
            return test_id in self._tests

    def take(self, test_id: str, method: str, applies: Callable[[Fault], bool]) -> Fault | None:
        """Consume and return the head instruction for ``method`` if ``applies`` accepts it."""
        with self._lock:
            queue = self._tests.get(test_id, {}).get(method)
            if not queue:
                return None
            fault = parse_instruction(queue[0])
            if not applies(fault):
                return None
            queue.pop(0)
            return fault
