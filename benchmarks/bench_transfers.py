#!/usr/bin/env python3
# The full side-by-side transfer benchmark, as one command.
#
# Invariants: all parsing, measuring, verifying, cleaning up and writing is done
# by resumable_media._bench.command, which `resumable-media bench` shares (this
# script only installs the signal handlers); the exit status is 1 whenever any
# case FAILED (wrong bytes, error, timeout), so a broken transfer can never hide
# behind a table.
"""Compare resumable-media with its peers on the same loopback server (see benchmarks/README.md).

The peer table (README) for one network profile::

    python3 benchmarks/bench_transfers.py --table --network wan --repeats 5 \\
        --out benchmarks/results/peers-wan.md --json benchmarks/results/peers-wan.json \\
        --plot 'benchmarks/results/peers-wan-{workload}.png'

The API-level comparison with google-resumable-media (the older table)::

    python3 benchmarks/bench_transfers.py --size 1GiB --repeats 3 --rss \\
        --out benchmarks/results/transfers.md --json benchmarks/results/transfers.json \\
        --plot benchmarks/results/transfers.png
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys

from resumable_media._bench import command


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and write the requested outputs; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    command.add_arguments(parser)
    args = parser.parse_args(argv)
    # Ctrl-C and SIGTERM both unwind through the harness, which stops its children and
    # removes its temporary data (a job started in the background may ignore SIGINT).
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    shown = sys.argv[1:] if argv is None else argv
    try:
        return command.run(args, "python3 benchmarks/bench_transfers.py", shown)
    except ValueError as exc:
        parser.error(str(exc))
        return 2


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; temporary data removed", file=sys.stderr)
        sys.exit(130)
