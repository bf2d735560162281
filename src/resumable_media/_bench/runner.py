# The comparison loop: one server, each workload's objects, every case, N alternating
# repeats.
#
# Invariants: every case of a workload reads the same objects from the same server
# (or uploads the same source files to it) -- one large object, or many under a
# prefix; every peer goes through the same (optionally shaped) server; each timed
# run happens in a fresh child process after os.sync(), with the previous run's
# output already deleted; the
# case order is reversed on every other repeat; every output is verified
# byte-exact before the timing counts, and any failure marks the row FAILED with
# the reason (nothing is dropped silently); all temporary data lives in one
# temporary directory that is removed at the end, whatever happens.
"""Run the side-by-side transfer comparison."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from resumable_media._bench.cases import REFERENCES, RSS_CASE, WORKLOADS, select_cases
from resumable_media._bench.model import (
    MB,
    STATUS_FAILED,
    STATUS_OK,
    STATUS_UNAVAILABLE,
    BenchRow,
    CaseContext,
    CaseSpec,
    format_size,
)
from resumable_media._bench.rss import (
    MEMORY_SAMPLE_S,
    THROUGHPUT_SAMPLE_S,
    TreeSampler,
    process_cpu_seconds,
)
from resumable_media._bench.store import BenchServer, EmbeddedServer, RemoteServer, child_env
from resumable_media._bench.verify import (
    VerificationError,
    file_crc32c,
    verify_download,
    verify_download_tree,
    verify_object,
    verify_objects,
    write_random_file,
    write_random_tree,
)

__all__ = ["run_comparison"]

_log = logging.getLogger(__name__)

Progress = Callable[[str], None]


@dataclasses.dataclass(slots=True)
class _Tally:
    """Mutable per-case accumulator while the repeats run."""

    spec: CaseSpec
    size_bytes: int
    objects: int = 1
    seconds: list[float] = dataclasses.field(default_factory=list)
    cpu_seconds: list[float] = dataclasses.field(default_factory=list)
    server_cpu_seconds: list[float] = dataclasses.field(default_factory=list)
    status: str = STATUS_OK
    detail: str = ""
    peak_rss: int | None = None
    peak_bound: int | None = None

    @property
    def done(self) -> bool:
        return self.status != STATUS_OK

    def note_rss(self, sampler: TreeSampler, result: dict[str, Any]) -> None:
        # The child's own peak floors the sampled figures: a run shorter than the
        # sampling interval is still charged at least what its main process reached.
        own = int(result.get("own_peak_rss") or 0)
        for attr, sampled in (
            ("peak_rss", sampler.peak_bytes),
            ("peak_bound", sampler.bound_bytes),
        ):
            value = max(sampled or 0, own)
            if value:
                setattr(self, attr, max(value, getattr(self, attr) or 0))


@dataclasses.dataclass(frozen=True, slots=True)
class _Subject:
    """What download cases read on the server; its local copy feeds uploads.

    A single object (``names`` empty: ``name`` on the server, ``path`` the local file), or
    many (``prefix + n`` on the server and ``path / n`` locally for each ``n`` in names).
    """

    name: str
    path: Path
    size_bytes: int
    crc32c: int
    workload: str = "large"
    names: tuple[str, ...] = ()
    prefix: str = ""
    expected: dict[str, tuple[int, int]] = dataclasses.field(default_factory=dict)

    @property
    def total_bytes(self) -> int:
        return self.size_bytes * len(self.names) if self.names else self.size_bytes

    @property
    def objects(self) -> int:
        return len(self.names) or 1


def _default_timeout(size_bytes: int, objects: int = 1) -> float:
    # Generous: the slowest peer moves well over 5 MB/s, and 5 objects/s, on any machine
    # this runs on, on any of the shaped networks.
    return 60.0 + size_bytes / (5 * MB) + objects * 0.2


def _check_disk(workdir: Path, size_bytes: int, rss_size_bytes: int | None) -> None:
    # Source + server copy + one output at a time, per object; refuse early rather than
    # fill the disk halfway through a 10-minute run.
    needed = 3 * size_bytes + 3 * (rss_size_bytes or 0) + (256 << 20)
    free = shutil.disk_usage(workdir).free
    if free < needed:
        raise OSError(
            f"the benchmark needs about {format_size(needed)} free in {workdir}, "
            f"only {free / (1 << 30):.1f} GiB is available; use a smaller --size or --workdir"
        )


def _outputs(dest: Path) -> list[Path]:
    """The destination and anything a client created beside it (temp files, journals)."""
    return [p for p in dest.parent.iterdir() if p.name.startswith(dest.name)]


def _remove_outputs(dest: Path) -> None:
    for path in _outputs(dest):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _self_signed(folder: Path) -> tuple[Path, Path] | None:
    """A throwaway certificate and key for the HTTPS listener, or None without openssl."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    folder.mkdir()
    key, cert = folder / "key.pem", folder / "cert.pem"
    command = [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    command += ["-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)]
    done = subprocess.run(
        command,
        capture_output=True,
        check=False,
    )
    return (cert, key) if done.returncode == 0 else None


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


class _Run:
    """State of one run_comparison call."""

    def __init__(
        self,
        server: BenchServer,
        bucket: str,
        workdir: Path,
        progress: Progress,
        timeout_s: float | None,
    ) -> None:
        self.server = server
        self.bucket = bucket
        self.workdir = workdir
        self.progress = progress
        self.timeout_s = timeout_s
        self.counter = 0
        self.network = ""

    def seed(self, name: str, size_bytes: int) -> _Subject:
        path = self.workdir / f"{name}.src"
        self.progress(f"writing {format_size(size_bytes)} of random data")
        crc = write_random_file(path, size_bytes)
        self.progress(f"storing it as gs://{self.bucket}/{name}")
        self.server.put(self.bucket, name, path)
        # The server's copy is checked like any download, so a broken server fails here.
        stored = self.server.stored(self.bucket, name)
        if stored is None or stored != {"size": size_bytes, "crc32c": crc}:
            raise VerificationError(
                f"the server stored {stored} for {name!r}, expected {size_bytes} B"
            )
        return _Subject(name=name, path=path, size_bytes=size_bytes, crc32c=crc)

    def seed_many(self, workload: str, count: int, size_bytes: int) -> _Subject:
        """Write ``count`` random files of ``size_bytes`` and store them under ``workload/``."""
        folder = self.workdir / f"{workload}.src"
        names = [f"{index:05d}.bin" for index in range(count)]
        self.progress(f"writing {count} x {format_size(size_bytes)} of random data")
        crcs = write_random_tree(folder, names, size_bytes)
        prefix = f"{workload}/"
        self.progress(f"storing them under gs://{self.bucket}/{prefix}")
        self.server.put_many(self.bucket, prefix, folder, names)
        expected = {name: (size_bytes, crc) for name, crc in crcs.items()}
        stored = self.server.stored_many(self.bucket, prefix)
        verify_objects(prefix, stored, expected)  # a broken server fails here, not in a case
        return _Subject(
            name=prefix,
            path=folder,
            size_bytes=size_bytes,
            crc32c=0,
            workload=workload,
            names=tuple(names),
            prefix=prefix,
            expected=expected,
        )

    def _warm(self, spec: CaseSpec, subject: _Subject) -> None:
        # Every run starts from a warm page cache: re-read what it will read (the server
        # hashes its stored copy, which also re-checks it) in case memory reclaim took some.
        if spec.group == "upload":
            for path in [subject.path / n for n in subject.names] or [subject.path]:
                file_crc32c(path)
        elif subject.names:
            self.server.stored_many(self.bucket, subject.prefix)
        else:
            self.server.stored(self.bucket, subject.name)

    def run_once(self, tally: _Tally, subject: _Subject, repeat: int) -> None:
        """Run one timed repeat of a case in a child process and record the outcome."""
        spec = tally.spec
        self.counter += 1
        tag = f"{self.counter:03d}-{spec.case_id}"
        dest = self.workdir / f"{tag}.out"
        ctx = CaseContext(
            endpoint=self.server.endpoint,
            bucket=self.bucket,
            object_name=subject.name,
            size_bytes=subject.size_bytes,
            source_path=str(subject.path),
            dest_path=str(dest),
            # A fresh name per run: a stale object can never pass for a new upload.
            upload_name=f"upload-{tag}",
            workload=subject.workload,
            names=subject.names,
            prefix=subject.prefix,
            source_dir=str(subject.path) if subject.names else "",
            tls_endpoint=self.server.tls_endpoint,
            network=self.network,
        )
        spec_path = self.workdir / f"{tag}.spec.json"
        result_path = self.workdir / f"{tag}.result.json"
        log_path = self.workdir / f"{tag}.log"
        spec_path.write_text(
            json.dumps(
                {"runner": spec.runner, "options": dict(spec.options), "context": ctx.to_json()}
            )
        )
        timeout = self.timeout_s or _default_timeout(subject.total_bytes, subject.objects)
        self._warm(spec, subject)
        # Flush the previous runs' dirty pages now, so their writeback is not timed here.
        os.sync()
        server_pid = self.server.pid
        server_cpu = process_cpu_seconds(server_pid) if server_pid is not None else None
        try:
            result = self._spawn(tally, spec_path, result_path, log_path, timeout)
            # Read before verifying: the upload check hashes the object inside the server.
            if server_cpu is not None and server_pid is not None:
                after = process_cpu_seconds(server_pid)
                result["server_cpu_seconds"] = after - server_cpu if after is not None else None
            if result["status"] == "ok":
                self._verify(spec, ctx, subject)
        except VerificationError as exc:
            result = {"status": "error", "detail": str(exc)}
        except Exception as exc:  # the check itself broke: still this row's failure
            _log.warning("verifying %s failed", spec.case_id, exc_info=True)
            result = {"status": "error", "detail": f"could not verify: {exc!r}"}
        finally:
            _remove_outputs(dest)
            if spec.group == "upload":
                try:
                    if subject.names:
                        self.server.delete_many(self.bucket, ctx.upload_name + "/")
                    else:
                        self.server.delete(self.bucket, ctx.upload_name)
                except Exception:
                    _log.warning("could not delete %s", ctx.upload_name, exc_info=True)
        self._record(tally, result, repeat)

    def _spawn(
        self, tally: _Tally, spec_path: Path, result_path: Path, log_path: Path, timeout: float
    ) -> dict[str, Any]:
        # Each sample scans /proc (a few ms with ~100 processes): sample the memory case
        # densely, the throughput cases lightly so the sampler does not steal their CPU.
        # Per-process high-water marks catch peaks between samples.
        interval = MEMORY_SAMPLE_S if tally.spec.group == "memory" else THROUGHPUT_SAMPLE_S
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "resumable_media._bench.child",
                    str(spec_path),
                    str(result_path),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                env=child_env(),
                start_new_session=True,
            )
            sampler = TreeSampler(proc.pid, interval).start()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill_group(proc.pid)
                proc.wait()
                return {"status": "error", "detail": f"timed out after {timeout:.0f} s"}
            except BaseException:
                _kill_group(proc.pid)
                proc.wait()
                raise
            finally:
                sampler.stop()
                # Worker processes a case left behind must not run into the next case.
                _kill_group(proc.pid)
        if not result_path.is_file():
            tail = log_path.read_text(errors="replace")[-1500:]
            return {"status": "error", "detail": f"child exited with {proc.returncode}: {tail}"}
        result: dict[str, Any] = json.loads(result_path.read_text())
        if result["status"] == "ok":
            tally.note_rss(sampler, result)
        if result["status"] == "error" and result.get("traceback"):
            _log.warning("%s failed:\n%s", tally.spec.case_id, result["traceback"])
        return result

    def _verify(self, spec: CaseSpec, ctx: CaseContext, subject: _Subject) -> None:
        if spec.group == "upload" and subject.names:
            prefix = ctx.upload_name + "/"
            verify_objects(prefix, self.server.stored_many(self.bucket, prefix), subject.expected)
            return
        if spec.group == "upload":
            stored = self.server.stored(self.bucket, ctx.upload_name)
            verify_object(ctx.upload_name, stored, subject.size_bytes, subject.crc32c)
            return
        dest = Path(ctx.dest_path)
        if subject.names:
            verify_download_tree(dest, subject.expected)
        else:
            verify_download(dest, subject.size_bytes, subject.crc32c)
        # A finished download owes the user exactly one file: no temp file, no journal.
        leftovers = sorted(p.name for p in _outputs(dest) if p != dest)
        if leftovers:
            raise VerificationError(f"the download left files behind: {', '.join(leftovers)}")

    def _record(self, tally: _Tally, result: dict[str, Any], repeat: int) -> None:
        case = tally.spec.case_id
        if result["status"] == "ok":
            tally.seconds.append(result["seconds"])
            if result.get("cpu_seconds") is not None:
                tally.cpu_seconds.append(result["cpu_seconds"])
            if result.get("server_cpu_seconds") is not None:
                tally.server_cpu_seconds.append(result["server_cpu_seconds"])
            if result.get("detail"):
                tally.detail = result["detail"]
            mbps = tally.size_bytes / result["seconds"] / MB
            cpu = result.get("cpu_seconds")
            shown = f"  {case:<28} {result['seconds']:8.3f} s  {mbps:9.1f} MB/s"
            if tally.objects > 1:
                shown += f"  {tally.objects / result['seconds']:8.0f} obj/s"
            self.progress(shown + (f"  cpu {cpu:7.2f} s" if cpu is not None else ""))
        elif result["status"] == "unavailable" and not tally.seconds:
            tally.status, tally.detail = STATUS_UNAVAILABLE, result["detail"]
            self.progress(f"  {case:<28} not available: {result['detail']}")
        else:
            tally.status = STATUS_FAILED
            tally.detail = f"repeat {repeat + 1}: {result['detail']}"
            self.progress(f"  {case:<28} FAILED: {tally.detail}")


def _rows(tallies: Iterable[_Tally]) -> list[BenchRow]:
    rows = [
        BenchRow(
            case_id=t.spec.case_id,
            label=t.spec.label,
            tool=t.spec.tool,
            group=t.spec.group,
            ours=t.spec.ours,
            size_bytes=t.size_bytes,
            seconds=tuple(t.seconds),
            cpu_seconds=tuple(t.cpu_seconds),
            server_cpu_seconds=tuple(t.server_cpu_seconds),
            status=t.status,
            detail=t.detail,
            peer=t.spec.peer,
            target=t.spec.target,
            peak_rss_bytes=t.peak_rss,
            peak_rss_bound_bytes=t.peak_bound,
            workload=t.spec.workload,
            objects=t.objects,
            concurrency=t.spec.concurrency,
            reference=REFERENCES.get((t.spec.workload, t.spec.group)),
        )
        for t in tallies
    ]
    by_id = {row.case_id: row for row in rows}
    out = []
    for row in rows:
        peer = by_id.get(row.peer) if row.peer else None
        if row.ok and peer is not None and peer.ok and row.median_mbps and peer.median_mbps:
            row = dataclasses.replace(row, ratio=row.median_mbps / peer.median_mbps)
        ref = by_id.get(row.reference) if row.reference else None
        if ref is None or ref.case_id == row.case_id:
            row = dataclasses.replace(row, reference=None)
        elif row.ok and ref.ok and row.median_mbps and ref.median_mbps:
            row = dataclasses.replace(row, vs_ours=ref.median_mbps / row.median_mbps)
        out.append(row)
    return out


def run_comparison(
    endpoint: str | None = None,
    size_bytes: int = 1 << 30,
    *,
    cases: Iterable[str | CaseSpec] | None = None,
    repeats: int = 3,
    rss_size_bytes: int = 4 << 30,
    workdir: str | os.PathLike[str] | None = None,
    timeout_s: float | None = None,
    progress: Progress | None = None,
    network: str | None = None,
    small: tuple[int, int] | None = None,
    medium: tuple[int, int] | None = None,
) -> list[BenchRow]:
    """Measure every selected case against the same server and object, ``repeats`` times.

    Args:
        endpoint: Base URL of a running GCS JSON API server; None starts the project's
            loopback server (``resumable_media.testing.GCSServer``) in a child process
            for the duration of the call.
        size_bytes: Size of the ``large`` workload's random object (default 1 GiB).
        cases: Case ids, globs (``ours.*``), groups (``download``, ``upload``, ``rss``,
            ``large``, ``small``, ``medium``, ``peers``, ``all``), or custom CaseSpec
            objects; None runs every default case of the ``large`` workload (all but
            the peak-RSS case).
        repeats: Timed runs per case; the case order is reversed on every other repeat.
        rss_size_bytes: Object size for the peak-RSS case (only used when it is selected).
        workdir: Directory for the temporary data (default: the system temp dir).
        timeout_s: Per-run time limit; default 60 s + 1 s per 5 MB + 0.2 s per object.
        progress: Called with one human-readable line per step (e.g. ``print``).
        network: Run the embedded server with this shaped-network profile (``lan``,
            ``region``, ``wan``; see resumable_media.testing.network); None: plain loopback.
        small: (count, size) of the ``small`` workload (default 2,000 x 64 KiB).
        medium: (count, size) of the ``medium`` workload (default 200 x 8 MiB).

    Returns:
        One row per selected case, in catalogue order, each ``ok``, ``not available``
        (its module is missing) or ``FAILED`` (with the reason).

    Raises:
        ValueError: On a non-positive size or repeat count, or an unknown case.
        OSError: If the work directory lacks the disk space the run needs.
        RuntimeError: If the embedded server cannot start.
        VerificationError: If the server does not store the seeded object intact.
    """
    if size_bytes <= 0 or rss_size_bytes <= 0:
        raise ValueError(f"object sizes must be positive, got {size_bytes} and {rss_size_bytes}")
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    if network is not None and endpoint is not None:
        raise ValueError("a network profile shapes the embedded server only; omit the endpoint")
    shapes = {
        "small": small or (WORKLOADS["small"].count, WORKLOADS["small"].object_size),
        "medium": medium or (WORKLOADS["medium"].count, WORKLOADS["medium"].object_size),
    }
    if any(count < 1 or size < 1 for count, size in shapes.values()):
        raise ValueError(f"workload counts and sizes must be positive, got {shapes}")
    specs = select_cases(cases)
    many = sorted({s.workload for s in specs if s.workload in shapes})

    def report(line: str) -> None:
        _log.info("%s", line)
        if progress is not None:
            progress(line)

    with tempfile.TemporaryDirectory(prefix="resumable-media-bench-", dir=workdir) as tmp:
        work = Path(tmp)
        wants_rss = any(s.case_id == RSS_CASE for s in specs)
        wants_large = any(s.workload == "large" and s.case_id != RSS_CASE for s in specs)
        seeded = (size_bytes if wants_large else 0) + sum(shapes[w][0] * shapes[w][1] for w in many)
        _check_disk(work, seeded, rss_size_bytes if wants_rss else None)
        if endpoint is None:
            tls = _self_signed(work / "tls") if any(s.needs_tls for s in specs) else None
            server: BenchServer = EmbeddedServer(
                work / "server", work / "server.log", network=network, tls=tls
            )
        else:
            server = RemoteServer(endpoint)
        try:
            run = _Run(server, f"bench-{uuid.uuid4().hex[:12]}", work, report, timeout_s)
            run.network = network or ""
            shaped = f", network {network}" if network else ""
            report(f"server {server.endpoint}{shaped}, bucket {run.bucket}")
            subjects: dict[str, _Subject] = {}
            if wants_large:
                subjects["large"] = run.seed("object", size_bytes)
            for workload in many:
                subjects[workload] = run.seed_many(workload, *shapes[workload])
            if wants_rss:
                subjects[RSS_CASE] = run.seed("object-rss", rss_size_bytes)
            tallies = {}
            for s in specs:
                subject = subjects[RSS_CASE if s.case_id == RSS_CASE else s.workload]
                tallies[s.case_id] = _Tally(s, subject.total_bytes, subject.objects)
            for repeat in range(repeats):
                report(f"repeat {repeat + 1}/{repeats}")
                order = specs if repeat % 2 == 0 else specs[::-1]
                for spec in order:
                    tally = tallies[spec.case_id]
                    if not tally.done:
                        key = RSS_CASE if spec.case_id == RSS_CASE else spec.workload
                        run.run_once(tally, subjects[key], repeat)
        finally:
            server.close()
    return _rows(tallies[s.case_id] for s in specs)
