# Plain data for the benchmark harness.
#
# Invariants: everything here is immutable and JSON-friendly (it crosses the
# parent/child process boundary as JSON); throughput is always in MB/s with
# MB = 10**6 bytes; a row is "ok" only if every repeat finished and its output
# was verified byte-exact (size + CRC32C), otherwise it says why not.
"""Data types shared by the benchmark harness: contexts, case specs and result rows."""

from __future__ import annotations

import dataclasses
import re
import urllib.parse
from collections.abc import Callable
from typing import Any

__all__ = [
    "MB",
    "MIB",
    "STATUS_FAILED",
    "STATUS_OK",
    "STATUS_UNAVAILABLE",
    "BenchRow",
    "CaseContext",
    "CaseSpec",
    "CaseUnavailable",
    "Target",
    "format_size",
    "parse_size",
]

MB = 1_000_000
"""Bytes in the MB used for every throughput figure (10**6)."""

MIB = 1 << 20
"""Bytes in a MiB."""

STATUS_OK = "ok"
STATUS_UNAVAILABLE = "not available"
STATUS_FAILED = "FAILED"

_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "kib": 1 << 10,
    "mib": 1 << 20,
    "gib": 1 << 30,
    "tib": 1 << 40,
}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_size(text: str) -> int:
    """Parse a human size such as ``1GiB``, ``256MiB``, ``10MB`` or ``4096``.

    Args:
        text: A number with an optional unit (B, kB, MB, GB, KiB, MiB, GiB, TiB;
            case-insensitive; decimal units are powers of 1000).

    Returns:
        The size in bytes.

    Raises:
        ValueError: If the text is not a non-negative size with a known unit.
    """
    match = _SIZE_RE.match(text)
    if match is None or match.group(2).lower() not in _SIZE_UNITS:
        raise ValueError(
            f"invalid size {text!r}: expected a number with an optional unit such as 1GiB or 256MiB"
        )
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()])


def format_size(size_bytes: int) -> str:
    """Format a byte count with the largest exact binary unit, e.g. ``1 GiB`` or ``1536 KiB``.

    Args:
        size_bytes: A non-negative number of bytes.

    Returns:
        A short human-readable size.
    """
    for unit, factor in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size_bytes >= factor and size_bytes % factor == 0:
            return f"{size_bytes // factor} {unit}"
    if size_bytes >= MIB:
        return f"{size_bytes / MIB:.1f} MiB"
    return f"{size_bytes} B"


