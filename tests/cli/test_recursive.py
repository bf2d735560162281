"""``cp -r``: trees both ways, tricky names, listing pages, and names that try to escape."""

from __future__ import annotations

import json
import os
import pathlib

from cli_helpers import RunCli

from resumable_media.testing import GCSServer

TREE = {
    "top.txt": b"top level\n",
    "with space/inner file.bin": os.urandom(3000),
    "unicodé/ünïcode ✓.dat": os.urandom(5000),
    "odd/hash#tag?.txt": b"hash and question mark",
    "odd/100% done": b"percent",
    "deep/a/b/c/d.bin": os.urandom(70_000),
    "big/large.bin": os.urandom(1_500_000),
    "empty": b"",
}


def _write_tree(root: pathlib.Path) -> None:
    for rel, data in TREE.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def _read_tree(root: pathlib.Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_recursive_round_trip(
    run_cli: RunCli, gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    source, back = tmp_path / "source", tmp_path / "back"
    _write_tree(source)
    up = run_cli(
        "cp", "-r", "--json", "--chunk-size", "512KiB", str(source), f"gs://{gcs_bucket}/backup"
    )
    assert up.returncode == 0, up.stderr
    lines = [json.loads(line) for line in up.stdout.splitlines()]
    assert len(lines) == len(TREE)
    assert {line["status"] for line in lines} == {"ok"}
    assert {line["method"] for line in lines} == {"multipart", "pipelined"}
    for rel, data in TREE.items():
        assert gcs_server.object_bytes(gcs_bucket, f"backup/{rel}") == data

    down = run_cli(
        "cp", "-r", "--json", "--chunk-size", "512KiB", f"gs://{gcs_bucket}/backup", str(back)
    )
    assert down.returncode == 0, down.stderr
    assert _read_tree(back) == TREE
    methods = {json.loads(line)["method"] for line in down.stdout.splitlines()}
    assert methods == {"single", "parallel"}
    assert not [p for p in back.rglob(".*")], "temp files left behind"


def test_recursive_download_follows_listing_pages(
    run_cli: RunCli, gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    for i in range(7):
        gcs_server.put_object(gcs_bucket, f"paged/{i:02d}.txt", f"object {i}".encode())
    gcs_server.put_object(gcs_bucket, "pagedX/not-me.txt", b"outside the prefix")
    gcs_server.clear_requests()
    result = run_cli("cp", "-r", "--list-page-size", "3", f"gs://{gcs_bucket}/paged", str(tmp_path))
    assert result.returncode == 0, result.stderr
    # tmp_path exists, so the prefix keeps its last component (gsutil's rule).
    assert sorted(p.name for p in (tmp_path / "paged").iterdir()) == [
        f"{i:02d}.txt" for i in range(7)
    ]
    assert (tmp_path / "paged" / "04.txt").read_bytes() == b"object 4"
    listings = [r for r in gcs_server.requests if "prefix=" in r.path]
    assert len(listings) == 3
    assert sum("pageToken=" in r.path for r in listings) == 2


def test_recursive_download_refuses_names_that_escape(
    run_cli: RunCli, gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    hostile = ["p/../../evil.txt", "p/..", "p//abs", "p/./dot", "p/a/../../b"]
    for name in hostile:
        gcs_server.put_object(gcs_bucket, name, b"should never be written")
    gcs_server.put_object(gcs_bucket, "p/ok/fine.txt", b"fine")
    gcs_server.put_object(gcs_bucket, "p/dir/", b"")  # a console-style folder placeholder
    destination = tmp_path / "inner" / "dest"
    result = run_cli("cp", "-r", "--json", f"gs://{gcs_bucket}/p/", str(destination))
    assert result.returncode == 1
    for name in hostile:
        assert f"gs://{gcs_bucket}/{name}" in result.stderr
    assert "placeholder" in result.stderr
    assert (destination / "ok" / "fine.txt").read_bytes() == b"fine"
    everything = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*"))
    assert everything == ["inner", "inner/dest", "inner/dest/ok", "inner/dest/ok/fine.txt"]
    errors = [json.loads(line) for line in result.stdout.splitlines()]
    assert sum(e["status"] == "error" for e in errors) == len(hostile)


def test_recursive_download_does_not_follow_symlinks_out(
    run_cli: RunCli, gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    destination = tmp_path / "dest"
    (destination / "s").mkdir(parents=True)  # dest exists: the tree lands in dest/s
    (destination / "s" / "link").symlink_to(outside)
    gcs_server.put_object(gcs_bucket, "s/link/planted.txt", b"planted")
    result = run_cli("cp", "-r", f"gs://{gcs_bucket}/s", str(destination))
    assert result.returncode == 1
    assert f"gs://{gcs_bucket}/s/link/planted.txt" in result.stderr
    assert list(outside.iterdir()) == []


def test_recursive_empty_prefix_fails(
    run_cli: RunCli, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    result = run_cli("cp", "-r", f"gs://{gcs_bucket}/nothing-here", str(tmp_path / "d"))
    assert result.returncode == 1
    assert f"gs://{gcs_bucket}/nothing-here/" in result.stderr
    assert not (tmp_path / "d").exists()


def test_parallel_xml_upload_with_processes(
    run_cli: RunCli, gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    source = tmp_path / "parts.bin"
    source.write_bytes(os.urandom(1_300_000))
    result = run_cli(
        "cp",
        "--json",
        "--chunk-size",
        "256KiB",
        "--processes",
        "2",
        str(source),
        f"gs://{gcs_bucket}/multi part/é.bin",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["method"] == "parallel-xml"
    assert gcs_server.object_bytes(gcs_bucket, "multi part/é.bin") == source.read_bytes()


def test_recursive_upload_refuses_non_utf8_file_names(
    run_cli: RunCli, gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "good.txt").write_bytes(b"good")
    with open(os.path.join(os.fsencode(source), b"bad\xff.txt"), "wb") as stream:
        stream.write(b"bad")
    result = run_cli("cp", "-r", str(source), f"gs://{gcs_bucket}/u")
    assert result.returncode == 1
    assert "not valid UTF-8" in result.stderr
    assert gcs_server.object_bytes(gcs_bucket, "u/good.txt") == b"good"
