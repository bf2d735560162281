# Description of the machine and software a benchmark ran on.
#
# Invariants: read-only and best effort -- a missing file, command or package
# shows as "unknown"/"not installed", never raises; values are short strings so
# they print in a markdown table.
"""Describe the benchmark machine: CPU, cores, memory, load, Python and package versions."""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import platform
import shutil
import subprocess

__all__ = ["PACKAGES", "describe_machine"]

PACKAGES = (
    "resumable-media",
    "google-resumable-media",
    "google-cloud-storage",
    "requests",
    "urllib3",
    "google-crc32c",
    "obstore",
    "pyarrow",
    "gcsfs",
)
"""Distributions whose versions every benchmark result records."""


def _cpu_model() -> str:
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                if not line.strip():
                    break  # the first processor's block is enough
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    name = fields.get("model name") or platform.processor() or "unknown"
    if "cpu family" in fields and "model" in fields:
        name += f" (family {fields['cpu family']}, model {fields['model']})"
    return name


def _memory() -> str:
    try:
        with open("/proc/meminfo", encoding="utf-8") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return f"{int(line.split()[1]) / (1 << 20):.1f} GiB"
    except (OSError, ValueError):
        pass
    return "unknown"


def _load() -> str:
    try:
        return " / ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "unknown"


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _tool_version(name: str, *args: str, word: int = 1) -> str:
    """The ``word``-th word of a tool's version output, "not installed" or "unknown"."""
    binary = os.environ.get("GSUTIL") if name == "gsutil" else None
    binary = binary or shutil.which(name)
    if binary is None:
        return "not installed"
    try:
        out = subprocess.run([binary, *args], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    words = (out.stdout or out.stderr).split()
    return words[word] if len(words) > word else "unknown"


def _curl() -> str:
    return _tool_version("curl", "--version")


def _crc_backend() -> str:
    try:
        checksums = importlib.import_module("resumable_media.checksums")
    except ImportError:
        return "not available"
    return str(getattr(checksums, "implementation", "unknown"))


def describe_machine() -> dict[str, str]:
    """Return the facts every benchmark result must state, as short strings.

    Returns:
        An ordered mapping: CPU model, usable cores, memory, kernel, load average,
        Python, resumable-media's CRC32C backend, curl and package versions.
    """
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    facts = {
        "CPU": _cpu_model(),
        "cores": f"{usable} usable ({os.cpu_count()} online)",
        "memory": _memory(),
        "kernel": f"{platform.system()} {platform.release()}",
        "load average (1/5/15 min)": _load(),
        "Python": f"{platform.python_implementation()} {platform.python_version()}",
        "resumable_media.checksums backend": _crc_backend(),
        "curl": _curl(),
        "rclone": _tool_version("rclone", "version"),
        "gsutil": _tool_version("gsutil", "version", word=2),
    }
    facts.update({name: _version(name) for name in PACKAGES})
    return facts
