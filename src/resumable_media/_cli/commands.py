"""The subcommands' bodies (argparse namespace in, exit code out).

Invariants: each function returns 0, 1 or 2 per the exit-code contract of
:mod:`resumable_media.cli`; usage problems raise ``UsageError``; Ctrl-C propagates
as ``KeyboardInterrupt`` after local cleanup in ``finally`` blocks.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import stat as stat_module
import sys
from typing import Any

from resumable_media import checksums, common
from resumable_media._cli.copy import Reporter, UsageError, run_jobs, run_jobs_on
from resumable_media._cli.manifest import CpManifest
from resumable_media._cli.naming import plan_copy
from resumable_media._cli.options import headers_from_env
from resumable_media._cli.progress import ProgressBar
from resumable_media._cli.sync import dask_executor
from resumable_media._objects.client import Storage, TransferError
from resumable_media._objects.transfer import CopyOptions, resolve_checksum_option, upload_stream
from resumable_media._objects.urls import GsUrl, is_gs_url, parse_gs_url, resolve_endpoint

__all__ = ["bench", "cp", "demo", "hash_files", "serve"]

_BLOCK = 8 << 20


def _show_progress(args: argparse.Namespace) -> bool:
    return not args.quiet and sys.stderr.isatty()


def make_storage(args: argparse.Namespace) -> Storage:
    """Build the endpoint and transports from ``--endpoint``/``--header`` and the environment.

    Raises:
        UsageError: When the endpoint or the headers environment variable is malformed.
    """
    try:
        endpoint = resolve_endpoint(args.endpoint)
        headers = headers_from_env(os.environ)
    except (ValueError, argparse.ArgumentTypeError) as exc:
        raise UsageError(str(exc)) from None
    headers.update(dict(args.header))
    deadline = getattr(args, "retry_deadline", None)
    retry = None
    if deadline is not None:
        retry = common.RetryStrategy(max_cumulative_retry=deadline, deadline_s=deadline)
    return Storage(endpoint, headers, retry=retry)


def _cp_paths(args: argparse.Namespace) -> tuple[list[str], str]:
    """The sources and the destination of ``cp`` (``-I``: sources from stdin)."""
    if args.stdin_sources:
        if len(args.paths) != 1:
            raise UsageError("with -I give only the destination; the sources come from stdin")
        sources = [line.rstrip("\r\n") for line in sys.stdin]
        return [s for s in sources if s.strip()], args.paths[0]
    if len(args.paths) < 2:
        raise UsageError("give at least one SRC and a DST (or -I DST with sources on stdin)")
    return list(args.paths[:-1]), args.paths[-1]


def _stream_source(
    sources: list[str], destination: str, recursive: bool
) -> tuple[str, GsUrl] | None:
    """``(source, object)`` when ``cp`` must stream: ``-`` (stdin) or a FIFO/device source.

    Raises:
        UsageError: ``-`` with other sources, with ``-r``, or without an object name.
    """
    if "-" not in sources and not any(_is_stream(s) for s in sources):
        return None
    if len(sources) != 1 or recursive:
        raise UsageError("a stream (- or a FIFO) is copied alone and without -r")
    source = sources[0]
    if not is_gs_url(destination):
        raise UsageError(f"{source} can only be streamed to a gs:// object")
    url = parse_gs_url(destination)
    if not url.name or url.name.endswith("/"):
        if source == "-":
            raise UsageError(
                f"stdin has no name: give the object's name, e.g. {destination.rstrip('/')}/NAME"
            )
        url = GsUrl(url.bucket, url.name + pathlib.Path(source).name)
    return source, url


def _is_stream(path: str) -> bool:
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat_module.S_ISFIFO(mode) or stat_module.S_ISCHR(mode)


def _cp_stream(
    storage: Storage,
    options: CopyOptions,
    reporter: Reporter,
    args: argparse.Namespace,
    source: str,
    url: GsUrl,
) -> int:
    """Stream stdin or a FIFO to one object (pipelined upload, size unknown until EOF)."""
    content_type = args.content_type or "application/octet-stream"
    label = "stdin" if source == "-" else source
    try:
        if source == "-":
            result = upload_stream(storage, sys.stdin.buffer, label, url, options, content_type)
        else:
            if not args.quiet:
                reporter.note(f"{source}: a FIFO or device; streaming it (waiting for a writer)")
            with open(source, "rb") as stream:  # blocks until a writer opens a FIFO
                result = upload_stream(storage, stream, label, url, options, content_type)
    except TransferError as exc:
        reporter.failure(label, str(url), exc)
        return 1
    reporter.success(result)
    return 0


def _cp_to_stdout(
    storage: Storage,
    options: CopyOptions,
    reporter: Reporter,
    sources: list[str],
    args: argparse.Namespace,
) -> int:
    """``cp gs://b/o -``: the object to stdout, in order, by ``cat``'s code path.

    One metadata GET gives the size, generation, CRC32C and encoding; then ranged GETs of
    8 MiB, ``--threads`` (default 8) at once and pinned to that generation, start together
    (at most that many chunks in memory); a gzip-stored object is one decoding GET.  CRC32C
    is checked before the last bytes are written, so a corrupted object ends with an error
    (exit 1) that says how much of stdout is not to be trusted.
    """
    from resumable_media._cli.objects import (
        StreamFailed,
        nothing_matched,
        stream_failure,
        stream_object,
    )
    from resumable_media._streams import DEFAULT_READ_CHUNK

    if len(sources) != 1 or args.recursive or not is_gs_url(sources[0]):
        raise UsageError("cp ... - copies one gs:// object to stdout (no -r)")
    url = parse_gs_url(sources[0])
    if not url.name or url.name.endswith("/"):
        raise UsageError(f"{sources[0]} names a bucket or prefix; - needs one object")
    out = sys.stdout.buffer
    try:
        meta = storage.stat(url)
        if meta is None:
            raise TransferError(str(url), nothing_matched(url), 404)
        stream_object(
            storage,
            url,
            meta,
            out,
            chunk_size=DEFAULT_READ_CHUNK,
            threads=args.threads or 8,
            checksum=options.checksum,
        )
        out.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except TransferError as exc:
        reporter.failure(str(url), "-", exc)
        return 1
    except StreamFailed as failed:
        reason = stream_failure(failed.__cause__ or failed, url, meta or {}, failed.written, "cp")
        reporter.failure(str(url), "-", TransferError(str(url), reason))
        return 1
    return 0


def cp(args: argparse.Namespace) -> int:
    """``cp SRC... DST``: copy objects, files and (``-r``) trees, any direction with gs://."""
    if args.no_clobber and args.if_generation_match is not None:
        raise UsageError("-n and --if-generation-match cannot be combined; -n means 0")
    sources, destination = _cp_paths(args)
    storage = make_storage(args)
    options = CopyOptions(
        chunk_size=args.chunk_size,
        processes=args.processes,
        threads=args.threads,
        checksum=resolve_checksum_option(args.checksum),
        resume=not args.no_resume,
        if_generation_match=args.if_generation_match,
        content_type=args.content_type,
        no_clobber=args.no_clobber,
        preserve=args.preserve,
    )
    reporter = Reporter(json_lines=args.json, quiet=args.quiet)
    streamed = _stream_source(sources, destination, args.recursive)
    if streamed is not None:
        return _cp_stream(storage, options, reporter, args, *streamed)
    if destination == "-":
        return _cp_to_stdout(storage, options, reporter, sources, args)
    try:
        jobs, refused = plan_copy(
            storage,
            sources,
            destination,
            args.recursive,
            reporter,
            page_size=args.list_page_size,
        )
    except TransferError as exc:
        reporter.failure(exc.target, destination, exc)
        return 1
    bar = ProgressBar(
        sum(j.size for j in jobs), len(jobs), enabled=_show_progress(args) and bool(jobs)
    )
    reporter.bar = bar
    manifest = CpManifest(args.manifest) if args.manifest else None
    for error in refused:
        reporter.failure(error.target, destination, error)
        if manifest is not None:
            manifest.refused(error, destination)
    client = None
    try:
        if args.dask:
            executor, client = dask_executor(args.dask)
            run_jobs_on(
                executor, storage, jobs, options, reporter=reporter, bar=bar, manifest=manifest
            )
        else:
            run_jobs(
                storage,
                jobs,
                options,
                reporter=reporter,
                bar=bar,
                cancel=args.cancel,
                concurrency=args.jobs,
                manifest=manifest,
            )
    finally:
        bar.close()
        if manifest is not None:
            manifest.close()
        if client is not None:
            client.close()
    return 1 if reporter.failures else 0


