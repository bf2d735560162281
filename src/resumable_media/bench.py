# Public face of the side-by-side benchmark harness (the `bench` command uses it).
#
# Invariants: importing this module imports no peer library, no matplotlib and no
# server -- each is loaded only by the case or call that needs it; every number
# the harness produces is a ratio against a peer measured in the same run on the
# same server and object, with the machine stated next to it.
"""Compare resumable-media's transfers with curl, google-resumable-media and transfer_manager.

Example::

    from resumable_media import bench

    rows = bench.run_comparison(None, 256 * 2**20, repeats=3)   # embedded loopback server
    print(bench.format_table(rows))
    bench.plot(rows, "transfers.png")
"""

from __future__ import annotations

from resumable_media._bench.cases import CASES, RSS_CASE, RSS_LIMIT_BYTES, TARGETS, select_cases
from resumable_media._bench.machine import describe_machine
from resumable_media._bench.model import BenchRow, CaseSpec, Target, format_size, parse_size
from resumable_media._bench.report import PlotUnavailable, format_table, plot
from resumable_media._bench.runner import run_comparison
from resumable_media._bench.verify import VerificationError

__all__ = [
    "CASES",
    "RSS_CASE",
    "RSS_LIMIT_BYTES",
    "TARGETS",
    "BenchRow",
    "CaseSpec",
    "PlotUnavailable",
    "Target",
    "VerificationError",
    "describe_machine",
    "format_size",
    "format_table",
    "parse_size",
    "plot",
    "run_comparison",
    "select_cases",
]
