# Peak-memory sampling and CPU accounting of a process tree through /proc (Linux).
#
# Invariants: a sampler only reads /proc, never signals anything; "peak" is the
# largest sum of VmRSS over the root process and all its live descendants seen at
# one sample; "bound" is the sum over every process ever seen of its own VmHWM
# (high-water mark) -- always >= the true simultaneous peak for processes sampled
# at least once near their end; on systems without /proc both stay None.
# CPU of a tree = this process + its reaped children (getrusage) + every live
# descendant's own and reaped-children time (/proc stat), so a persistent worker
# pool is counted as fully as one that exits inside the measured call.
"""Sample the resident memory, and account the CPU time, of a process and its descendants."""

from __future__ import annotations

import os
import resource
import threading

__all__ = [
    "MEMORY_SAMPLE_S",
    "THROUGHPUT_SAMPLE_S",
    "TreeSampler",
    "own_peak_rss_bytes",
    "process_cpu_seconds",
    "tree_cpu_seconds",
]

THROUGHPUT_SAMPLE_S = 0.25
"""Sampling interval during throughput cases (light: a sample scans all of /proc)."""

MEMORY_SAMPLE_S = 0.05
"""Sampling interval during the peak-memory case."""

_PROC = "/proc"


def _stats() -> dict[int, tuple[int, int]]:
    """Map pid -> (parent pid, utime + stime + cutime + cstime in clock ticks)."""
    stats: dict[int, tuple[int, int]] = {}
    for entry in os.listdir(_PROC):
        if not entry.isdigit():
            continue
        try:
            with open(f"{_PROC}/{entry}/stat", "rb") as stat:
                raw = stat.read()
        except OSError:
            continue
        # "pid (comm) state ppid ... utime stime cutime cstime ...": comm may hold
        # spaces and parentheses; field n (1-based, proc(5)) is fields[n - 3].
        fields = raw[raw.rfind(b")") + 2 :].split()
        if len(fields) > 14:
            stats[int(entry)] = (int(fields[1]), sum(int(f) for f in fields[11:15]))
    return stats


def _descendants(root: int, stats: dict[int, tuple[int, int]]) -> list[int]:
    """``root`` and every process below it, from one snapshot of ``stats``."""
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in stats.items():
        children.setdefault(parent, []).append(pid)
    tree, pending = [], [root]
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending.extend(children.get(pid, ()))
    return tree


def tree_cpu_seconds() -> float:
    """CPU seconds (user + system) used so far by this process and all its descendants.

    Returns:
        This process's time, plus its reaped children's, plus, where /proc exists,
        every live (or zombie) descendant's own and reaped-children time.
    """
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    if os.path.isdir(_PROC):
        stats = _stats()
        me = os.getpid()
        ticks = sum(stats[pid][1] for pid in _descendants(me, stats) if pid != me and pid in stats)
        total += ticks / os.sysconf("SC_CLK_TCK")
    return total


def _memory_kib(pid: int) -> tuple[int, int] | None:
    """Return (VmRSS, VmHWM) of ``pid`` in KiB, or None if it is gone or a zombie."""
    rss = hwm = None
    try:
        with open(f"{_PROC}/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith(b"VmHWM:"):
                    hwm = int(line.split()[1])
    except (OSError, ValueError):
        return None
    if rss is None or hwm is None:
        return None
    return rss, hwm


def process_cpu_seconds(pid: int) -> float | None:
    """CPU seconds (user + system, all threads) used so far by ``pid``, or None if unknown."""
    try:
        with open(f"{_PROC}/{pid}/stat", "rb") as stat:
            raw = stat.read()
    except OSError:
        return None
    fields = raw[raw.rfind(b")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_peak_rss_bytes() -> int | None:
    """This process's peak RSS (VmHWM), or None without /proc.

    Not ``getrusage().ru_maxrss``: Linux carries that across execve, so a freshly
    started child would report its parent's peak.
    """
    memory = _memory_kib(os.getpid())
    return memory[1] * 1024 if memory is not None else None


class TreeSampler:
    """Background thread sampling the RSS of ``root_pid`` and its descendants.

    Use ``start()`` right after the root process starts and ``stop()`` once it has
    exited; then read ``peak_bytes`` and ``bound_bytes``.
    """

    def __init__(self, root_pid: int, interval_s: float = 0.1) -> None:
        """Prepare to sample the tree rooted at ``root_pid`` every ``interval_s`` seconds."""
        self._root = root_pid
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-rss", daemon=True)
        self._hwm_kib: dict[int, int] = {}
        self._peak_kib = 0
        self.available = os.path.isdir(f"{_PROC}/{os.getpid()}")

    def start(self) -> TreeSampler:
        """Start sampling; returns self."""
        if self.available:
            self._thread.start()
        return self

    def sample(self) -> None:
        """Take one sample now (also called by the background thread)."""
        total = 0
        for pid in _descendants(self._root, _stats()):
            memory = _memory_kib(pid)
            if memory is None:
                continue
            rss, hwm = memory
            total += rss
            self._hwm_kib[pid] = max(hwm, self._hwm_kib.get(pid, 0))
        self._peak_kib = max(self._peak_kib, total)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self._interval)

    def stop(self) -> None:
        """Stop sampling and wait for the thread."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    @property
    def peak_bytes(self) -> int | None:
        """Largest simultaneous RSS of the tree seen at one sample, or None if unsampled."""
        return self._peak_kib * 1024 if self.available and self._hwm_kib else None

    @property
    def bound_bytes(self) -> int | None:
        """Sum of every seen process's own high-water mark, or None if unsampled."""
        return sum(self._hwm_kib.values()) * 1024 if self.available and self._hwm_kib else None
