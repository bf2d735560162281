"""``resumable-media sync``: exact trees both ways, no bytes on a rerun, --delete, --dry-run,
filters, --json, --manifest, and nothing deleted after an incomplete source listing."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
from typing import Any

import pytest
from cli_helpers import cli_env, command

from resumable_media import bulk
from resumable_media.testing import GCSServer

# Names whose order differs between per-directory sorting and full-path byte order, plus
# characters that need escaping in URLs.
NAMES = {
    "a-b": b"dash",
    "a.b": b"dot",
    "a/b": b"slash" * 100,
    "a/c/d.txt": b"deep",
    "b": b"",
    "\u00e9/\u00fc n.txt": b"unicode",
    "z z/#?%.bin": bytes(range(256)),
    "x/y/z/w": b"w" * 5000,
}


def run_sync(
    server: GCSServer, *args: str, state: pathlib.Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``sync`` against the loopback server (private state directory when given)."""
    env = cli_env({"RESUMABLE_MEDIA_STATE_DIR": str(state)} if state else None)
    return subprocess.run(
        command("sync", "--endpoint", server.endpoint, *args),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def make_tree(root: pathlib.Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def local_tree(root: pathlib.Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def bucket_tree(server: GCSServer, bucket: str, prefix: str = "") -> dict[str, bytes]:
    storage = bulk.connect(server.endpoint)
    return {
        str(item["name"])[len(prefix) :]: server.object_bytes(bucket, str(item["name"]))
        for item in storage.iter_objects(bucket, prefix)
    }


def json_lines(out: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines and lines[-1].get("summary") is True
    return lines[:-1], lines[-1]


def uploads(server: GCSServer) -> list[str]:
    return [r.path for r in server.requests if r.path.startswith("/upload/")]


def media_gets(server: GCSServer) -> list[str]:
    return [r.path for r in server.requests if "alt=media" in r.path]


def test_sync_both_ways_exact_then_rerun_sends_no_bytes(
    gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    src, back, state = tmp_path / "src", tmp_path / "back", tmp_path / "state"
    make_tree(src, NAMES)
    first = run_sync(gcs_server, "--json", str(src), f"gs://{gcs_bucket}/dst", state=state)
    assert first.returncode == 0, first.stderr
    lines, summary = json_lines(first.stdout)
    assert summary["copied"] == len(NAMES) and summary["failed"] == 0
    assert summary["bytes"] == sum(len(v) for v in NAMES.values())
    assert {line["status"] for line in lines} == {"copied"} and len(lines) == len(NAMES)
    assert bucket_tree(gcs_server, gcs_bucket, "dst/") == NAMES

    gcs_server.clear_requests()
    again = run_sync(gcs_server, "--json", str(src), f"gs://{gcs_bucket}/dst", state=state)
    assert again.returncode == 0, again.stderr
    _, summary = json_lines(again.stdout)
    assert (summary["copied"], summary["skipped"]) == (0, len(NAMES))
    assert uploads(gcs_server) == []

    down = run_sync(gcs_server, f"gs://{gcs_bucket}/dst", str(back), state=state)
    assert down.returncode == 0, down.stderr
    assert local_tree(back) == NAMES
    gcs_server.clear_requests()
    down_again = run_sync(gcs_server, "--json", f"gs://{gcs_bucket}/dst", str(back), state=state)
    assert down_again.returncode == 0, down_again.stderr
    assert json_lines(down_again.stdout)[1]["skipped"] == len(NAMES)
    assert media_gets(gcs_server) == []


def test_changed_file_of_same_size_is_copied_again(
    gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    src, state = tmp_path / "src", tmp_path / "state"
    make_tree(src, {"f": b"aaaa", "g": b"same"})
    assert run_sync(gcs_server, str(src), f"gs://{gcs_bucket}", state=state).returncode == 0
    (src / "f").write_bytes(b"bbbb")  # same size, new CRC32C (and a new mtime)
    out = run_sync(gcs_server, "--json", str(src), f"gs://{gcs_bucket}", state=state)
    lines, summary = json_lines(out.stdout)
    assert (summary["copied"], summary["skipped"]) == (1, 1)
    assert [line["destination"] for line in lines if line["status"] == "copied"] == [
        f"gs://{gcs_bucket}/f"
    ]
    assert gcs_server.object_bytes(gcs_bucket, "f") == b"bbbb"


def test_dry_run_changes_nothing_and_delete_removes_extras(
    gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    src = tmp_path / "src"
    make_tree(src, {"keep": b"k", "new": b"n"})
    gcs_server.put_object(gcs_bucket, "keep", b"k")
    gcs_server.put_object(gcs_bucket, "old/gone", b"x")
    gcs_server.clear_requests()
    dry = run_sync(gcs_server, "--dry-run", "--delete", str(src), f"gs://{gcs_bucket}")
    assert dry.returncode == 0, dry.stderr
    assert f"would copy {src / 'new'} -> gs://{gcs_bucket}/new" in dry.stdout
    assert f"would delete gs://{gcs_bucket}/old/gone" in dry.stdout
    assert "keep" not in dry.stdout
    assert {r.method for r in gcs_server.requests} == {"GET"}
    assert bucket_tree(gcs_server, gcs_bucket) == {"keep": b"k", "old/gone": b"x"}

    real = run_sync(gcs_server, "--json", "--delete", str(src), f"gs://{gcs_bucket}")
    assert real.returncode == 0, real.stderr
    lines, summary = json_lines(real.stdout)
    assert (summary["copied"], summary["skipped"], summary["deleted"]) == (1, 1, 1)
    assert {(line["status"], line["destination"]) for line in lines} >= {
        ("deleted", f"gs://{gcs_bucket}/old/gone")
    }
    assert bucket_tree(gcs_server, gcs_bucket) == {"keep": b"k", "new": b"n"}


def test_delete_local_extras_and_their_empty_directories(
    gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    gcs_server.put_object(gcs_bucket, "p/a", b"a")
    dst = tmp_path / "dst"
    make_tree(dst, {"a": b"a", "extra/deeper/x": b"x", "extra2": b"y"})
    out = run_sync(gcs_server, "--delete", f"gs://{gcs_bucket}/p", str(dst))
    assert out.returncode == 0, out.stderr
    assert sorted(p.name for p in dst.iterdir()) == ["a"]


def test_filters_first_match_wins_and_excluded_are_not_deleted(
    gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    src = tmp_path / "src"
    make_tree(src, {"a.txt": b"1", "b.log": b"2", "keep/c.log": b"3", "d.tmp": b"4"})
    gcs_server.put_object(gcs_bucket, "e.tmp", b"remote, excluded: never deleted")
    out = run_sync(
        gcs_server,
        "--delete",
        "--include",
        "/keep/**",
        "--exclude",
        "*.log",
        "--exclude",
        "*.tmp",
        str(src),
        f"gs://{gcs_bucket}",
    )
    assert out.returncode == 0, out.stderr
    assert bucket_tree(gcs_server, gcs_bucket) == {
        "keep/c.log": b"3",  # the earlier --include wins over --exclude *.log
        "e.tmp": b"remote, excluded: never deleted",
    }


def test_include_only_excludes_everything_else(
    gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    src = tmp_path / "src"
    make_tree(src, {"a.jpg": b"1", "sub/b.jpg": b"2", "c.png": b"3"})
    out = run_sync(gcs_server, "--include", "*.jpg", str(src), f"gs://{gcs_bucket}")
    assert out.returncode == 0, out.stderr
    assert sorted(bucket_tree(gcs_server, gcs_bucket)) == ["a.jpg", "sub/b.jpg"]


def test_manifest_rerun_trusts_records_but_confirms_the_destination(
    gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    src, manifest = tmp_path / "src", tmp_path / "manifest.jsonl"
    make_tree(src, {"a": b"aaaa", "b": b"bbbb", "c": b"cccc"})
    first = run_sync(
        gcs_server,
        "--manifest",
        str(manifest),
        str(src),
        f"gs://{gcs_bucket}",
        state=tmp_path / "s1",
    )
    assert first.returncode == 0, first.stderr
    records = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert {r["destination"] for r in records} == {f"gs://{gcs_bucket}/{n}" for n in "abc"}
    for record in records:
        assert record["status"] == "copied" and record["size"] == 4
        assert record["crc32c"] and record["md5"] and record["generation"]
        assert record["error"] is None and record["seconds"] >= 0
        assert {"source", "destination", "generation", "mtime_ns"} <= set(record)
    # Someone replaces b with other bytes of the same size: the record no longer matches.
    gcs_server.put_object(gcs_bucket, "b", b"BBBB")
    fresh_state = tmp_path / "s2"  # an empty checksum cache: only the ledger can skip
    rerun = run_sync(
        gcs_server,
        "--json",
        "--manifest",
        str(manifest),
        str(src),
        f"gs://{gcs_bucket}",
        state=fresh_state,
    )
    assert rerun.returncode == 0, rerun.stderr
    lines, _ = json_lines(rerun.stdout)
    assert {line["destination"].rsplit("/", 1)[1]: line["status"] for line in lines} == {
        "a": "skipped",
        "b": "copied",
        "c": "skipped",
    }
    assert gcs_server.object_bytes(gcs_bucket, "b") == b"bbbb"
    # The skips came from the ledger: no local file was hashed into the fresh cache.
    import sqlite3

    with sqlite3.connect(fresh_state / "crc32c-cache.sqlite3") as db:
        cached = [row[0] for row in db.execute("SELECT path FROM crc32c")]
    assert cached == [str(src / "b")]  # b was re-uploaded and its CRC32C remembered
    assert len(manifest.read_text().splitlines()) == 6


def test_failed_object_does_not_stop_others_and_summary_names_it(
    gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    gcs_server.put_object(gcs_bucket, "ok1", b"1")
    gcs_server.put_object(gcs_bucket, "clash", b"file")
    gcs_server.put_object(gcs_bucket, "clash/inner", b"cannot live under a file")
    gcs_server.put_object(gcs_bucket, "ok2", b"2")
    dst = tmp_path / "dst"
    # "clash" and "clash/inner" cannot both be local files: whichever is put in place
    # first wins (downloads are put in place in durable batches, so either may), the
    # other fails alone.
    out = run_sync(gcs_server, "--json", "-j", "1", f"gs://{gcs_bucket}", str(dst))
    assert out.returncode == 1
    lines, summary = json_lines(out.stdout)
    assert (summary["copied"], summary["failed"]) == (3, 1)
    failed = [line["source"] for line in lines if line["status"] == "failed"]
    assert len(failed) == 1 and failed[0].startswith(f"gs://{gcs_bucket}/clash")
    assert "clash" in summary["failures"][0]
    assert "1 object(s) failed" in out.stderr and "clash" in out.stderr
    tree = local_tree(dst)
    assert tree in (
        {"ok1": b"1", "clash": b"file", "ok2": b"2"},
        {"ok1": b"1", "clash/inner": b"cannot live under a file", "ok2": b"2"},
    )


def _unreadable_directory(parent: pathlib.Path) -> pathlib.Path:
    """A directory whose path is longer than PATH_MAX: no process, root included, can list it."""
    parent.mkdir()
    fd = os.open(parent, os.O_RDONLY)
    path = parent
    try:
        while len(str(path)) <= 4200:
            name = "d" * 250
            os.mkdir(name, dir_fd=fd)
            new = os.open(name, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = new
            path = path / name
        file_fd = os.open("lost.txt", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(file_fd, b"unreachable")
        os.close(file_fd)
    finally:
        os.close(fd)
    return path


def test_delete_withheld_when_source_directory_cannot_be_listed(
    gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    src = tmp_path / "src"
    make_tree(src, {"a": b"a", "z": b"z"})
    _unreadable_directory(src / "m")
    gcs_server.put_object(gcs_bucket, "only-remote", b"must survive")
    out = run_sync(gcs_server, "--json", "--delete", str(src), f"gs://{gcs_bucket}")
    assert out.returncode == 1
    _, summary = json_lines(out.stdout)
    assert summary["deleted"] == 0 and summary["deletions_withheld"] == 1
    assert summary["copied"] == 2 and summary["listing_errors"]
    assert "nothing deleted" in out.stderr
    assert gcs_server.object_bytes(gcs_bucket, "only-remote") == b"must survive"


def test_delete_withheld_when_the_source_bucket_listing_fails(
    gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    gcs_server.put_object(gcs_bucket, "p/a", b"a")
    dst = tmp_path / "dst"
    make_tree(dst, {"a": b"a", "extra": b"local only"})
    test_id = gcs_server.create_retry_test({"storage.objects.list": ["return-400"]})
    out = run_sync(
        gcs_server,
        "-H",
        f"x-retry-test-id: {test_id}",
        "--delete",
        f"gs://{gcs_bucket}/p",
        str(dst),
    )
    assert out.returncode == 1
    assert "listing" in out.stderr and "nothing deleted" in out.stderr
    assert local_tree(dst) == {"a": b"a", "extra": b"local only"}


@pytest.mark.parametrize("args", [["--delete", "a", "b"], ["x", "y"]])
def test_two_local_paths_are_a_usage_error(
    gcs_server: GCSServer, tmp_path: pathlib.Path, args: list[str]
) -> None:
    out = run_sync(gcs_server, *args)
    assert out.returncode == 2
    assert "gs://" in out.stderr


def test_gs_to_gs_dry_run_compares_both_listings(gcs_server: GCSServer, gcs_bucket: str) -> None:
    for name, data in {"same": b"1", "changed": b"2", "new": b"3"}.items():
        gcs_server.put_object(gcs_bucket, f"from/{name}", data)
    gcs_server.put_object(gcs_bucket, "to/same", b"1")
    gcs_server.put_object(gcs_bucket, "to/changed", b"X")
    gcs_server.put_object(gcs_bucket, "to/stale", b"4")
    out = run_sync(
        gcs_server, "--json", "-n", "--delete", f"gs://{gcs_bucket}/from", f"gs://{gcs_bucket}/to"
    )
    assert out.returncode == 0, out.stderr
    lines, summary = json_lines(out.stdout)
    by_name = {line["destination"].rsplit("/", 1)[1]: line for line in lines}
    assert {name: line["status"] for name, line in by_name.items()} == {
        "changed": "would-copy",
        "new": "would-copy",
        "same": "skipped",
        "stale": "would-delete",
    }
    assert {line["action"] for line in lines if line["status"] == "would-copy"} == {"rewrite"}
    assert summary["skipped"] == 1
    assert gcs_server.object_bytes(gcs_bucket, "to/changed") == b"X"


def test_worker_processes_sync_is_exact(
    gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    src = tmp_path / "src"
    files = {f"d{i % 3}/f{i}": bytes([i]) * i for i in range(24)}
    make_tree(src, files)
    out = run_sync(gcs_server, "--worker-processes", "2", str(src), f"gs://{gcs_bucket}/w")
    assert out.returncode == 0, out.stderr
    assert bucket_tree(gcs_server, gcs_bucket, "w/") == files
    back = tmp_path / "back"
    out = run_sync(gcs_server, "--worker-processes", "2", f"gs://{gcs_bucket}/w", str(back))
    assert out.returncode == 0, out.stderr
    assert local_tree(back) == files
