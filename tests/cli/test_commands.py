"""``demo``, ``serve``, ``bench``, the progress bar and ``--json``, through a subprocess."""

from __future__ import annotations

import json
import os
import pathlib
import pty
import select
import signal
import subprocess
import time

import requests
from cli_helpers import RunCli, cli_env, command

from resumable_media.testing import GCSServer


def test_demo_small(run_cli: RunCli, tmp_path: pathlib.Path) -> None:
    result = run_cli(
        "demo", "--size", "8MiB", "--chunk-size", "1MiB", env={"TMPDIR": str(tmp_path)}
    )
    assert result.returncode == 0, result.stderr
    assert "result: OK (8.0 MiB" in result.stdout
    for step in ("write test file", "upload (PipelinedUpload)", "download (ParallelDownload)"):
        assert step in result.stdout
    assert list(tmp_path.iterdir()) == [], "demo left temp files"


def test_demo_json(run_cli: RunCli, tmp_path: pathlib.Path) -> None:
    result = run_cli("demo", "--json", "--size", "3MiB", env={"TMPDIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["step"] for r in rows][-1] == "verify (bytes + crc32c)"
    assert rows[-1]["detail"].startswith("OK")
    assert len({r["detail"] for r in rows[:3]}) == 1  # one CRC32C everywhere


def test_demo_interrupted_cleans_up(tmp_path: pathlib.Path) -> None:
    proc = subprocess.Popen(
        command("demo", "--size", "1GiB"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env({"TMPDIR": str(tmp_path)}),
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not list(tmp_path.glob("*/source.bin")):
        time.sleep(0.05)
    time.sleep(0.2)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=10)
    assert time.monotonic() - sent < 2.0
    assert proc.returncode == 130, stderr
    assert list(tmp_path.iterdir()) == []


def test_serve_prints_url_first_and_stops_on_sigterm(tmp_path: pathlib.Path) -> None:
    proc = subprocess.Popen(
        command("serve", "--root", str(tmp_path)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        created = requests.post(
            f"{url}/storage/v1/b?project=p", json={"name": "served"}, timeout=10
        )
        assert created.status_code == 200
        source = tmp_path.parent / f"{tmp_path.name}-upload.txt"
        source.write_bytes(b"through the served endpoint")
        env = cli_env({"STORAGE_EMULATOR_HOST": url})
        up = subprocess.run(
            command("cp", str(source), "gs://served/x.txt"),
            capture_output=True,
            text=True,
            env=env,
            timeout=30,
            check=False,
        )
        assert up.returncode == 0, up.stderr
        media = requests.get(f"{url}/download/storage/v1/b/served/o/x.txt?alt=media", timeout=10)
        assert media.content == b"through the served endpoint"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)
    assert proc.returncode == 0


def test_bench_runs_and_plots(run_cli: RunCli, tmp_path: pathlib.Path) -> None:
    chart = tmp_path / "chart.png"
    result = run_cli(
        "bench",
        "--size",
        "1MiB",
        "--repeats",
        "1",
        "--cases",
        "ours.download.crc32c",
        "grm.download.crc32c",
        "--plot",
        str(chart),
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "ours.download.crc32c" in result.stdout or "resumable-media" in result.stdout
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_unknown_case_is_usage_error(run_cli: RunCli) -> None:
    result = run_cli("bench", "--size", "1MiB", "--cases", "no.such.case")
    assert result.returncode == 2
    assert "no.such.case" in result.stderr


def test_bench_peer_table_over_lan(run_cli: RunCli, tmp_path: pathlib.Path) -> None:
    """`bench --peers` runs the peer table of bench_transfers.py (the same code) end to end."""
    summary = tmp_path / "summary.md"
    options = ["--peers", "curl", "--network", "lan", "--workloads", "large"]
    options += ["--size", "1MiB", "--repeats", "1"]
    result = run_cli(
        "bench",
        *options,
        *("--summary", str(summary), "--workdir", str(tmp_path)),
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    for row in ("`ours.parallel_download`", "`ours.parallel_upload`", "`curl`", "`curl.upload`"):
        assert row in result.stdout
    assert "`obstore.large.down`" not in result.stdout  # only the peers asked for
    assert "| network | lan |" in result.stdout
    assert "resumable-media bench --peers curl --network lan" in result.stdout
    text = summary.read_text()
    assert text.startswith("#### Network: `lan`") and "ParallelDownload" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.md"]


def test_bench_unknown_peer_is_usage_error(run_cli: RunCli) -> None:
    result = run_cli("bench", "--peers", "nosuchpeer", "--size", "1MiB")
    assert result.returncode == 2
    assert "nosuchpeer" in result.stderr and "obstore" in result.stderr
    assert result.stdout == ""


def _run_on_tty(argv: list[str], timeout_s: float = 60) -> tuple[int, str, str]:
    """Run with stderr on a pseudo-terminal; return (exit code, stdout, terminal output)."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=follower, env=cli_env(), text=False
    )
    os.close(follower)
    seen = bytearray()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        elif proc.poll() is not None:
            break
    os.close(leader)
    out, _ = proc.communicate(timeout=10)
    return proc.returncode, out.decode(), seen.decode(errors="replace")


def test_progress_bar_only_on_a_terminal(
    run_cli: RunCli, gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    gcs_server.put_object(gcs_bucket, "bar.bin", os.urandom(3 * 2**20))
    src = f"gs://{gcs_bucket}/bar.bin"
    base = ["cp", "--endpoint", gcs_server.endpoint, "--chunk-size", "256KiB", src]
    code, _, terminal = _run_on_tty(command(*base, str(tmp_path / "a.bin")))
    assert code == 0, terminal
    assert "\r[" in terminal and "100.0%" in terminal and "/s" in terminal and "ETA" in terminal

    code, _, terminal = _run_on_tty(command(*base, "--quiet", str(tmp_path / "b.bin")))
    assert code == 0, terminal
    assert terminal == ""

    piped = run_cli("cp", "--chunk-size", "256KiB", src, str(tmp_path / "c.bin"))
    assert piped.returncode == 0
    assert "\r" not in piped.stderr and "ETA" not in piped.stderr


def test_version(run_cli: RunCli) -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("resumable-media ")
