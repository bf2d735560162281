"""``ls``, ``rm``, ``cat``, ``stat`` and ``du`` end to end: exact outputs and exit codes."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess

import google_crc32c
import pytest
from cli_helpers import RunCli, cli_env, command

from resumable_media._cli.objects import human_size
from resumable_media.testing import GCSServer

TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


@pytest.fixture
def filled(gcs_server: GCSServer, gcs_bucket: str) -> str:
    gcs_server.put_object(gcs_bucket, "top.txt", b"top", content_type="text/plain")
    gcs_server.put_object(gcs_bucket, "d/a.txt", b"aaaaa")
    gcs_server.put_object(gcs_bucket, "d/z.log", b"z")
    gcs_server.put_object(gcs_bucket, "d/sub/b.txt", b"bbbbbb")
    return gcs_bucket


def test_ls_levels_and_wildcards(run_cli: RunCli, filled: str) -> None:
    b = filled
    root = run_cli("ls", f"gs://{b}")
    assert root.returncode == 0, root.stderr
    assert root.stdout.splitlines() == [f"gs://{b}/top.txt", f"gs://{b}/d/"]
    level = run_cli("ls", f"gs://{b}/d")
    assert level.stdout.splitlines() == [
        f"gs://{b}/d/a.txt",
        f"gs://{b}/d/z.log",
        f"gs://{b}/d/sub/",
    ]
    star = run_cli("ls", f"gs://{b}/d/*.txt", f"gs://{b}/**.txt")
    assert star.stdout.splitlines() == [
        f"gs://{b}/d/a.txt",
        f"gs://{b}/d/a.txt",
        f"gs://{b}/d/sub/b.txt",
        f"gs://{b}/top.txt",
    ]
    # A class; and a pattern ending in '/' lists what is below the prefixes it matches.
    klass = run_cli("ls", f"gs://{b}/d/[az]*", f"gs://{b}/*/s?b/")
    assert klass.stdout.splitlines() == [
        f"gs://{b}/d/a.txt",
        f"gs://{b}/d/z.log",
        f"gs://{b}/d/sub/b.txt",
    ]
    one = run_cli("ls", f"gs://{b}/top.txt")
    assert one.stdout.splitlines() == [f"gs://{b}/top.txt"]


def test_ls_long_and_total(run_cli: RunCli, filled: str) -> None:
    b = filled
    result = run_cli("ls", "-l", f"gs://{b}/d/")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert re.fullmatch(rf"         5  {TIME}  gs://{b}/d/a\.txt", lines[0])
    assert re.fullmatch(rf"         1  {TIME}  gs://{b}/d/z\.log", lines[1])
    assert lines[2] == " " * 33 + f"gs://{b}/d/sub/"
    assert lines[3] == "TOTAL: 2 objects, 6 bytes (6 B)"
    assert len(lines) == 4


def test_ls_recursive_headings(run_cli: RunCli, filled: str) -> None:
    b = filled
    result = run_cli("ls", "-r", f"gs://{b}/")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n") == [
        f"gs://{b}/:",
        f"gs://{b}/top.txt",
        "",
        f"gs://{b}/d/:",
        f"gs://{b}/d/a.txt",
        f"gs://{b}/d/z.log",
        "",
        f"gs://{b}/d/sub/:",
        f"gs://{b}/d/sub/b.txt",
        "",
    ]
    total = run_cli("ls", "-l", "-r", "--list-page-size", "1", f"gs://{b}")
    assert total.stdout.splitlines()[-1] == "TOTAL: 4 objects, 15 bytes (15 B)"


def test_ls_missing_exit_1_and_keeps_going(run_cli: RunCli, filled: str) -> None:
    b = filled
    result = run_cli("ls", f"gs://{b}/nope", f"gs://{b}/top.txt", f"gs://{b}/d/*.pdf")
    assert result.returncode == 1
    assert result.stdout.splitlines() == [f"gs://{b}/top.txt"]
    assert f"error: gs://{b}/nope: matched no objects" in result.stderr
    assert f"resumable-media ls gs://{b}/\n" in result.stderr
    assert f"error: gs://{b}/d/*.pdf: matched no objects" in result.stderr
    assert f"resumable-media ls gs://{b}/d/" in result.stderr
    bucket = run_cli("ls", "gs://no-such-bucket-here/")
    assert bucket.returncode == 1
    assert "gs://no-such-bucket-here/" in bucket.stderr and "not found" in bucket.stderr
    usage = run_cli("ls", "/local/path")
    assert usage.returncode == 2 and "not a gs://bucket/object URL" in usage.stderr


def test_ls_json(run_cli: RunCli, filled: str) -> None:
    result = run_cli("ls", "--json", f"gs://{filled}/d/")
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["url"] for r in records] == [
        f"gs://{filled}/d/a.txt",
        f"gs://{filled}/d/z.log",
        f"gs://{filled}/d/sub/",
    ]
    assert records[0]["size"] == 5 and records[2]["prefix"] is True


def test_rm_objects_wildcards_and_trees(
    run_cli: RunCli, gcs_server: GCSServer, filled: str
) -> None:
    b = filled
    one = run_cli("rm", f"gs://{b}/top.txt")
    assert one.returncode == 0, one.stderr
    assert f"Removing gs://{b}/top.txt..." in one.stderr
    assert not gcs_server.has_object(b, "top.txt")

    missing = run_cli("rm", f"gs://{b}/top.txt")
    assert missing.returncode == 1
    assert f"error: gs://{b}/top.txt: matched no objects" in missing.stderr

    prefix = run_cli("rm", f"gs://{b}/d/")
    assert prefix.returncode == 2 and "use -r" in prefix.stderr
    assert gcs_server.has_object(b, "d/a.txt")

    star = run_cli("rm", "--json", f"gs://{b}/d/*")
    assert star.returncode == 0, star.stderr
    assert sorted(json.loads(line)["url"] for line in star.stdout.splitlines()) == [
        f"gs://{b}/d/a.txt",
        f"gs://{b}/d/z.log",
    ]
    assert "omitting" in star.stderr and gcs_server.has_object(b, "d/sub/b.txt")

    for i in range(25):
        gcs_server.put_object(b, f"d/many/{i:02d}", b"x")
    tree = run_cli("rm", "-r", "-j", "4", "--list-page-size", "7", f"gs://{b}/d")
    assert tree.returncode == 0, tree.stderr
    assert "removed 26 object(s)" in tree.stderr
    assert not [n for n in ("d/sub/b.txt", "d/many/00", "d/many/24") if gcs_server.has_object(b, n)]


def test_rm_deletes_only_the_listed_generation(
    run_cli: RunCli, gcs_server: GCSServer, gcs_bucket: str
) -> None:
    gcs_server.put_object(gcs_bucket, "r/a", b"a")
    gcs_server.clear_requests()
    assert run_cli("rm", "-r", f"gs://{gcs_bucket}/r/").returncode == 0
    deletes = [r for r in gcs_server.requests if r.method == "DELETE"]
    assert len(deletes) == 1 and "ifGenerationMatch=" in deletes[0].path


def _crc(data: bytes) -> str:
    return base64.b64encode(google_crc32c.value(data).to_bytes(4, "big")).decode()


def _cat(
    gcs_server: GCSServer, *args: str, verb: str = "cat"
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        command(verb, "--endpoint", gcs_server.endpoint, *args),
        capture_output=True,
        env=cli_env(),
        timeout=60,
        check=False,
    )


def _cat_process(gcs_server: GCSServer, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        command("cat", "--endpoint", gcs_server.endpoint, *args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli_env(),
    )


def test_cat_small_and_large_in_order(gcs_server: GCSServer, gcs_bucket: str) -> None:
    small = b"hello\n"
    large = os.urandom(5 * 2**20 + 777)
    gcs_server.put_object(gcs_bucket, "s.txt", small)
    gcs_server.put_object(gcs_bucket, "l.bin", large)
    gcs_server.clear_requests()
    result = _cat(
        gcs_server,
        "--chunk-size",
        "1MiB",
        "--threads",
        "3",
        f"gs://{gcs_bucket}/s.txt",
        f"gs://{gcs_bucket}/l.bin",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == small + large
    ranged = [r for r in gcs_server.requests if "l.bin" in r.path and "alt=media" in r.path]
    assert len(ranged) == 6
    assert {r.headers.get("range") for r in ranged} == {
        f"bytes={i * 2**20}-{min(len(large), (i + 1) * 2**20) - 1}" for i in range(6)
    }
    assert gcs_server.media_bytes_sent_for(gcs_bucket) == len(small) + len(large)


def test_cat_missing_and_prefix(gcs_server: GCSServer, gcs_bucket: str) -> None:
    gcs_server.put_object(gcs_bucket, "here", b"here")
    result = _cat(gcs_server, f"gs://{gcs_bucket}/gone", f"gs://{gcs_bucket}/here")
    assert result.returncode == 1
    assert result.stdout == b"here"
    assert f"error: gs://{gcs_bucket}/gone: matched no objects".encode() in result.stderr
    prefix = _cat(gcs_server, f"gs://{gcs_bucket}/")
    assert prefix.returncode == 2 and b"cat needs an object" in prefix.stderr


def test_cat_detects_corruption(gcs_server: GCSServer, gcs_bucket: str) -> None:
    data = os.urandom(3 * 2**20)
    gcs_server.put_object(gcs_bucket, "c.bin", data)
    # Change the stored bytes behind the server's back: the CRC32C it serves is the old one.
    path = gcs_server.object_path(gcs_bucket, "c.bin")
    with open(path, "r+b") as stream:
        stream.seek(2**20 + 5)
        stream.write(b"\x00" if data[2**20 + 5] else b"\x01")
    gcs_server.put_object(gcs_bucket, "d.bin", b"after the bad one")
    result = _cat(
        gcs_server, "--chunk-size", "1MiB", f"gs://{gcs_bucket}/c.bin", f"gs://{gcs_bucket}/d.bin"
    )
    assert result.returncode == 1
    assert b"data corruption" in result.stderr and b"do not use this output" in result.stderr
    assert f"gs://{gcs_bucket}/c.bin".encode() in result.stderr
    # The last chunk is held back once the CRC32C fails; what came before is flagged.
    assert result.stdout.endswith(b"after the bad one")
    written = len(result.stdout) - len(b"after the bad one")
    assert written == 2 * 2**20
    assert (
        f"the {written} bytes of it already written to stdout are not to be trusted".encode()
        in (result.stderr)
    )
    assert b"Traceback" not in result.stderr and b"DataCorruption" not in result.stderr


def test_cat_goes_through_the_read_ahead_reader(gcs_server: GCSServer, gcs_bucket: str) -> None:
    data = os.urandom(3 * 2**20 + 1)
    first = gcs_server.put_object(gcs_bucket, "g.bin", data)
    gcs_server.clear_requests()
    result = _cat(gcs_server, "--chunk-size", "1MiB", "--threads", "2", f"gs://{gcs_bucket}/g.bin")
    assert result.returncode == 0, result.stderr
    assert result.stdout == data
    reads = [r for r in gcs_server.requests if "g.bin" in r.path and "alt=media" in r.path]
    assert len(reads) == 4
    # Every ranged GET is pinned to the listed generation.
    assert all(f"generation={first['generation']}" in r.path for r in reads)


def test_cat_refused_read_names_the_object_and_says_nothing_was_written(
    gcs_server: GCSServer, gcs_bucket: str
) -> None:
    gcs_server.put_object(gcs_bucket, "r.bin", os.urandom(2**20))
    test_id = gcs_server.create_retry_test({"storage.objects.get": ["return-403"]})
    # A wildcard: the listing is objects.list, so the refused objects.get is the read.
    result = _cat(gcs_server, "-H", f"x-retry-test-id: {test_id}", f"gs://{gcs_bucket}/r.b?n")
    assert result.returncode == 1
    assert result.stdout == b""
    assert f"gs://{gcs_bucket}/r.bin".encode() in result.stderr
    assert b"nothing was written for it" in result.stderr
    hint = (
        f"check that your credentials may read gs://{gcs_bucket}/r.bin (roles/storage.objectViewer)"
    )
    assert hint.encode() in result.stderr
    assert b"Traceback" not in result.stderr


def test_a_refused_metadata_or_listing_says_what_to_check(
    gcs_server: GCSServer, gcs_bucket: str
) -> None:
    gcs_server.put_object(gcs_bucket, "m.bin", b"meta")
    for verb in ("stat", "cat"):
        test_id = gcs_server.create_retry_test({"storage.objects.get": ["return-403"]})
        result = _cat(
            gcs_server, "-H", f"x-retry-test-id: {test_id}", f"gs://{gcs_bucket}/m.bin", verb=verb
        )
        assert result.returncode == 1 and result.stdout == b""
        lines = result.stderr.decode().splitlines()
        assert len(lines) == 1, (verb, lines)
        assert lines[0].startswith(f"error: gs://{gcs_bucket}/m.bin: permission denied (HTTP 403")
        assert lines[0].endswith(
            f"; check that your credentials may read gs://{gcs_bucket}/m.bin "
            "(roles/storage.objectViewer)"
        ), verb
    test_id = gcs_server.create_retry_test({"storage.objects.list": ["return-403"]})
    listing = _cat(
        gcs_server, "-H", f"x-retry-test-id: {test_id}", f"gs://{gcs_bucket}/", verb="ls"
    )
    assert listing.returncode == 1
    assert (
        f"check that your credentials may list gs://{gcs_bucket} (roles/storage.objectViewer)"
        in listing.stderr.decode()
    )


def test_stat_output_and_missing(run_cli: RunCli, gcs_server: GCSServer, gcs_bucket: str) -> None:
    data = b"stat me"
    gcs_server.put_object(
        gcs_bucket,
        "o.txt",
        data,
        content_type="text/plain",
        metadata={"k": "v", "goog-reserved-file-mtime": "1600000000"},
    )
    result = run_cli("stat", f"gs://{gcs_bucket}/o.txt")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"gs://{gcs_bucket}/o.txt:"
    assert re.fullmatch(
        r"    Creation time:          \w{3}, \d\d \w{3} \d{4} [\d:]{8} GMT", lines[1]
    )
    assert "    Content-Length:         7" in lines
    assert "    Content-Type:           text/plain" in lines
    at = lines.index("    Metadata:")
    assert lines[at + 1 : at + 3] == [
        "        goog-reserved-file-mtime: 1600000000",
        "        k:                      v",
    ]
    assert f"    Hash (crc32c):          {_crc(data)}" in lines
    assert any(line.startswith("    Generation:") for line in lines)

    as_json = run_cli("stat", "--json", f"gs://{gcs_bucket}/o.txt")
    assert json.loads(as_json.stdout)["crc32c"] == _crc(data)

    missing = run_cli("stat", f"gs://{gcs_bucket}/absent")
    assert missing.returncode == 1 and missing.stdout == ""
    assert f"error: gs://{gcs_bucket}/absent: matched no objects" in missing.stderr


def test_du(run_cli: RunCli, filled: str) -> None:
    b = filled
    each = run_cli("du", f"gs://{b}/d")
    assert each.returncode == 0, each.stderr
    assert each.stdout.splitlines() == [
        f"5            gs://{b}/d/a.txt",
        f"6            gs://{b}/d/sub/b.txt",
        f"1            gs://{b}/d/z.log",
    ]
    summary = run_cli("du", "-s", "-c", f"gs://{b}/d", f"gs://{b}", f"gs://{b}/**.txt")
    assert summary.stdout.splitlines() == [
        f"12           gs://{b}/d",
        f"15           gs://{b}",
        f"14           gs://{b}/**.txt",
        "41           total",
    ]
    missing = run_cli("du", "-s", f"gs://{b}/nothing")
    assert missing.returncode == 1
    assert f"error: gs://{b}/nothing: matched no objects" in missing.stderr


def test_human_size() -> None:
    assert [human_size(n) for n in (0, 12, 1024, 4552, 5 * 2**30 + 1)] == [
        "0 B",
        "12 B",
        "1 KiB",
        "4.45 KiB",
        "5 GiB",
    ]


def test_cat_gzip_stored_object_is_decoded_and_checked(
    gcs_server: GCSServer, gcs_bucket: str
) -> None:
    import gzip

    text = b"line\n" * 200_000
    gcs_server.put_object(gcs_bucket, "z.txt", gzip.compress(text), content_encoding="gzip")
    result = _cat(gcs_server, "--chunk-size", "256KiB", f"gs://{gcs_bucket}/z.txt")
    assert result.returncode == 0, result.stderr
    assert result.stdout == text


def test_cat_into_a_closed_pipe_stops_quietly(gcs_server: GCSServer, gcs_bucket: str) -> None:
    gcs_server.put_object(gcs_bucket, "big", os.urandom(4 * 2**20))
    proc = _cat_process(gcs_server, "--chunk-size", "256KiB", f"gs://{gcs_bucket}/big")
    assert proc.stdout is not None and proc.stderr is not None
    head = proc.stdout.read(1000)
    proc.stdout.close()
    code = proc.wait(timeout=60)
    errors = proc.stderr.read()
    proc.stderr.close()
    assert len(head) == 1000
    assert code == 141
    assert b"Traceback" not in errors


def test_missing_bucket_says_what_to_check(run_cli: RunCli) -> None:
    for args in (["ls"], ["du", "-s"], ["stat"], ["rm"]):
        result = run_cli(*args, "gs://no-such-bucket-x/some/thing")
        assert result.returncode == 1, (args, result.stderr)
        assert "gs://no-such-bucket-x/some/thing" in result.stderr
        assert "check the bucket name" in result.stderr or "matched no objects" in result.stderr


def test_cat_starts_the_whole_first_window_at_once(gcs_server: GCSServer, gcs_bucket: str) -> None:
    import time

    data = os.urandom(4 * 2**20)
    gcs_server.put_object(gcs_bucket, "win.bin", data)
    # The first ranged GET's body stalls for 5 s after its headers.
    test_id = gcs_server.create_retry_test({"storage.objects.get": ["stall-for-5s-after-0K"]})
    gcs_server.clear_requests()
    proc = _cat_process(
        gcs_server,
        "--chunk-size",
        "1MiB",
        "--threads",
        "4",
        "-H",
        f"x-retry-test-id: {test_id}",
        f"gs://{gcs_bucket}/win.b?n",  # a wildcard: the listing gives size and generation
    )

    def reads() -> list[str]:
        return [r.headers.get("range", "") for r in gcs_server.requests if "/o/win.bin" in r.path]

    try:
        deadline = time.monotonic() + 60
        while not reads() and time.monotonic() < deadline:
            time.sleep(0.01)
        first = time.monotonic()
        while len(reads()) < 4 and time.monotonic() < first + 2.5:
            time.sleep(0.01)
        # All four were asked for during the stall, not after the first body.
        assert len(reads()) == 4, reads()
    finally:
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out == data
    assert sorted(reads()) == sorted(f"bytes={i * 2**20}-{(i + 1) * 2**20 - 1}" for i in range(4))


def test_cat_read_broken_mid_stream_says_what_was_written(
    gcs_server: GCSServer, gcs_bucket: str
) -> None:
    data = os.urandom(3 * 2**20)
    gcs_server.put_object(gcs_bucket, "cut.bin", data)
    test_id = gcs_server.create_retry_test(
        {"storage.objects.get": ["return-broken-stream-after-256K"]}
    )
    result = _cat(
        gcs_server,
        "--retry-deadline",
        "0",
        "--chunk-size",
        "1MiB",
        "--threads",
        "2",
        "-H",
        f"x-retry-test-id: {test_id}",
        f"gs://{gcs_bucket}/cut.b?n",
    )
    assert result.returncode == 1
    written = len(result.stdout)
    assert written < len(data) and result.stdout == data[:written]
    stderr = result.stderr.decode()
    assert f"error: gs://{gcs_bucket}/cut.bin: " in stderr
    if written:
        assert f"the output is incomplete ({written} bytes written)" in stderr
    else:
        assert "nothing was written for it" in stderr
    assert "Traceback" not in stderr


def _cp_out(gcs_server: GCSServer, *args: str) -> subprocess.CompletedProcess[bytes]:
    return _cat(gcs_server, *args, verb="cp")


def test_cp_to_stdout_is_cats_path(gcs_server: GCSServer, gcs_bucket: str) -> None:
    import gzip

    text = b"zipped line\n" * 100_000
    gcs_server.put_object(gcs_bucket, "z.txt", gzip.compress(text), content_encoding="gzip")
    zipped = _cp_out(gcs_server, f"gs://{gcs_bucket}/z.txt", "-")
    assert zipped.returncode == 0, zipped.stderr
    assert zipped.stdout == text  # decoded, as cat does
    data = os.urandom(3 * 2**20 + 11)
    meta = gcs_server.put_object(gcs_bucket, "p.bin", data)
    gcs_server.clear_requests()
    plain = _cp_out(gcs_server, "--threads", "3", f"gs://{gcs_bucket}/p.bin", "-")
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout == data
    reads = [r for r in gcs_server.requests if "/o/p.bin" in r.path and "alt=media" in r.path]
    assert len(reads) == 1 + (len(data) - 1) // (8 * 2**20)  # 8 MiB chunks
    assert all(f"generation={meta['generation']}" in r.path for r in reads)
    # Corruption: the last chunk is held back and the bytes already out are named.
    path = gcs_server.object_path(gcs_bucket, "p.bin")
    with open(path, "r+b") as stream:
        stream.seek(5)
        stream.write(b"\x00" if data[5] else b"\x01")
    bad = _cp_out(gcs_server, f"gs://{gcs_bucket}/p.bin", "-")
    assert bad.returncode == 1
    assert bad.stdout == b""  # one chunk: nothing came out
    stderr = bad.stderr.decode()
    assert stderr.startswith(f"error: gs://{gcs_bucket}/p.bin: data corruption")
    assert "nothing was written for it, and run cp again" in stderr
    missing = _cp_out(gcs_server, f"gs://{gcs_bucket}/nope", "-")
    assert missing.returncode == 1
    assert f"error: gs://{gcs_bucket}/nope: matched no objects" in missing.stderr.decode()
