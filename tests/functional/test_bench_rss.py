"""The benchmark's peak-RSS sampler counts a process and all its descendants."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

from resumable_media._bench.rss import TreeSampler, own_peak_rss_bytes, tree_cpu_seconds

MIB = 1 << 20

# A parent holding 60 MiB that starts a child holding 60 MiB; both stay alive until
# the grandchild exits, so the tree's simultaneous RSS exceeds 120 MiB.
_TREE = textwrap.dedent(
    """
    import subprocess, sys
    held = bytearray(60 << 20)
    for i in range(0, len(held), 4096):
        held[i] = 1
    child = (
        "import time\\nheld = bytearray(60 << 20)\\n"
        "for i in range(0, len(held), 4096): held[i] = 1\\n"
        "time.sleep(1.5)\\n"
    )
    subprocess.run([sys.executable, "-c", child], check=True)
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_peak_includes_descendants() -> None:
    proc = subprocess.Popen([sys.executable, "-c", _TREE])
    sampler = TreeSampler(proc.pid, interval_s=0.05).start()
    try:
        assert proc.wait(timeout=60) == 0
    finally:
        sampler.stop()
    assert sampler.peak_bytes is not None and sampler.bound_bytes is not None
    assert sampler.peak_bytes > 120 * MIB
    assert sampler.bound_bytes >= sampler.peak_bytes
    # Not wildly more than what the two processes hold (plus two interpreters).
    assert sampler.peak_bytes < 400 * MIB


def test_unsampled_tree_reports_nothing() -> None:
    sampler = TreeSampler(2**22 + 12345)  # no such pid (above the default pid_max)
    sampler.sample()
    assert sampler.peak_bytes is None and sampler.bound_bytes is None


_BURN = textwrap.dedent(
    """
    import time
    end = time.process_time() + 0.4
    while time.process_time() < end:
        pass
    time.sleep(30)
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_cpu_of_live_and_reaped_descendants_counts() -> None:
    before = tree_cpu_seconds()
    proc = subprocess.Popen([sys.executable, "-c", _BURN])
    try:
        deadline = time.monotonic() + 30
        # While the child lives, its CPU is read from /proc...
        while tree_cpu_seconds() - before < 0.35:
            assert time.monotonic() < deadline, "a busy child's CPU never showed up"
            time.sleep(0.05)
    finally:
        proc.kill()
        proc.wait()
    # ...and once reaped, from getrusage: it is not lost (nor counted twice).
    after = tree_cpu_seconds() - before
    assert 0.35 <= after < 5.0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_own_peak_is_not_inherited_from_the_parent() -> None:
    held = bytearray(200 * MIB)
    for i in range(0, len(held), 4096):
        held[i] = 1
    mine = own_peak_rss_bytes()
    assert mine is not None and mine > 200 * MIB
    code = "from resumable_media._bench.rss import own_peak_rss_bytes; print(own_peak_rss_bytes())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    # getrusage().ru_maxrss would report the parent's 200+ MiB here (Linux keeps it
    # across execve); the child's own high-water mark is a fresh interpreter's.
    assert int(out.stdout) < 100 * MIB
    del held
