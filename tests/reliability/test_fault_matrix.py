"""Fault matrix: every Retry Test instruction x every transfer kind, judged cell by cell.

Each cell moves a fresh ~2 MiB object through one kind while the loopback server injects
the row's instructions (``storage.objects.get`` for downloads, ``storage.objects.insert`` for
uploads, XML multipart parts included).  A cell passes when it completes with exact bytes and
a matching CRC32C, or -- only where the row allows it -- fails with a documented exception
leaving no destination file and no wrong object.  Instructions that do not apply to a kind
(a broken download stream seen by an upload) must be harmless.  The cells run concurrently
(most of their time is retry sleeps and the 2 s stalls); each has its own test id, and the
whole table is printed at the end of the session.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import pathlib
import random
import time
from collections.abc import Iterator
from typing import Any

import pytest
from rel_kinds import CLI_KINDS, DOWNLOADS, KINDS, Env, Outcome, run_cell
from rel_support import FAST_RETRY, MATRIX_REPORT, TIMEOUT

GET, INSERT = "storage.objects.get", "storage.objects.insert"
SIZE = 2 * 1024 * 1024 - 1000
"""Object size: two MiB, not a multiple of 256 KiB (a short last chunk everywhere)."""


@dataclasses.dataclass(frozen=True)
class Row:
    """One row of the matrix: the instructions per direction and what may happen."""

    label: str
    download: tuple[str, ...]
    upload: tuple[str, ...]
    may_fail: tuple[str, ...] = ()  # exception names (or "exit 1") allowed instead of success
    must_fail: bool = False
    cli: bool = True  # whether the cp kinds run this row


def _single(instruction: str, **kwargs: Any) -> Row:
    return Row(instruction, (instruction,), (instruction,), **kwargs)


ROWS = [
    *(_single(f"return-{code}") for code in (408, 429, 500, 502, 503, 504)),
    _single("return-reset-connection"),
    *(_single(f"return-broken-stream-after-{k}K") for k in (0, 1, 256, 1024)),
    _single("return-503-after-256K"),
    _single("return-503-after-512K"),
    _single("stall-for-2s-after-256K"),
    # A flipped first byte: detected (DataCorruption, exit 1) or refetched -- never accepted.
    _single("return-corrupted-data", may_fail=("DataCorruption", "exit 1")),
    # The baseline scenarios of gcs-server-behaviour.md §3.4, two faults in one transfer.
    Row(
        "combined (§3.4 baseline)",
        ("return-broken-stream-after-256K", "return-503"),
        ("return-503-after-512K", "return-reset-connection"),
    ),
    # More faults than FAST_RETRY allows: the transfer must give up cleanly.  The command
    # retries for ten minutes by design, so the cp kinds do not run this row.
    Row(
        "exhausted: return-503 x8",
        ("return-503",) * 8,
        ("return-503",) * 8,
        may_fail=("InvalidResponse",),
        must_fail=True,
        cli=False,
    ),
]

CELLS = [(row, kind) for row in ROWS for kind in KINDS if row.cli or kind not in CLI_KINDS]


def _cell_id(row: Row, kind: str) -> str:
    return f"{row.label}|{kind}"


@pytest.fixture(scope="module")
def matrix(
    gcs_server: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, tuple[Outcome, float]]]:
    """Run every cell (concurrently) and return ``{cell id: (outcome, seconds)}``."""
    bucket = "reliability-matrix"
    gcs_server.create_bucket(bucket)
    workdir = tmp_path_factory.mktemp("matrix")
    results: dict[str, tuple[Outcome, float]] = {}

    def run(index: int, row: Row, kind: str) -> tuple[Outcome, float]:
        celldir = pathlib.Path(workdir, f"cell{index}")
        celldir.mkdir()
        env = Env(gcs_server.endpoint, bucket, celldir, FAST_RETRY, TIMEOUT, gcs_server)
        data = random.Random(20261124 + index).randbytes(SIZE)  # per cell: thread-order free
        instructions = list(row.download if kind in DOWNLOADS else row.upload)
        method = GET if kind in DOWNLOADS else INSERT
        created: list[str] = []

        def create(doc: dict[str, list[str]]) -> str:
            created.append(gcs_server.create_retry_test(doc))
            return created[-1]

        began = time.monotonic()
        outcome = run_cell(env, kind, f"obj{index}", data, {method: instructions}, create)
        seconds = time.monotonic() - began
        queues = gcs_server.retry_test(created[0])["instructions"] if created else {}
        outcome.unconsumed = sum(len(q) for q in queues.values())
        return outcome, seconds

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        futures = {
            _cell_id(row, kind): pool.submit(run, index, row, kind)
            for index, (row, kind) in enumerate(CELLS)
        }
        for key, future in futures.items():
            results[key] = future.result()
    MATRIX_REPORT["table"] = format_table(results)
    yield results


def _applies(kind: str, instruction: str) -> bool:
    """Whether the server applies ``instruction`` to this kind's requests at all."""
    if kind in DOWNLOADS:
        return True
    return not instruction.startswith(("return-broken-stream", "return-corrupted"))