def _hash_file(path: str) -> tuple[checksums.Hasher, checksums.Hasher]:
    crc, md5 = checksums.new_hasher("crc32c"), checksums.new_hasher("md5")
    buffer = bytearray(_BLOCK)
    view = memoryview(buffer)
    with open(path, "rb") as stream:
        while count := stream.readinto(buffer):
            crc.update(view[:count])
            md5.update(view[:count])
    return crc, md5


def hash_files(args: argparse.Namespace) -> int:
    """``hash FILE…``: CRC32C and MD5 in base64 (as GCS shows them), optionally hex."""
    failed = False
    for path in args.files:
        try:
            crc, md5 = _hash_file(path)
        except OSError as exc:
            sys.stderr.write(f"error: {path}: {exc.strerror or exc}\n")
            failed = True
            continue
        if args.json:
            line: dict[str, Any] = {"file": path, "crc32c": crc.b64digest(), "md5": md5.b64digest()}
            if args.hex:
                line.update(crc32c_hex=crc.hexdigest(), md5_hex=md5.hexdigest())
            print(json.dumps(line))
            continue
        print(f"Hashes [base64] for {path}:")
        print(f"\tHash (crc32c):\t{crc.b64digest()}")
        print(f"\tHash (md5):\t{md5.b64digest()}")
        if args.hex:
            print(f"\tHash (crc32c, hex):\t{crc.hexdigest()}")
            print(f"\tHash (md5, hex):\t{md5.hexdigest()}")
    sys.stdout.flush()
    return 1 if failed else 0


