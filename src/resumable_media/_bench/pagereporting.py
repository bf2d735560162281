# The guest's free-page reporting, which can dominate a loopback benchmark on a microVM.
#
# Invariants: nothing here changes the machine unless the caller asks for "held"; a
# changed setting is always put back (context manager exit, whatever happened); the
# description returned is what the report prints, so a reader always knows which state
# the numbers were measured in.
"""Describe, and optionally hold off, the virtio-balloon free-page reporting of a VM guest.

Some VM guests (the Firecracker microVMs these benchmarks were written on among them) hand
every freed 2 MiB block back to the host at once (``page_reporting_order=9``).  The next
time the guest uses that memory -- for example the page cache of a file being downloaded
or of an object the server stores -- the host has to fault it in again, and the guest is
charged 2-3 s of *system* time per GiB.  That cost lands on whichever case happens to get
cold memory, so it makes medians bimodal and compresses every ratio towards 1.

"held" raises the reporting order to the largest the kernel accepts, so blocks of ordinary
sizes are no longer reported, then touches ``prime_bytes`` of anonymous memory once so the
guest's free memory is backed by the host again.  Every case of the run, peers and ours,
then runs on the same warm memory.  The original order is restored afterwards.
"""

from __future__ import annotations

import contextlib
import logging
import mmap
from collections.abc import Iterator
from pathlib import Path

__all__ = ["PARAMETERS", "describe", "hold"]

_LOGGER = logging.getLogger(__name__)

PARAMETERS = Path("/sys/module/page_reporting/parameters")
"""Where the kernel exposes the page-reporting settings (absent when not built in)."""

_ORDER = PARAMETERS / "page_reporting_order"
_REPORTED = PARAMETERS / "reported_kib"


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii").strip()
    except OSError:
        return None


def describe() -> str:
    """One line for the report: whether free pages are reported to the host, and in what blocks."""
    order = _read(_ORDER)
    if order is None:
        return "no free-page reporting (not a balloon guest, or not exposed)"
    try:
        block = (4096 << int(order)) // 2**20
    except ValueError:
        return f"page_reporting_order={order}"
    reported = _read(_REPORTED)
    extra = f", {int(reported) / 2**20:.0f} GiB reported since boot" if reported else ""
    return (
        f"free blocks of >= {block} MiB returned to the host (page_reporting_order={order}{extra})"
    )


def _prime(prime_bytes: int) -> None:
    """Touch ``prime_bytes`` of anonymous memory once, then free it."""
    step = mmap.PAGESIZE
    with mmap.mmap(-1, prime_bytes) as memory:
        for offset in range(0, prime_bytes, step):
            memory[offset] = 1


@contextlib.contextmanager
def hold(prime_bytes: int) -> Iterator[str]:
    """Hold off free-page reporting for the duration of the block, and warm free memory.

    Args:
        prime_bytes: Anonymous memory to touch once after reporting is held (bytes).

    Yields:
        A description of the state the block runs in, for the report.

    Raises:
        PermissionError: If the setting exists but cannot be changed (not root).
    """
    original = _read(_ORDER)
    if original is None:
        yield describe()
        return
    chosen: str | None = None
    for order in range(16, int(original), -1):
        try:
            _ORDER.write_text(f"{order}\n", encoding="ascii")
        except PermissionError:
            raise PermissionError(
                f"holding free-page reporting needs root (cannot write {_ORDER})"
            ) from None
        except OSError:
            continue  # EINVAL: above the largest order this kernel accepts
        chosen = str(order)
        break
    try:
        if chosen is None:
            yield f"held: not possible ({describe()})"
            return
        _prime(prime_bytes)
        _LOGGER.info("free-page reporting held at order %s (was %s)", chosen, original)
        yield (
            f"held for the run: page_reporting_order {original} -> {chosen} "
            f"(no ordinary block reported), {prime_bytes / 2**30:.0f} GiB of free memory "
            f"warmed once before the first case; restored to {original} afterwards"
        )
    finally:
        if chosen is not None:
            with contextlib.suppress(OSError):
                _ORDER.write_text(f"{original}\n", encoding="ascii")
