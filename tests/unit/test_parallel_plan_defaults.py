"""Pure-logic tests of the large-transfer defaults: balanced part sizes and connections."""

from __future__ import annotations

import pytest

from resumable_media.parallel import plan
from resumable_media.parallel.plan import MIN_BALANCED_PART, balanced_part_size
from resumable_media.parallel.pool import default_workers

MIB = 2**20


@pytest.mark.parametrize(
    ("size", "largest", "connections", "expected"),
    [
        (256 * MIB, 32 * MIB, 32, 8 * MIB),  # one round of 32
        (256 * MIB, 32 * MIB, 24, 43 * MIB // 4),  # one round of 24 (10.75 MiB)
        (1024 * MIB, 32 * MIB, 24, 43 * MIB // 4),  # 4 rounds of 24, within 256 MiB in flight
        (1024 * MIB, 32 * MIB, 32, 8 * MIB),  # memory bound: 32 x 8 MiB in flight
        (100 * MIB, 32 * MIB, 32, 8 * MIB),  # not below the floor
        (256 * MIB, 32 * MIB, 8, 32 * MIB),  # one round of 8 x 32 MiB
        (300 * MIB, 32 * MIB, 8, 300 * MIB // 16),  # two whole rounds of 8 (18.75 MiB)
        (300 * MIB + 1, 32 * MIB, 8, 300 * MIB // 16 + 256 * 1024),  # rounded up to 256 KiB
        (10 * MIB, 256 * 1024, 32, 256 * 1024),  # a small explicit part is kept
        (256 * MIB, 32 * MIB, 1, 32 * MIB),  # one connection: nothing to balance
    ],
)
def test_balanced_part_size(size: int, largest: int, connections: int, expected: int) -> None:
    assert balanced_part_size(size, largest, connections) == expected


def test_balanced_parts_make_whole_rounds() -> None:
    for size in (64 * MIB, 256 * MIB, 1000 * MIB, 4096 * MIB + 7):
        part = balanced_part_size(size, 32 * MIB, 32)
        parts = -(-size // part)
        assert MIN_BALANCED_PART <= part <= 32 * MIB
        assert part * 32 <= plan.MAX_IN_FLIGHT_BYTES
        assert parts <= 32 or parts % 32 in (0, 31) or part == MIN_BALANCED_PART, (size, parts)


def test_defaults_keep_enough_connections_for_a_wan_link() -> None:
    # 1 GB/s over 50 MB/s streams needs >= 20 in flight (see plan.DEFAULT_CONNECTIONS).
    processes, threads = default_workers()
    assert max(1, processes) * threads >= 20
    assert plan.DEFAULT_UPLOAD_THREADS >= 20
    assert 256 * MIB // plan.DEFAULT_CHUNK_SIZE >= 16


def test_a_near_server_gets_fewer_connections() -> None:
    from resumable_media.parallel.plan import NEAR_CONNECTIONS, NEAR_LATENCY_S, connections_for

    assert connections_for(0.0002, 32) == NEAR_CONNECTIONS
    assert connections_for(0.002, 32) == NEAR_CONNECTIONS  # the region profile's 2 ms
    assert connections_for(NEAR_LATENCY_S, 32) == 32  # not sooner than the bound: far
    assert connections_for(0.030, 32) == 32
    assert connections_for(None, 32) == 32  # unknown: the default
    assert connections_for(0.0001, 1) == 1  # never more than asked for
