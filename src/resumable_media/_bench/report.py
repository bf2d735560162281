# Rendering benchmark rows: a markdown report and a PNG bar chart.
#
# Invariants: rendering never re-measures or re-orders runs; every row appears
# (not-available and failed rows with their reason); every ratio shown is a
# ratio of two medians from the same run; matplotlib is imported only inside
# plot(), so the harness works without it.
"""Markdown tables and PNG charts of benchmark rows."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from resumable_media._bench.cases import REFERENCES, RSS_LIMIT_BYTES, TARGETS, WORKLOADS
from resumable_media._bench.machine import describe_machine
from resumable_media._bench.model import MB, MIB, BenchRow, format_size
from resumable_media._bench.rss import MEMORY_SAMPLE_S, THROUGHPUT_SAMPLE_S

__all__ = ["PlotUnavailable", "format_table", "plot"]

_GROUP_TITLES = (("download", "Downloads"), ("upload", "Uploads"))
_SECTIONS = tuple(
    (workload, group, heading) for workload in WORKLOADS for group, heading in _GROUP_TITLES
)


def _shape(rows: Sequence[BenchRow]) -> str:
    """``1 GiB object`` or ``2000 x 64 KiB objects`` for the rows of one section."""
    first = rows[0]
    if first.objects <= 1:
        return f"one {format_size(first.size_bytes)} object"
    return f"{first.objects:,} x {format_size(first.size_bytes // first.objects)} objects"


def _sections(rows: Sequence[BenchRow]) -> list[tuple[str, str, list[BenchRow]]]:
    """(workload, heading, rows) of every non-empty (workload, direction) section."""
    out = []
    for workload, group, heading in _SECTIONS:
        chosen = [row for row in rows if row.group == group and row.workload == workload]
        if chosen:
            out.append((workload, f"{heading}: {_shape(chosen)}", chosen))
    return out


def _link_bound(row: BenchRow, network: str) -> float | None:
    """Objects/s the shaped link allows this row: its objects in flight, each paying the
    round trip and its bytes at the per-connection cap, within the total cap; None when
    there is no profile, one object, or no fixed concurrency."""
    if row.objects <= 1 or not row.concurrency or network in ("", "none"):
        return None
    from resumable_media.testing.network import PRESETS

    profile = PRESETS.get(network)
    if profile is None:
        return None
    size = row.size_bytes / row.objects
    per_object_s = profile.latency_s
    if profile.connection_bytes_per_s:
        per_object_s += size / profile.connection_bytes_per_s
    if per_object_s <= 0:
        return None
    bound = row.concurrency / per_object_s
    if profile.total_bytes_per_s:
        bound = min(bound, profile.total_bytes_per_s / size)
    return bound


def _total_cap(network: str) -> float | None:
    """The shaped link's total cap in B/s, or None."""
    if network in ("", "none"):
        return None
    from resumable_media.testing.network import PRESETS

    profile = PRESETS.get(network)
    return profile.total_bytes_per_s if profile is not None else None


def _rate(row: BenchRow) -> str:
    """MB/s, plus objects/s for a many-object row."""
    if row.median_mbps is None:
        return "-"
    text = f"{row.median_mbps:,.0f} MB/s"
    if row.objects > 1 and row.median_objects_per_s is not None:
        text += f", {row.median_objects_per_s:,.0f} obj/s"
    return text


class PlotUnavailable(ImportError):
    """matplotlib is not installed, so no chart can be drawn (an ImportError)."""


def _mbps(value: float | None) -> str:
    return f"{value:,.0f}" if value is not None else "-"


def _mib(value: int | None) -> str:
    return f"{value / MIB:,.0f}" if value is not None else "-"


def _cpu(value: float | None) -> str:
    return f"{value:.2f}" if value is not None else "-"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _verdict(ratio: float | None, minimum: float) -> str:
    if ratio is None:
        return "not measured"
    return "met" if ratio >= minimum else "**MISSED**"


