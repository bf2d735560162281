"""The ``resumable-media`` command: cp, sync, ls, rm, cat, stat, du, hash, serve, demo, bench.

Invariants: exit code 0 means every object was copied and verified, 1 means at
least one transfer failed or a URL matched nothing (each failure is reported naming
the object and the reason), 2 means the command line was unusable (argparse errors
included), 130 means interrupted by Ctrl-C (143: by SIGTERM; ``cat`` exits 141 when
its reader closed the pipe).  Machine-readable output (``--json``) goes to stdout, one
line per object; everything for people (messages, the progress bar) goes to stderr.
On Ctrl-C the command stops within about a second, deletes its temp files and keeps
the accelerator's resume journals (with the partial file they describe).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from resumable_media import __version__
from resumable_media._cli import cleanup as cleanup_command
from resumable_media._cli import commands, notices
from resumable_media._cli import objects as objects_commands
from resumable_media._cli import sync as sync_command
from resumable_media._cli.copy import DEFAULT_JOBS, UsageError
from resumable_media._cli.options import parse_header, parse_size
from resumable_media._objects.transfer import TEMP_FILES

__all__ = ["build_parser", "main"]

CANCEL = threading.Event()
"""Set on Ctrl-C so worker threads stop writing."""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid integer {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _generation(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid generation {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("a generation is >= 0 (0: the object must not exist)")
    return value


def _chunk_size(text: str) -> int:
    value = parse_size(text)
    if value <= 0 or value % (256 * 1024):
        raise argparse.ArgumentTypeError(
            f"chunk size must be a positive multiple of 256KiB, got {text!r}"
        )
    return value


DEFAULT_RETRY_DEADLINE_S = 600.0
"""``--retry-deadline``'s default: upstream's total retry budget (10 minutes)."""


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds >= 0, got {text!r}")
    return value


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--endpoint",
        metavar="URL",
        help="JSON API endpoint of an emulator (anonymous); default: $STORAGE_EMULATOR_HOST, "
        "else https://storage.googleapis.com with Google default credentials",
    )
    common.add_argument(
        "-H",
        "--header",
        action="append",
        default=[],
        type=parse_header,
        metavar="'NAME: VALUE'",
        help="extra request header, repeatable (also $RESUMABLE_MEDIA_EXTRA_HEADERS)",
    )
    common.add_argument("-q", "--quiet", action="store_true", help="no progress bar or messages")
    common.add_argument(
        "--follow-symlinks",
        action="store_true",
        help="in a tree, follow symlinks to files outside it (default: skip them, warning once "
        "each, as FIFOs, sockets, devices and dangling links are)",
    )
    common.add_argument(
        "--retry-deadline",
        type=_seconds,
        default=DEFAULT_RETRY_DEADLINE_S,
        metavar="SECONDS",
        help="how long one request keeps retrying a failing server before the copy fails "
        f"(default {DEFAULT_RETRY_DEADLINE_S:.0f})",
    )
    common.add_argument(
        "--json", action="store_true", help="print one JSON summary line per object on stdout"
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of the ``resumable-media`` command."""
    common = _common_options()
    parser = argparse.ArgumentParser(
        prog="resumable-media",
        description="Fast, verified, resumable Google Cloud Storage transfers.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    cp = sub.add_parser(
        "cp",
        parents=[common],
        help="copy objects to or from gs://",
        usage="%(prog)s [options] SRC [SRC ...] DST  (or: -I DST, sources on stdin)",
        description="Copy SRC to DST, local <-> gs:// or gs:// -> gs:// (server-side, no "
        "byte through this machine).  Names follow gsutil: into an existing directory or "
        "prefix, a bucket, a DST ending in '/', or with several sources, each source keeps "
        "its last component (cp -r DIR gs://b/ makes gs://b/DIR/...); otherwise DST is the "
        "new name.  Wildcards *, ?, [abc] and ** work in gs:// URLs and local paths.",
    )
    cp.add_argument("paths", nargs="+", metavar="SRC... DST")
    cp.add_argument("-r", "-R", "--recursive", action="store_true", help="copy trees")
    cp.add_argument(
        "-I",
        "--read-paths-from-stdin",
        action="store_true",
        dest="stdin_sources",
        help="read the sources from stdin, one per line (then give only DST)",
    )
    cp.add_argument(
        "-n",
        "--no-clobber",
        action="store_true",
        help="skip destinations that exist (uploads and gs->gs send ifGenerationMatch=0)",
    )
    cp.add_argument(
        "-P",
        "--preserve-posix",
        action="store_true",
        dest="preserve",
        help="keep mtime and mode: uploads store goog-reserved-file-mtime and "
        "goog-reserved-posix-mode metadata, downloads restore them",
    )
    cp.add_argument(
        "--chunk-size",
        type=_chunk_size,
        default=32 * 2**20,
        help="chunk size (multiple of 256KiB; default 32MiB); larger objects use the accelerator",
    )
    cp.add_argument("--processes", type=_positive_int, help="accelerator worker processes")
    cp.add_argument("--threads", type=_positive_int, help="accelerator threads per process")
    cp.add_argument(
        "-j",
        "--jobs",
        type=_positive_int,
        default=DEFAULT_JOBS,
        help="small objects copied concurrently",
    )
    cp.add_argument("--checksum", choices=("crc32c", "md5", "none"), default="crc32c")
    cp.add_argument(
        "--no-resume", action="store_true", help="ignore and remove resume journals of downloads"
    )
    cp.add_argument(
        "--if-generation-match",
        type=_generation,
        metavar="GEN",
        help="upload only if the object's generation is GEN (0: it must not exist)",
    )
    cp.add_argument("--content-type", help="content type of uploads (default: guessed)")
    cp.add_argument(
        "--manifest",
        metavar="FILE",
        help="JSON-lines ledger, one line per object; a rerun skips what it records as done "
        "once the destination is confirmed to still match",
    )
    cp.add_argument(
        "--dask",
        metavar="ADDRESS",
        help="run the copies on the Dask scheduler at ADDRESS (e.g. tcp://10.0.0.5:8786); "
        "local paths must be the same on every worker",
    )
    cp.add_argument("--list-page-size", type=_positive_int, help=argparse.SUPPRESS)
    cp.set_defaults(func=commands.cp)
    sync_command.add_parser(sub, common, _chunk_size, _positive_int)
    objects_commands.add_parsers(sub, common, _chunk_size, _positive_int)
    cleanup_command.add_parser(sub, common)

    hash_ = sub.add_parser(
        "hash", parents=[common], help="print CRC32C and MD5 of local files as GCS shows them"
    )
    hash_.add_argument("files", nargs="+", metavar="FILE")
    hash_.add_argument("--hex", action="store_true", help="also print the digests in hex")
    hash_.set_defaults(func=commands.hash_files)

    serve = sub.add_parser("serve", parents=[common], help="run the loopback GCS-compatible server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=0, help="0: pick a free port")
    serve.add_argument("--root", help="directory for objects (default: a temp dir)")
    serve.add_argument(
        "--network",
        choices=("lan", "region", "wan"),
        help="simulate a link: lan 0.2 ms; region 2 ms, 200 MB/s per connection, 1.5 GB/s "
        "total; wan 30 ms, 50 MB/s per connection, 1 GB/s total (default: plain loopback)",
    )
    serve.set_defaults(func=commands.serve)

    demo = sub.add_parser(
        "demo",
        parents=[common],
        help="upload and download a test file through an embedded loopback server",
    )
    demo.add_argument("--size", type=parse_size, default=256 * 2**20, help="default 256MiB")
    demo.add_argument("--chunk-size", type=_chunk_size, default=16 * 2**20)
    demo.add_argument("--processes", type=_positive_int)
    demo.add_argument("--threads", type=_positive_int)
    demo.set_defaults(func=commands.demo)

    # The harness parses its own options (resumable_media._bench.command, shared with
    # benchmarks/bench_transfers.py), so that no other command imports it at start-up.
    bench = sub.add_parser(
        "bench",
        add_help=False,
        help="compare with the peers (rclone, obstore, pyarrow, gcsfs, gsutil, "
        "transfer_manager, grm, curl) on a loopback server, optionally over a shaped network; "
        "bench --help lists its options",
    )
    bench.set_defaults(bench_argv=[])
    bench.set_defaults(func=commands.bench)
    return parser


_STOPPING = threading.RLock()
GRACE_S = 1.0
"""After Ctrl-C, how long the transfer may take to wind down before the command exits anyway."""


_RECEIVED: list[int] = []


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGINT/SIGTERM: ask everything to stop, and make sure we are gone within the grace time."""
    _RECEIVED.append(signum)
    if CANCEL.is_set():
        _stop_now()
    CANCEL.set()
    watchdog = threading.Timer(GRACE_S, _stop_now)
    watchdog.daemon = True
    watchdog.start()
    raise KeyboardInterrupt


def _stop_now() -> None:
    """Remove temp files, say so, and exit 128+signal without waiting for blocked threads."""
    CANCEL.set()
    _STOPPING.acquire()  # one caller does the cleanup; any other blocks until the exit
    try:
        removed = TEMP_FILES.remove_all()
        sys.stderr.write(
            f"\ninterrupted: stopped; removed {len(removed)} temp file(s), resume journals kept\n"
        )
        sys.stderr.flush()
        sys.stdout.flush()
    finally:
        # Worker threads may sit in a blocking socket read; do not wait for them.
        os._exit(128 + (_RECEIVED[0] if _RECEIVED else signal.SIGINT))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command.

    Args:
        argv: Arguments without the program name (default ``sys.argv[1:]``).

    Returns:
        The exit code (0 ok, 1 a transfer failed, 2 usage error).
    """
    parser = build_parser()
    try:
        args, extras = parser.parse_known_args(argv)
        if extras:
            # ``cp SRC --quiet DST``: argparse gives a list positional only the paths before
            # the first option; the paths after it come back here, in order.
            if args.command == "cp" and not any(e.startswith("-") and e != "-" for e in extras):
                args.paths += extras
            elif args.command == "bench":
                args.bench_argv = extras  # parsed by the harness's own parser
            else:
                parser.error(f"unrecognized arguments: {' '.join(extras)}")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    args.cancel = CANCEL
    notices.install(quiet=bool(getattr(args, "quiet", False)))
    for stream in (sys.stdout, sys.stderr):
        # Names from disk or the bucket may not be printable in the terminal's encoding.
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    if args.command != "serve" and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _interrupt)
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        code: int = args.func(args)
        return code
    except UsageError as exc:
        parser.print_usage(sys.stderr)
        sys.stderr.write(f"resumable-media: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        _stop_now()
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
