"""Smoke tests of the benchmark harness with a tiny object: real server, real peers, real
child processes, plus deliberately broken cases that must be reported, never hidden."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

from resumable_media import bench
from resumable_media.bench import BenchRow, CaseSpec

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "bench_transfers.py"
SIZE = (1 << 20) + 7  # not a multiple of any chunk size
SMOKE_CASES = [  # in catalogue order, the order of the first repeat
    "curl",
    "grm.download.crc32c",
    "grm.chunked",
    "ours.download.crc32c",
    "ours.parallel_download",
    "curl.upload",
    "grm.resumable",
    "ours.pipelined",
]


@pytest.fixture(scope="module")
def smoke(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[list[BenchRow], list[str], pathlib.Path]:
    workdir = tmp_path_factory.mktemp("bench-work")
    lines: list[str] = []
    rows = bench.run_comparison(
        None, SIZE, cases=SMOKE_CASES, repeats=2, workdir=workdir, progress=lines.append
    )
    return rows, lines, workdir


def _fake(case_id: str, body: str, group: str = "download") -> CaseSpec:
    return CaseSpec(
        case_id=case_id,
        label=body,
        tool="fake",
        group=group,
        runner=f"_bench_fake_cases:{body}",
    )


def test_every_case_runs_twice_and_is_verified(smoke) -> None:
    rows, _, _ = smoke
    assert [row.case_id for row in rows] == SMOKE_CASES
    for row in rows:
        assert row.status == "ok", (row.case_id, row.detail)
        assert len(row.seconds) == 2 and all(s > 0 for s in row.seconds)
        assert row.size_bytes == SIZE
        assert row.best_mbps is not None and row.median_mbps is not None
        assert row.best_mbps >= row.median_mbps > 0
        assert row.peak_rss_bytes is not None and row.peak_rss_bytes > 1 << 20
        assert len(row.cpu_seconds) == 2 and all(c >= 0 for c in row.cpu_seconds)
        assert row.cpu_s_per_gib is not None
        assert len(row.server_cpu_seconds) == 2 and row.server_cpu_s_per_gib is not None


def test_ratios_are_medians_of_the_same_run(smoke) -> None:
    rows, _, _ = smoke
    by_id = {row.case_id: row for row in rows}
    for ours, peer in (
        ("ours.download.crc32c", "grm.download.crc32c"),
        ("ours.parallel_download", "curl"),
        ("ours.pipelined", "grm.resumable"),
    ):
        assert by_id[ours].peer == peer
        expected = by_id[ours].median_mbps / by_id[peer].median_mbps
        assert by_id[ours].ratio == pytest.approx(expected)
    assert by_id["curl"].ratio is None


def test_order_alternates_between_repeats(smoke) -> None:
    _, lines, _ = smoke
    timed = [line.split()[0] for line in lines if line.startswith("  ")]
    assert timed[: len(SMOKE_CASES)] == SMOKE_CASES
    assert timed[len(SMOKE_CASES) :] == SMOKE_CASES[::-1]


def test_temporary_data_is_removed(smoke) -> None:
    _, _, workdir = smoke
    assert list(workdir.iterdir()) == []


def test_report_and_chart(smoke, tmp_path: pathlib.Path) -> None:
    rows, _, _ = smoke
    table = bench.format_table(rows)
    for row in rows:
        assert f"`{row.case_id}`" in table
    assert "### Downloads" in table and "### Uploads" in table and "### Machine" in table
    assert bench.describe_machine()["CPU"] in table
    chart = tmp_path / "chart.png"
    bench.plot(rows, chart)
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_broken_cases_are_reported_not_hidden(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    helpers = str(pathlib.Path(__file__).parent)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([helpers, os.environ.get("PYTHONPATH", "")]))
    cases = [
        _fake("fake.corrupt", "corrupt_download"),
        _fake("fake.leftover", "leftover_journal"),
        _fake("fake.short_upload", "short_upload", group="upload"),
        _fake("fake.missing", "missing_library"),
        _fake("fake.hang", "hang"),
    ]
    rows = bench.run_comparison(None, SIZE, cases=cases, repeats=2, workdir=tmp_path, timeout_s=3.0)
    by_id = {row.case_id: row for row in rows}
    corrupt = by_id["fake.corrupt"]
    assert corrupt.status == "FAILED"
    assert "repeat 1" in corrupt.detail and "crc32c" in corrupt.detail
    assert corrupt.seconds == ()  # a wrong run never counts, and the case stops there
    leftover = by_id["fake.leftover"]
    assert leftover.status == "FAILED"
    assert "left files behind" in leftover.detail and ".journal" in leftover.detail
    short = by_id["fake.short_upload"]
    assert short.status == "FAILED"
    assert f"{SIZE - 1} bytes" in short.detail
    missing = by_id["fake.missing"]
    assert missing.status == "not available" and "fakelib" in missing.detail
    assert by_id["fake.hang"].status == "FAILED"
    assert "timed out" in by_id["fake.hang"].detail
    table = bench.format_table(rows)
    assert "### Not measured" in table
    assert "fakelib is not installed" in table
    assert list(tmp_path.iterdir()) == []


def test_script_writes_every_output(tmp_path: pathlib.Path) -> None:
    out, js, png = tmp_path / "r.md", tmp_path / "r.json", tmp_path / "r.png"
    command = [sys.executable, str(SCRIPT), "--size", "1MiB", "--repeats", "1"]
    command += ["--cases", "curl", "ours.download.crc32c", "--workdir", str(tmp_path)]
    command += ["--out", str(out), "--json", str(js), "--plot", str(png)]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "`ours.download.crc32c`" in out.read_text()
    payload = json.loads(js.read_text())
    assert [row["status"] for row in payload["rows"]] == ["ok", "ok"]
    assert payload["machine"]["command"].endswith(str(png))
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json", "r.md", "r.png"]
    # A saved run re-renders to the very same report without measuring anything.
    again = tmp_path / "again.md"
    command = [sys.executable, str(SCRIPT), "--from-json", str(js), "--out", str(again)]
    subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
    assert again.read_text() == out.read_text()


def test_cli_bench_subcommand(tmp_path: pathlib.Path) -> None:
    png = tmp_path / "cli.png"
    command = [sys.executable, "-m", "resumable_media", "bench", "--size", "1MiB"]
    command += ["--repeats", "1", "--cases", "curl", "ours.download.crc32c", "--plot", str(png)]
    env = {k: v for k, v in os.environ.items() if k != "STORAGE_EMULATOR_HOST"}
    proc = subprocess.run(
        command, capture_output=True, text=True, timeout=120, check=False, env=env
    )
    assert proc.returncode == 0, proc.stderr
    assert "`curl`" in proc.stdout and "`ours.download.crc32c`" in proc.stdout
    assert "FAILED" not in proc.stdout
    assert png.read_bytes()[:4] == b"\x89PNG"


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for entry in pathlib.Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError):
            continue
        if text in cmdline:
            found.append(cmdline)
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_script_interrupted_stops_children_and_removes_data(tmp_path: pathlib.Path) -> None:
    command = [sys.executable, str(SCRIPT), "--size", "16MiB", "--repeats", "50"]
    command += ["--cases", "curl", "grm.chunked", "--workdir", str(tmp_path)]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    for line in proc.stderr:  # wait until timed runs are under way
        if line.startswith("  curl"):
            break
    proc.terminate()
    _, rest = proc.communicate(timeout=60)
    assert proc.returncode == 130, rest
    assert "interrupted" in rest
    assert list(tmp_path.iterdir()) == []
    assert _processes_mentioning(str(tmp_path)) == []