def _throughput_table(rows: Sequence[BenchRow], network: str = "") -> list[str]:
    bounds = {row.case_id: _link_bound(row, network) for row in rows}
    cap = _total_cap(network)
    shaped = cap is not None or any(bound is not None for bound in bounds.values())
    lines = [
        "| Case | Tool | Transfer | Median wall s | Throughput (median) | Runs (s) "
        "| Client CPU s/GiB | Server CPU s/GiB | Peak RSS MiB | Ours / this "
        + ("| Of the link's bound " if shaped else "")
        + "| Promised ratio | Target |",
        "|---|---|---|---:|---:|---|---:|---:|---:|---:|"
        + ("---:|" if shaped else "")
        + "---|---|",
    ]
    present = {row.case_id for row in rows}
    for row in rows:
        runs = " / ".join(f"{s:.3f}" for s in row.seconds) if row.ok else row.status
        ratio = f"{row.ratio:.2f}x vs {row.peer}" if row.ratio is not None else ""
        target = ""
        # A promise whose peer was not selected in this run is not this table's business.
        if row.target is not None and row.peer in present:
            target = f">= {row.target:g}x: {_verdict(row.ratio, row.target)}"
        if row.reference is None:
            versus = "(reference)" if row.ours and row.ok else ""
        else:
            versus = f"{row.vs_ours:.2f}x" if row.vs_ours is not None else "-"
        median = f"{row.median_seconds:.3f}" if row.median_seconds is not None else "-"
        of_bound = ""
        bound = bounds[row.case_id]
        if shaped:
            of_bound = "| - "
            if bound is not None and row.ok and row.median_objects_per_s is not None:
                of_bound = f"| {row.median_objects_per_s / bound:.0%} of {bound:,.0f} obj/s "
            elif row.objects <= 1 and cap and row.ok and row.median_mbps is not None:
                of_bound = f"| {row.median_mbps * MB / cap:.0%} of the {cap / 1e9:g} GB/s cap "
        lines.append(
            f"| `{row.case_id}` | {row.tool} | {_cell(row.label)} | {median} "
            f"| {_rate(row)} | {runs} | {_cpu(row.cpu_s_per_gib)} "
            f"| {_cpu(row.server_cpu_s_per_gib)} | {_mib(row.peak_rss_bytes)} "
            f"| {versus} {of_bound}| {ratio} | {target} |"
        )
    return lines


def _summary_table(rows: Sequence[BenchRow]) -> list[str]:
    """One line per section: our reference row, the fastest other peer, and their ratio."""
    lines = [
        "| Workload | Ours | Fastest peer | Ours / fastest peer | Ours CPU s/GiB |",
        "|---|---|---|---:|---:|",
    ]
    for workload, heading, chosen in _sections(rows):
        reference_id = REFERENCES.get((workload, chosen[0].group))
        ours = next((r for r in chosen if r.case_id == reference_id), None)
        if ours is None or not ours.ok:
            continue
        peers = [r for r in chosen if not r.ours and r.ok and r.median_mbps]
        best = max(peers, key=lambda r: r.median_mbps or 0.0, default=None)
        shown = "-"
        ratio = "-"
        if best is not None:
            shown = f"{best.tool}: {_cell(best.label)}, {_rate(best)}"
            ratio = f"{best.vs_ours:.2f}x" if best.vs_ours is not None else "-"
        lines.append(
            f"| {heading} | {_cell(ours.label)}, {_rate(ours)} | {shown} | {ratio} "
            f"| {_cpu(ours.cpu_s_per_gib)} |"
        )
    return lines


def _memory_table(rows: Sequence[BenchRow]) -> list[str]:
    lines = [
        "| Case | Object | Median MB/s | Peak RSS of the process tree, MiB "
        "| Sum of per-process peaks seen, MiB | Limit |",
        "|---|---|---:|---:|---:|---|",
    ]
    for row in rows:
        if row.peak_rss_bytes is None:
            verdict = "not measured" if row.ok else row.status
        else:
            verdict = "met" if row.peak_rss_bytes <= RSS_LIMIT_BYTES else "**MISSED**"
        lines.append(
            f"| `{row.case_id}` | {format_size(row.size_bytes)} | {_mbps(row.median_mbps)} "
            f"| {_mib(row.peak_rss_bytes)} | {_mib(row.peak_rss_bound_bytes)} "
            f"| <= {RSS_LIMIT_BYTES // MIB} MiB: {verdict} |"
        )
    return lines


