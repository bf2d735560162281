"""Pure-logic tests of the benchmark harness: sizes, case selection, row statistics,
report rendering and the matplotlib-missing error."""

from __future__ import annotations

import pathlib
import sys

import pytest

from resumable_media import bench
from resumable_media.bench import BenchRow


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1GiB", 1 << 30),
        ("256MiB", 256 << 20),
        ("4gib", 4 << 30),
        ("10MB", 10_000_000),
        ("1.5KiB", 1536),
        ("4096", 4096),
        (" 2 MiB ", 2 << 20),
    ],
)
def test_parse_size(text: str, expected: int) -> None:
    assert bench.parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "GiB", "-1MiB", "1 furlong", "1e3"])
def test_parse_size_rejects_garbage(text: str) -> None:
    with pytest.raises(ValueError, match="invalid size"):
        bench.parse_size(text)


def test_format_size() -> None:
    assert bench.format_size(1 << 30) == "1 GiB"
    assert bench.format_size(1536 << 10) == "1536 KiB"
    assert bench.format_size((1 << 20) + 7) == "1.0 MiB"
    assert bench.format_size(12) == "12 B"


def test_default_selection_is_the_large_workload_without_the_rss_case() -> None:
    ids = [spec.case_id for spec in bench.select_cases(None)]
    assert bench.RSS_CASE not in ids
    large = [s.case_id for s in bench.CASES if s.workload == "large" and s.default]
    assert ids == large and bench.RSS_CASE not in large
    assert len(set(ids)) == len(ids)
    assert len(ids) < len(bench.CASES)  # the many-object workloads are asked for by name


def test_globs_groups_and_ids() -> None:
    def ids(*patterns: str) -> list[str]:
        return [spec.case_id for spec in bench.select_cases(patterns)]

    ours = ids("ours.*")
    assert ours and all(cid.startswith("ours.") for cid in ours)
    assert bench.RSS_CASE not in ours  # a glob never starts the 4 GiB run
    assert ids(bench.RSS_CASE) == [bench.RSS_CASE]
    assert ids("rss") == [bench.RSS_CASE]
    assert set(ids("upload")) == {s.case_id for s in bench.CASES if s.group == "upload"}
    assert len(ids("all")) == len(bench.CASES)
    # Catalogue order, whatever order the patterns came in, and no duplicates.
    assert ids("ours.chunked", "curl", "curl") == ["curl", "ours.chunked"]


def test_unknown_case_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"no benchmark case matches 'nope'.*grm\.chunked"):
        bench.select_cases(["nope"])


def test_every_peer_and_target_names_a_case() -> None:
    ids = {spec.case_id for spec in bench.CASES}
    for spec in bench.CASES:
        assert spec.peer is None or spec.peer in ids
        assert spec.target is None or spec.peer is not None  # a target needs a peer
    # A peer without a target is an informational ratio (e.g. an opt-in mode).
    assert any(spec.peer and spec.target is None for spec in bench.CASES)
    for target in bench.TARGETS:
        assert {target.ours, target.peer} <= ids
        assert bench.select_cases([target.ours])[0].ours
    # The promised ratios, each exactly once.
    promised = {(t.ours, t.peer): t.minimum for t in bench.TARGETS}
    assert promised == {
        ("ours.download.crc32c", "grm.download.crc32c"): 4.0,
        ("ours.chunked", "grm.chunked"): 4.0,
        ("ours.download.md5", "grm.download.md5"): 1.8,
        ("ours.resumable", "grm.resumable"): 2.0,
        ("ours.parallel_download", "curl"): 0.8,
        ("ours.parallel_download", "grm.chunked"): 5.0,
        ("ours.parallel_download", "tm.download"): 2.0,
        ("ours.pipelined", "grm.resumable"): 2.5,
        ("ours.parallel_upload", "tm.upload"): 1.5,
    }


def _row(case_id: str, seconds: tuple[float, ...], **kwargs: object) -> BenchRow:
    spec = bench.select_cases([case_id])[0]
    fields: dict[str, object] = {
        "case_id": case_id,
        "label": spec.label,
        "tool": spec.tool,
        "group": spec.group,
        "ours": spec.ours,
        "size_bytes": 10_000_000,
        "seconds": seconds,
        "status": "ok",
        "peer": spec.peer,
        "target": spec.target,
    }
    fields.update(kwargs)
    return BenchRow(**fields)  # type: ignore[arg-type]