def _median(values: tuple[float, ...]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


class CaseUnavailable(Exception):
    """Raised by a case when the library it measures is not installed or not built yet."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CaseContext:
    """Everything one timed run of a case needs; serialised to JSON for the child process.

    Attributes:
        endpoint: Server base URL, e.g. ``http://127.0.0.1:41234``.
        bucket: Bucket holding the benchmark object.
        object_name: Name of the object the download cases read.
        size_bytes: Size of that object (and of the upload source file).
        source_path: Local file with the object's bytes (upload source).
        dest_path: Where a download case must write the object.
        upload_name: Object name an upload case must create.
    """

    endpoint: str
    bucket: str
    object_name: str
    size_bytes: int
    source_path: str
    dest_path: str
    upload_name: str

    def media_url(self) -> str:
        """Return the JSON API media download URL of the benchmark object."""
        name = urllib.parse.quote(self.object_name, safe="")
        return f"{self.endpoint}/download/storage/v1/b/{self.bucket}/o/{name}?alt=media"

    def resumable_url(self) -> str:
        """Return the JSON API URL that starts a resumable upload into the bucket."""
        return f"{self.endpoint}/upload/storage/v1/b/{self.bucket}/o?uploadType=resumable"

    def xml_url(self) -> str:
        """Return the XML API URL of the upload target (used by XML multipart uploads)."""
        return f"{self.endpoint}/{self.bucket}/{urllib.parse.quote(self.upload_name, safe='/')}"

    def to_json(self) -> dict[str, Any]:
        """Return the context as a JSON-serialisable dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CaseContext:
        """Build a context from :meth:`to_json` output."""
        return cls(**data)


CaseRunner = Callable[..., dict[str, Any]]
"""A case body ``(ctx: CaseContext, **options)``: performs exactly one timed transfer.

The returned dict has ``seconds`` (float, the timed transfer only) and may have
``detail`` (str). It raises CaseUnavailable when its library is missing."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CaseSpec:
    """One benchmark case: a single tool performing one kind of transfer.

    Attributes:
        case_id: Stable identifier, e.g. ``ours.download.crc32c``.
        label: What is measured, e.g. ``Download(checksum="crc32c")``.
        tool: Who is measured, e.g. ``google-resumable-media 2.11``.
        group: ``download``, ``upload`` or ``memory``.
        runner: ``"module:function"`` of the case body (resolved in the child).
        options: Keyword arguments for the case body, as sorted (name, value) pairs.
        peer: case_id of the peer this case is compared with, if any.
        target: Minimum median-throughput ratio against ``peer`` the project promises.
        ours: True for resumable-media's own transfers.
        default: Whether the case runs when no explicit case list is given.
    """

    case_id: str
    label: str
    tool: str
    group: str
    runner: str
    options: tuple[tuple[str, str], ...] = ()
    peer: str | None = None
    target: float | None = None
    ours: bool = False
    default: bool = True


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """A promised ratio between two cases' median throughputs (ours / peer >= minimum)."""

    ours: str
    peer: str
    minimum: float


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class BenchRow:
    """The measured result of one case over all repeats.

    Attributes:
        case_id: The case's identifier.
        label: What was measured.
        tool: Who was measured.
        group: ``download``, ``upload`` or ``memory``.
        ours: True for resumable-media's own transfers.
        size_bytes: Bytes moved per repeat.
        seconds: Wall time of each completed repeat, in run order.
        cpu_seconds: CPU time (user + system) of the case's whole process tree during
            each timed transfer, where the case body measured it.
        server_cpu_seconds: CPU time of the embedded server process during each run
            (the whole child process's lifetime; empty for a remote server).
        status: ``ok``, ``not available`` or ``FAILED``.
        detail: Why the row is not ok, or a note about the run.
        peer: case_id of the compared peer, if any.
        target: Promised minimum ratio against the peer, if any.
        ratio: Our median throughput divided by the peer's (both ok), else None.
        peak_rss_bytes: Largest sampled RSS of the case's whole process tree.
        peak_rss_bound_bytes: Sum of every process's own peak RSS (an upper bound).
    """

    case_id: str
    label: str
    tool: str
    group: str
    ours: bool
    size_bytes: int
    seconds: tuple[float, ...]
    status: str
    cpu_seconds: tuple[float, ...] = ()
    server_cpu_seconds: tuple[float, ...] = ()
    detail: str = ""
    peer: str | None = None
    target: float | None = None
    ratio: float | None = None
    peak_rss_bytes: int | None = None
    peak_rss_bound_bytes: int | None = None

    @property
    def ok(self) -> bool:
        """True when every repeat completed and was verified."""
        return self.status == STATUS_OK

    @property
    def median_mbps(self) -> float | None:
        """Throughput of the median run in MB/s (10**6 B/s), or None without runs."""
        if not self.seconds:
            return None
        median_s = _median(self.seconds)
        return self.size_bytes / median_s / MB if median_s > 0 else None

    @property
    def cpu_s_per_gib(self) -> float | None:
        """Median CPU seconds per GiB moved (client side, workers included), or None."""
        if not self.cpu_seconds or self.size_bytes <= 0:
            return None
        return _median(self.cpu_seconds) * (1 << 30) / self.size_bytes

    @property
    def server_cpu_s_per_gib(self) -> float | None:
        """Median server CPU seconds per GiB moved, or None when not measured."""
        if not self.server_cpu_seconds or self.size_bytes <= 0:
            return None
        return _median(self.server_cpu_seconds) * (1 << 30) / self.size_bytes

    @property
    def best_mbps(self) -> float | None:
        """Throughput of the fastest run in MB/s, or None without runs."""
        if not self.seconds:
            return None
        fastest = min(self.seconds)
        return self.size_bytes / fastest / MB if fastest > 0 else None

    def to_json(self) -> dict[str, Any]:
        """Return the row (plus derived throughputs) as a JSON-serialisable dict."""
        data = dataclasses.asdict(self)
        data["seconds"] = list(self.seconds)
        data["cpu_seconds"] = list(self.cpu_seconds)
        data["cpu_s_per_gib"] = self.cpu_s_per_gib
        data["server_cpu_seconds"] = list(self.server_cpu_seconds)
        data["server_cpu_s_per_gib"] = self.server_cpu_s_per_gib
        data["median_mbps"] = self.median_mbps
        data["best_mbps"] = self.best_mbps
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BenchRow:
        """Rebuild a row from :meth:`to_json` output (derived figures are recomputed)."""
        names = {field.name for field in dataclasses.fields(cls)}
        fields = {key: value for key, value in data.items() if key in names}
        fields["seconds"] = tuple(fields.get("seconds", ()))
        fields["cpu_seconds"] = tuple(fields.get("cpu_seconds", ()))
        fields["server_cpu_seconds"] = tuple(fields.get("server_cpu_seconds", ()))
        return cls(**fields)