def _targets_table(rows: Sequence[BenchRow]) -> list[str]:
    by_id = {row.case_id: row for row in rows}
    lines = [
        "| Ours | Peer | Ratio of medians | Target | Result | CPU per byte, peer / ours |",
        "|---|---|---:|---|---|---:|",
    ]
    for target in TARGETS:
        ours, peer = by_id.get(target.ours), by_id.get(target.peer)
        if ours is None or peer is None:
            continue
        ratio = None
        if ours.ok and peer.ok and ours.median_mbps and peer.median_mbps:
            ratio = ours.median_mbps / peer.median_mbps
        shown = f"{ratio:.2f}x" if ratio is not None else f"- ({ours.status} / {peer.status})"
        # Less sensitive to a busy machine than wall time: how much less CPU we spend.
        cpu = "-"
        if ratio is not None and ours.cpu_s_per_gib and peer.cpu_s_per_gib:
            cpu = f"{peer.cpu_s_per_gib / ours.cpu_s_per_gib:.2f}x"
        lines.append(
            f"| `{target.ours}` | `{target.peer}` | {shown} | >= {target.minimum:g}x "
            f"| {_verdict(ratio, target.minimum)} | {cpu} |"
        )
    return lines


def format_table(
    rows: Sequence[BenchRow],
    *,
    machine: Mapping[str, str] | None = None,
    title: str = "Transfer benchmark: resumable-media vs peers",
) -> str:
    """Render benchmark rows as a markdown report.

    Args:
        rows: Rows from :func:`run_comparison`.
        machine: Facts about the machine (default: :func:`describe_machine` now).
        title: The report's heading.

    Returns:
        Markdown: method, a table per group (downloads, uploads, peak memory), the
        promised ratios, every unavailable or failed case with its reason, and the machine.
    """
    facts = describe_machine() if machine is None else machine
    repeats = max((len(row.seconds) for row in rows), default=0)
    shapes = [heading.split(": ", 1)[1] for _, heading, _ in _sections(rows)]
    shapes = list(dict.fromkeys(shapes))
    network = facts.get("network", "")
    link = f"the shaped network `{network}`" if network and network != "none" else "plain loopback"
    out = [
        f"## {title}",
        "",
        f"Random data ({', '.join(shapes) or '-'}) on one loopback server over {link}; "
        "every case of a workload reads (or writes) the same objects in the same run, "
        f"{repeats} timed run(s) per case, each run in a fresh process, the case order "
        "reversed on every other repeat, its data re-read (warm page cache) and `sync` before "
        "each run. Every download and upload "
        "is verified byte-exact (size + CRC32C of every object) before its time counts. "
        "Peers run at their defaults unless the label says otherwise; CLI tools (rclone, "
        "gsutil, curl, our `cp`) are timed from their start, as a user waits for them. "
        "Ours / this: the median throughput of our row marked (reference) in the section "
        "over this row's, > 1 when ours is faster. Timed: the transfer "
        "call only (building clients and sessions is not timed; process pools a tool starts "
        "inside that call are). CPU s/GiB: median user + system time of the client's whole "
        "process tree (workers included, server excluded) during the timed call; server CPU: "
        "the loopback server process over the whole run (it shares the same cores). "
        "The embedded server runs without upload MD5 (CRC32C still verified), so upload "
        "cases measure the clients, not the server's single MD5 stream. "
        "MB/s = 10^6 B/s. "
        "Ratios divide our median by the named peer's median from this same run. Peak RSS: "
        f"sum over the case's process tree (workers included), sampled every "
        f"{THROUGHPUT_SAMPLE_S * 1000:.0f} ms, and never less than the case process's own "
        "peak (VmHWM); curl's figure includes the small Python process that starts it.",
        "",
    ]
    summary = _summary_table(rows)
    if len(summary) > 2:
        out += ["### Summary", "", *summary, ""]
    for _, heading, grouped in _sections(rows):
        out += [f"### {heading}", "", *_throughput_table(grouped, network), ""]
    memory = [row for row in rows if row.group == "memory"]
    if memory:
        heading = f"### Peak memory (sampled every {MEMORY_SAMPLE_S * 1000:.0f} ms)"
        out += [heading, "", *_memory_table(memory), ""]
    targets = _targets_table(rows)
    if len(targets) > 2:
        out += ["### Promised ratios", "", *targets, ""]
    problems = [row for row in rows if not row.ok]
    if problems:
        out += ["### Not measured", ""]
        out += [f"- `{row.case_id}` ({row.status}): {_cell(row.detail)}" for row in problems]
        out.append("")
    out += ["### Machine", "", "| | |", "|---|---|"]
    out += [f"| {_cell(key)} | {_cell(value)} |" for key, value in facts.items()]
    out.append("")
    return "\n".join(out)