def test_median_and_best() -> None:
    odd = _row("curl", (0.5, 0.1, 0.2))
    assert odd.median_mbps == pytest.approx(50.0)
    assert odd.best_mbps == pytest.approx(100.0)
    even = _row("curl", (0.1, 0.4, 0.2, 0.3))
    assert even.median_mbps == pytest.approx(10.0 / 0.25)
    empty = _row("curl", (), status="not available")
    assert empty.median_mbps is None and empty.best_mbps is None
    assert empty.to_json()["median_mbps"] is None


def test_table_shows_misses_failures_and_unavailable_rows() -> None:
    rows = [
        _row("grm.download.crc32c", (1.0, 1.0, 1.0), cpu_seconds=(0.9, 0.9, 0.3)),
        _row("ours.download.crc32c", (0.5, 0.5, 0.5), ratio=2.0, cpu_seconds=(0.3, 0.3, 0.3)),
        _row("grm.resumable", (1.0,)),
        _row("ours.resumable", (), status="not available", detail="no ResumableUpload yet"),
        _row("ours.pipelined", (0.2,), status="FAILED", detail="repeat 2: wrong bytes"),
        _row(bench.RSS_CASE, (4.0,), size_bytes=4 << 30, peak_rss_bytes=400 << 20),
    ]
    table = bench.format_table(rows, machine={"CPU": "Test CPU 9000"})
    assert "| `ours.download.crc32c` |" in table
    assert "2.00x vs grm.download.crc32c | >= 4x: **MISSED**" in table
    assert "- `ours.resumable` (not available): no ResumableUpload yet" in table
    assert "- `ours.pipelined` (FAILED): repeat 2: wrong bytes" in table
    assert (
        "| `ours.pipelined` | `grm.resumable` | - (FAILED / ok) | >= 2.5x | not measured | - |"
        in table
    )
    assert (
        "| `ours.download.crc32c` | `grm.download.crc32c` | 2.00x | >= 4x | **MISSED** | 3.00x |"
        in table
    )
    assert "| 400 |" in table and "<= 300 MiB: **MISSED**" in table
    assert "| CPU | Test CPU 9000 |" in table


def test_plot_without_matplotlib(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` fail
    with pytest.raises(bench.PlotUnavailable, match=r"pip install 'resumable-media\[bench\]'"):
        bench.plot([_row("curl", (1.0,))], tmp_path / "x.png", machine={})
    assert not (tmp_path / "x.png").exists()


def test_plot_needs_a_measured_row(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ValueError, match="no benchmark row"):
        bench.plot([_row("curl", (), status="not available")], tmp_path / "x.png", machine={})


def test_run_comparison_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="repeats"):
        bench.run_comparison(None, 1024, repeats=0)
    with pytest.raises(ValueError, match="positive"):
        bench.run_comparison(None, 0)
    with pytest.raises(ValueError, match="no benchmark case"):
        bench.run_comparison(None, 1024, cases=["nope"])


def test_run_comparison_refuses_a_run_the_disk_cannot_hold(tmp_path: pathlib.Path) -> None:
    with pytest.raises(OSError, match=r"needs about .* free"):
        bench.run_comparison(None, 1 << 50, cases=["curl"], workdir=tmp_path)
    assert list(tmp_path.iterdir()) == []  # nothing written, no server started


def _payload(network: str) -> dict[str, object]:
    return {"machine": {"network": network, "command": f"bench --network {network} --table"}}


def test_summary_keeps_the_other_networks() -> None:
    """A --summary run for wan replaces wan's section and keeps lan's (and its command)."""
    import argparse

    from resumable_media._bench import command

    args = argparse.Namespace(plot=None)
    lan = command._summary(args, [{**_payload("lan"), "rows": []}])
    assert lan.startswith("#### Network: `lan`")
    both = command._summary(args, [{**_payload("wan"), "rows": []}], lan)
    assert both.index("#### Network: `lan`") < both.index("#### Network: `wan`")
    assert both.count("#### Network:") == 2
    assert "bench --network lan --table\nbench --network wan --table" in both
    again = command._summary(args, [{**_payload("lan"), "rows": []}], both)
    assert again.count("#### Network: `lan`") == 1 and "`wan`" in again
    assert again.count("bench --network lan --table") == 1