def _acceptable(row: Row, outcome: Outcome) -> bool:
    if outcome.status == "ok":
        return not row.must_fail
    if outcome.status == "failed":
        return any(outcome.detail.startswith(name) for name in row.may_fail)
    return False


_SHORT = {"DataCorruption": "DC", "InvalidResponse": "IR", "exit": "exit1"}


def format_table(results: dict[str, tuple[Outcome, float]]) -> str:
    """The matrix as text: one line per instruction, one column per kind."""
    widths = [max(len(k), 7) + 1 for k in KINDS]
    label_width = max(len(r.label) for r in ROWS) + 1
    lines = [
        "".ljust(label_width) + "".join(k.ljust(w) for k, w in zip(KINDS, widths, strict=True))
    ]
    counts: dict[str, int] = {}
    for row in ROWS:
        cells = []
        for kind, width in zip(KINDS, widths, strict=True):
            entry = results.get(_cell_id(row, kind))
            if entry is None:
                cells.append("-".ljust(width))
                continue
            outcome, _ = entry
            mark = outcome.status
            if outcome.status == "failed":
                first = outcome.detail.split()[0]
                mark = "x:" + _SHORT.get(first, first[:4])
            if not _acceptable(row, outcome):
                mark = "!" + mark
            counts[outcome.status] = counts.get(outcome.status, 0) + 1
            cells.append(mark[: width - 1].ljust(width))
        lines.append(row.label.ljust(label_width) + "".join(cells))
    total = sum(counts.values())
    lines.append(
        f"{total} cells: "
        + ", ".join(f"{counts.get(s, 0)} {s}" for s in ("ok", "failed", "BAD", "CORRUPT"))
    )
    lines.append(
        "ok = exact bytes + CRC32C verified; x:DC / x:IR / x:exit1 = failed cleanly with "
        "DataCorruption / InvalidResponse / cp exit 1 (nothing left behind); "
        "'!' = not acceptable for its row; '-' = not run (cp retries for 10 min by design)"
    )
    return "\n".join(lines)


@pytest.mark.parametrize(("row", "kind"), CELLS, ids=[_cell_id(row, kind) for row, kind in CELLS])
def test_cell(matrix: dict[str, tuple[Outcome, float]], row: Row, kind: str) -> None:
    outcome, seconds = matrix[_cell_id(row, kind)]
    instructions = row.download if kind in DOWNLOADS else row.upload
    if not row.must_fail and all(_applies(kind, i) for i in instructions):
        # Proof that the faults really reached this kind's requests.
        assert outcome.unconsumed == 0, f"{outcome.unconsumed} instructions never fired"
    expectation = "a documented failure" if row.must_fail else "exact bytes"
    if row.may_fail and not row.must_fail:
        expectation += f" or one of {row.may_fail}"
    assert _acceptable(row, outcome), (
        f"{row.label} x {kind}: got {outcome.status} ({outcome.detail}) after {seconds:.1f}s, "
        f"expected {expectation}; error: {outcome.error}"
    )


def test_zero_silent_corruptions(matrix: dict[str, tuple[Outcome, float]]) -> None:
    corrupt = {key: o.detail for key, (o, _) in matrix.items() if o.status == "CORRUPT"}
    assert not corrupt, f"silent corruption in {len(corrupt)} cells: {corrupt}"
    assert len(matrix) == len(CELLS)
