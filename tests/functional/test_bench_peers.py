"""The peer table of the benchmark harness at tiny sizes: every workload for ours and for two
installed peers (obstore, rclone) on a shaped network, each output verified; peers that write
wrong bytes are FAILED; a peer that is not installed is skipped with one line. No timings are
asserted: this machine is shared."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from resumable_media import bench
from resumable_media._bench.cases import REFERENCES, table_cases
from resumable_media.bench import BenchRow, CaseSpec

pytest.importorskip("obstore")

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "bench_transfers.py"
LARGE = (2 << 20) + 7
SMALL = (12, 64 << 10)
MEDIUM = (3, (1 << 20) + 3)
PEERS = ["obstore", "rclone"] if shutil.which("rclone") else ["obstore"]


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[BenchRow], list[str]]:
    workdir = tmp_path_factory.mktemp("bench-peers")
    lines: list[str] = []
    rows = bench.run_comparison(
        None,
        LARGE,
        cases=table_cases(peers=PEERS),
        repeats=1,
        workdir=workdir,
        progress=lines.append,
        network="lan",
        small=SMALL,
        medium=MEDIUM,
    )
    assert list(workdir.iterdir()) == []
    return rows, lines


def test_every_workload_runs_for_ours_and_the_peers(table) -> None:
    rows, _ = table
    by_id = {row.case_id: row for row in rows}
    for workload in ("large", "small", "medium"):
        for tail in ("down", "up"):
            for family in PEERS:
                assert f"{family}.{workload}.{tail}" in by_id
            assert f"ours.cp.{workload}.{tail}" in by_id
            if workload != "large":
                assert f"ours.bulk.{workload}.{tail}" in by_id
    for row in rows:
        assert row.status == "ok", (row.case_id, row.detail)
        assert len(row.seconds) == 1 and row.cpu_seconds and row.peak_rss_bytes
    small = by_id["obstore.small.down"]
    assert small.objects == SMALL[0] and small.size_bytes == SMALL[0] * SMALL[1]
    assert small.median_objects_per_s is not None
    assert by_id["rclone.medium.up" if "rclone" in PEERS else "obstore.medium.up"].objects == 3


def test_rows_are_compared_with_our_reference_of_their_section(table) -> None:
    rows, _ = table
    by_id = {row.case_id: row for row in rows}
    for (workload, group), reference in REFERENCES.items():
        assert by_id[reference].reference is None
        for row in rows:
            if row.workload == workload and row.group == group and row.case_id != reference:
                assert row.reference == reference
                expected = by_id[reference].median_mbps / row.median_mbps
                assert row.vs_ours == pytest.approx(expected)


def test_report_has_a_section_per_workload_and_direction(table, tmp_path) -> None:
    rows, _ = table
    facts = {**bench.describe_machine(), "network": "lan"}
    report = bench.format_table(rows, machine=facts)
    for heading in (
        f"### Downloads: one {bench.format_size(LARGE)} object",
        "### Uploads: 12 x 64 KiB objects",
        "### Downloads: 3 x 1.0 MiB objects",
        "### Summary",
        "shaped network `lan`",
        "| obstore |",
    ):
        assert heading in report
    for row in rows:
        assert f"`{row.case_id}`" in report
    for workload in ("large", "small", "medium"):
        chart = tmp_path / f"{workload}.png"
        bench.plot(rows, chart, machine=facts, workload=workload)
        assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _fake(case_id: str, body: str, group: str, workload: str) -> CaseSpec:
    return CaseSpec(
        case_id=case_id,
        label=body,
        tool="fake",
        group=group,
        runner=f"_bench_fake_cases:{body}",
        workload=workload,
    )


def test_a_peer_that_writes_wrong_bytes_is_failed(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    helpers = str(pathlib.Path(__file__).parent)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([helpers, os.environ.get("PYTHONPATH", "")]))
    cases = [
        _fake("fake.corrupt.small.down", "obstore_corrupt_many_download", "download", "small"),
        _fake("fake.missing.small.down", "obstore_missing_many_download", "download", "small"),
        _fake("fake.corrupt.medium.up", "obstore_corrupt_many_upload", "upload", "medium"),
        _fake("fake.corrupt.large.down", "corrupt_download", "download", "large"),
    ]
    rows = bench.run_comparison(
        None, LARGE, cases=cases, repeats=1, workdir=tmp_path, small=SMALL, medium=MEDIUM
    )
    by_id = {row.case_id: row for row in rows}
    corrupt = by_id["fake.corrupt.small.down"]
    assert corrupt.status == "FAILED" and corrupt.seconds == ()
    assert "wrong bytes" in corrupt.detail and "00006.bin has crc32c" in corrupt.detail
    missing = by_id["fake.missing.small.down"]
    assert missing.status == "FAILED"
    assert "1 of 12 objects were not downloaded (00011.bin)" in missing.detail
    upload = by_id["fake.corrupt.medium.up"]
    assert upload.status == "FAILED"
    assert "00000.bin has crc32c" in upload.detail
    assert by_id["fake.corrupt.large.down"].status == "FAILED"
    report = bench.format_table(rows)
    assert "### Not measured" in report and "fake.corrupt.small.down" in report
    assert list(tmp_path.iterdir()) == []


def test_a_peer_that_is_not_installed_is_skipped_with_one_line(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "no-tools"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    lines: list[str] = []
    rows = bench.run_comparison(
        None,
        LARGE,
        cases=["rclone.small.down", "rclone.small.up"],
        repeats=2,
        workdir=empty,
        progress=lines.append,
        small=SMALL,
    )
    assert [row.status for row in rows] == ["not available", "not available"]
    assert "apt-get install rclone" in rows[0].detail
    skipped = [line for line in lines if "rclone.small.down" in line]
    assert len(skipped) == 1 and "not available" in skipped[0]


def test_script_runs_the_table_under_a_network_profile(tmp_path: pathlib.Path) -> None:
    out, js = tmp_path / "r.md", tmp_path / "r.json"
    command = [sys.executable, str(SCRIPT), "--table", "--workloads", "small"]
    command += ["--peers", "obstore", "--network", "wan", "--repeats", "1"]
    command += ["--small", "6", "--small-size", "64KiB", "--workdir", str(tmp_path)]
    command += ["--out", str(out), "--json", str(js), "--plot", str(tmp_path / "{workload}.png")]
    command += ["--summary", str(tmp_path / "summary.md")]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(js.read_text())
    assert payload["machine"]["network"] == "wan"
    assert [(r["case_id"], r["status"]) for r in payload["rows"]] == [
        ("ours.cp.small.down", "ok"),
        ("ours.cp.small.up", "ok"),
        ("ours.bulk.small.down", "ok"),
        ("ours.bulk.small.up", "ok"),
        ("obstore.small.down", "ok"),
        ("obstore.small.up", "ok"),
    ]
    report = out.read_text()
    assert "shaped network `wan`" in report
    # 8 objects in flight, each a 30 ms round trip plus 64 KiB at 50 MB/s: 256 objects/s.
    assert "of 256 obj/s" in report
    assert (tmp_path / "small.png").is_file()
    summary = (tmp_path / "summary.md").read_text()
    assert "#### Network: `wan`" in summary and "| Downloads: 6 x 64 KiB objects |" in summary
    assert f"({tmp_path / 'small.png'})" in summary and "--network wan" in summary


def test_peer_and_workload_selection() -> None:
    assert table_cases(["large"], ["rclone"]) == [
        "ours.parallel_download",
        "ours.pipelined",
        "ours.parallel_upload",
        "ours.cp.large.down",
        "ours.cp.large.up",
        "rclone.large.down",
        "rclone.large.up",
    ]
    assert all(bench.select_cases(None)[i].workload == "large" for i in range(3))
    assert {s.workload for s in bench.select_cases(["small"])} == {"small"}
    with pytest.raises(ValueError, match="unknown peer 'nope'; choose from curl, grm"):
        table_cases(peers=["nope"])
    with pytest.raises(ValueError, match="unknown workload 'huge'"):
        table_cases(["huge"])


def test_several_networks_need_a_network_in_every_output_path(tmp_path: pathlib.Path) -> None:
    command = [sys.executable, str(SCRIPT), "--table", "--network", "lan", "wan"]
    command += ["--out", str(tmp_path / "r.md")]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2
    assert "with several networks, --out must contain {network}" in proc.stderr
