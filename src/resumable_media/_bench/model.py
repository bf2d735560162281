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
        upload_name: Object name an upload case must create; in a many-object workload,
            the prefix (no trailing slash) under which it must create ``names``.
        workload: ``large`` (one object), ``small`` or ``medium`` (many objects).
        names: The many-object workload's relative object names (flat); empty for ``large``.
        prefix: Server prefix of the seeded many objects (``small/``); empty for ``large``.
        source_dir: Local directory holding ``names`` (upload source of a many workload).
        tls_endpoint: The same server over HTTPS (self-signed), when one was started.
        network: Name of the shaped-network profile the server runs with (empty: none).
    """

    endpoint: str
    bucket: str
    object_name: str
    size_bytes: int
    source_path: str
    dest_path: str
    upload_name: str
    workload: str = "large"
    names: tuple[str, ...] = ()
    prefix: str = ""
    source_dir: str = ""
    tls_endpoint: str = ""
    network: str = ""

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

    @property
    def many(self) -> bool:
        """True for a many-object workload (``dest_path`` is then a directory)."""
        return bool(self.names)

    def object_keys(self) -> list[str]:
        """The full names of the seeded objects a download case reads."""
        return [self.prefix + name for name in self.names] if self.names else [self.object_name]

    def upload_keys(self) -> list[str]:
        """The full names of the objects an upload case must create."""
        if not self.names:
            return [self.upload_name]
        return [f"{self.upload_name}/{name}" for name in self.names]

    def to_json(self) -> dict[str, Any]:
        """Return the context as a JSON-serialisable dict."""
        data = dataclasses.asdict(self)
        data["names"] = list(self.names)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CaseContext:
        """Build a context from :meth:`to_json` output."""
        fields = dict(data)
        fields["names"] = tuple(fields.get("names", ()))
        return cls(**fields)


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
        workload: ``large`` (one object), ``small`` or ``medium`` (many objects).
        needs_tls: The case speaks HTTPS only (gsutil): the server also listens with TLS.
        concurrency: Objects (or ranges) the case keeps in flight, where it is fixed.
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
    workload: str = "large"
    needs_tls: bool = False
    concurrency: int | None = None

    @property
    def family(self) -> str:
        """The tool family: the first part of the id (``ours``, ``obstore``, ``rclone``...)."""
        return self.case_id.split(".")[0]


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
        workload: ``large``, ``small``, ``medium`` (or ``large`` for the memory case).
        objects: Objects moved per repeat (1 for a single-object workload).
        reference: case_id of our row this one is compared with in its section, if any.
        vs_ours: The reference's median throughput divided by this row's (> 1: ours is
            faster), both ok and from the same run; None otherwise.
        concurrency: Objects the case keeps in flight, where it is fixed.
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
    workload: str = "large"
    objects: int = 1
    reference: str | None = None
    vs_ours: float | None = None
    concurrency: int | None = None

    @property
    def median_seconds(self) -> float | None:
        """Wall time of the median run, or None without runs."""
        return _median(self.seconds) if self.seconds else None

    @property
    def median_objects_per_s(self) -> float | None:
        """Objects per second of the median run, or None without runs."""
        median_s = self.median_seconds
        return self.objects / median_s if median_s else None

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
        data["median_seconds"] = self.median_seconds
        data["median_objects_per_s"] = self.median_objects_per_s
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
