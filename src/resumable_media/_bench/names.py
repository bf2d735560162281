# The names the benchmark's options choose from: peer families and workloads.
#
# Invariants: imports nothing (the CLI's parser reads these on every start-up, before
# any benchmark runs); cases.py builds its catalogue from them.
"""The peer families and the workloads of the benchmark (names and defaults only)."""

from __future__ import annotations

import dataclasses

__all__ = ["FAMILIES", "TOOLS", "WORKLOADS", "Workload"]

TOOLS = {
    "curl": "curl",
    "grm": "google-resumable-media 2.11",
    "tm": "google-cloud-storage transfer_manager",
    "gcs": "google-cloud-storage",
    "obstore": "obstore (Rust object_store)",
    "pyarrow": "pyarrow GcsFileSystem (C++)",
    "gcsfs": "gcsfs (fsspec, aiohttp)",
    "rclone": "rclone (Go)",
    "gsutil": "gsutil (over HTTPS)",
    "ours": "resumable-media",
}

FAMILIES = tuple(family for family in TOOLS if family != "ours")
"""The peer families ``--peers`` chooses from (ours always runs)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Workload:
    """A workload's default shape: how many objects of what size (``large`` is one)."""

    name: str
    count: int
    object_size: int
    title: str


WORKLOADS = {
    "large": Workload("large", 1, 1 << 30, "one large object"),
    "small": Workload("small", 2000, 64 << 10, "many small objects"),
    "medium": Workload("medium", 200, 8 << 20, "many medium objects"),
}
"""The three workloads and their defaults (1 GiB; 2,000 x 64 KiB; 200 x 8 MiB)."""