def plot(
    rows: Sequence[BenchRow],
    path: str | os.PathLike[str],
    *,
    machine: Mapping[str, str] | None = None,
    workload: str | None = None,
) -> None:
    """Draw median (bar) and best (tick) throughput of every measured row as a PNG chart.

    One panel per (workload, direction); small objects in objects/s, the rest in MB/s.

    Args:
        rows: Rows from :func:`run_comparison`.
        path: Where to write the PNG.
        machine: Facts for the caption (default: :func:`describe_machine` now).
        workload: Draw only this workload's panels (``large``, ``small``, ``medium``).

    Raises:
        PlotUnavailable: If matplotlib is not installed.
        ValueError: If no row has a measurement to draw.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise PlotUnavailable(
            "plotting needs matplotlib: pip install 'resumable-media[bench]' (or matplotlib)"
        ) from exc
    panels = [
        (name, heading, [row for row in chosen if row.ok])
        for name, heading, chosen in _sections(rows)
        if workload is None or name == workload
    ]
    panels = [(w, heading, measured) for w, heading, measured in panels if measured]
    if not panels:
        raise ValueError("no benchmark row has a measurement to plot")
    facts = describe_machine() if machine is None else machine
    heights = [max(1.6, 0.45 * len(measured) + 0.9) for _, _, measured in panels]
    fig, axes = plt.subplots(
        len(panels), 1, figsize=(10, sum(heights) + 0.8), height_ratios=heights, squeeze=False
    )
    for ax, (name, heading, measured) in zip(axes[:, 0], panels, strict=True):
        labels = [f"{row.tool}\n{row.label}" for row in measured]
        # Small objects are counted, anything larger is measured in bytes.
        per_object = name == "small"
        unit = "objects/s" if per_object else "MB/s (10^6 B/s)"
        scale = [
            (row.objects / row.size_bytes * 1e6) if per_object and row.size_bytes else 1.0
            for row in measured
        ]
        medians = [(row.median_mbps or 0.0) * k for row, k in zip(measured, scale, strict=True)]
        bests = [(row.best_mbps or 0.0) * k for row, k in zip(measured, scale, strict=True)]
        colors = ["#1f6feb" if row.ours else "#9a9a9a" for row in measured]
        positions = list(range(len(measured)))[::-1]
        ax.barh(positions, medians, color=colors, height=0.65)
        ax.plot(bests, positions, "k|", markersize=14, label="best run")
        for y, median, best, row in zip(positions, medians, bests, measured, strict=True):
            note = f"  {median:,.0f} (best {best:,.0f})"
            if row.vs_ours is not None:
                note += f"  (ours / this: {row.vs_ours:.2f}x)"
            ax.text(max(median, best), y, note, va="center", fontsize=8)
        ax.set_yticks(positions, labels, fontsize=7)
        ax.set_xlim(0, max(bests) * 1.75)
        ax.set_xlabel(f"{unit}, median of runs; tick = best run")
        ax.set_title(f"{heading} (blue: resumable-media, grey: peers)", fontsize=10)
        ax.legend(loc="lower right", fontsize=7)
    network = facts.get("network", "none")
    fig.suptitle(
        f"network {network}; {facts.get('CPU', 'unknown CPU')}, {facts.get('cores', '?')} cores, "
        f"{facts.get('Python', '?')}; load average at start "
        f"{facts.get('load average (1/5/15 min)', '?')}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(os.fspath(path), dpi=110)
    plt.close(fig)