def serve(args: argparse.Namespace) -> int:
    """``serve``: run the loopback server until SIGINT/SIGTERM (URL printed first)."""
    from resumable_media.testing import serve as run_server

    banner = (
        ""
        if args.quiet
        else "serving until Ctrl-C; the endpoint URL is the first line on stdout.\n"
        "create a bucket: curl -X POST -H 'content-type: application/json' "
        '-d \'{"name": "my-bucket"}\' URL/storage/v1/b\n'
        "then: STORAGE_EMULATOR_HOST=URL resumable-media cp FILE gs://my-bucket/\n"
    )
    # The banner goes out once the port is bound: a taken port gets the error line alone.
    run_server(host=args.host, port=args.port, root=args.root, network=args.network, banner=banner)
    return 0


def demo(args: argparse.Namespace) -> int:
    """``demo``: embedded server, pipelined upload, parallel download, verify, table."""
    from resumable_media._cli.demo import run_demo

    return run_demo(args, show_progress=_show_progress(args))


def bench(args: argparse.Namespace) -> int:
    """``bench``: the harness of benchmarks/bench_transfers.py, its parser included."""
    from resumable_media._bench.command import BenchUsageError, add_arguments, run

    parser = argparse.ArgumentParser(
        prog="resumable-media bench",
        description="Compare resumable-media with its peers on the same loopback server: the "
        "options and code of benchmarks/bench_transfers.py, with a 64MiB default size.",
    )
    add_arguments(parser, default_size="64MiB")
    try:
        options = parser.parse_args(args.bench_argv)
    except SystemExit as exc:  # --help (0) or a usage error (2), already printed
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return run(options, "resumable-media bench", args.bench_argv)
    except (BenchUsageError, ValueError) as exc:
        parser.print_usage(sys.stderr)
        sys.stderr.write(f"resumable-media bench: error: {exc}\n")
        return 2
