"""pytest plugin for the conformance run's subprocesses: ``--shard I/N`` keeps every N-th
collected test starting at the I-th, so N pytest processes share one suite between them.

The suite's cases spend most of their time in the client's retry back-off (sleeping), not on
a CPU, so shards run side by side even on a small machine.  Nothing else about the suite is
changed.
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--shard", default="0/1", help="run the I-th of N interleaved shares: I/N")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    index, count = (int(x) for x in str(config.getoption("--shard")).split("/"))
    keep = [item for k, item in enumerate(items) if k % count == index]
    dropped = [item for k, item in enumerate(items) if k % count != index]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    items[:] = keep
