"""``cp`` as gsutil users expect it: names, several sources, wildcards, -I, -n, -P, gs→gs.

Every case runs the command in a subprocess against the loopback server and checks the
exact set of object names (or files) it produced.
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any
from urllib.parse import quote

import pytest
import requests
from cli_helpers import RunCli

from resumable_media.testing import GCSServer


def _names(gcs_server: GCSServer, bucket: str) -> list[str]:
    url = f"{gcs_server.endpoint}/storage/v1/b/{bucket}/o"
    names: list[str] = []
    token = None
    while True:
        params: dict[str, str] = {"pageToken": token} if token else {}
        page = requests.get(url, params=params, timeout=10).json()
        names += [item["name"] for item in page.get("items", [])]
        token = page.get("nextPageToken")
        if not token:
            return sorted(names)


def _meta(gcs_server: GCSServer, bucket: str, name: str) -> dict[str, Any]:
    url = f"{gcs_server.endpoint}/storage/v1/b/{bucket}/o/{quote(name, safe='')}"
    response = requests.get(url, timeout=10)
    response.raise_for_status()
    data: dict[str, Any] = response.json()
    return data


def _files(root: pathlib.Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def _tree(root: pathlib.Path) -> pathlib.Path:
    """``root/site`` with ``index.html``, ``css/a.css`` and ``css/deep/b.css``."""
    site = root / "site"
    (site / "css" / "deep").mkdir(parents=True)
    (site / "index.html").write_bytes(b"<html>")
    (site / "css" / "a.css").write_bytes(b"a{}")
    (site / "css" / "deep" / "b.css").write_bytes(b"b{}")
    return site


SITE = ["css/a.css", "css/deep/b.css", "index.html"]


# -- upload naming ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("destination", "existing", "prefix"),
    [
        ("", None, "site/"),  # the bucket root: DIR keeps its name
        ("/", None, "site/"),
        ("/backup/", None, "backup/site/"),  # a trailing '/': a container
        ("/new", None, "new/"),  # a new name: the contents go there
        ("/old", "old/keep.txt", "old/site/"),  # an existing prefix: a container
    ],
)
def test_recursive_upload_names(
    run_cli: RunCli,
    gcs_server: GCSServer,
    gcs_bucket: str,
    tmp_path: pathlib.Path,
    destination: str,
    existing: str | None,
    prefix: str,
) -> None:
    site = _tree(tmp_path)
    if existing:
        gcs_server.put_object(gcs_bucket, existing, b"keep")
    result = run_cli("cp", "-r", str(site), f"gs://{gcs_bucket}{destination}")
    assert result.returncode == 0, result.stderr
    expected = sorted([prefix + rel for rel in SITE] + ([existing] if existing else []))
    assert _names(gcs_server, gcs_bucket) == expected
    assert gcs_server.object_bytes(gcs_bucket, prefix + "css/deep/b.css") == b"b{}"


def test_single_file_upload_names(
    run_cli: RunCli, gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    source = tmp_path / "notes.txt"
    source.write_bytes(b"n")
    gcs_server.put_object(gcs_bucket, "folder/other", b"x")
    for destination in ("renamed.txt", "d/", "folder", ""):
        result = run_cli("cp", str(source), f"gs://{gcs_bucket}/{destination}")
        assert result.returncode == 0, result.stderr
    assert _names(gcs_server, gcs_bucket) == [
        "d/notes.txt",
        "folder/notes.txt",  # "folder" exists as a prefix: the file goes inside
        "folder/other",
        "notes.txt",
        "renamed.txt",
    ]


def test_several_sources_into_a_prefix_without_slash(
    run_cli: RunCli, gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    paths = []
    for name in ("a", "b", "c"):
        (tmp_path / name).write_bytes(name.encode())
        paths.append(str(tmp_path / name))
    site = _tree(tmp_path)
    result = run_cli("cp", "-r", *paths, str(site), f"gs://{gcs_bucket}/d")
    assert result.returncode == 0, result.stderr
    assert _names(gcs_server, gcs_bucket) == ["d/a", "d/b", "d/c"] + [
        f"d/site/{rel}" for rel in SITE
    ]


# -- download naming --------------------------------------------------------------------------


def _put_site(gcs_server: GCSServer, bucket: str, prefix: str = "p/") -> None:
    for rel in SITE:
        gcs_server.put_object(bucket, prefix + rel, rel.encode())


@pytest.mark.parametrize(
    ("source", "make", "target", "root"),
    [
        ("p", False, "x", "x"),  # a new directory: the contents go there
        ("p", True, "x", "x/p"),  # an existing directory keeps the last component
        ("p/", True, "x", "x/p"),
        ("p", False, "x/", "x/p"),  # a trailing '/': a container, created
        ("", True, "x", "x/{bucket}"),  # a whole bucket keeps the bucket's name
    ],
)
def test_recursive_download_names(
    run_cli: RunCli,
    gcs_server: GCSServer,
    gcs_bucket: str,
    tmp_path: pathlib.Path,
    source: str,
    make: bool,
    target: str,
    root: str,
) -> None:
    _put_site(gcs_server, gcs_bucket)
    if make:
        (tmp_path / "x").mkdir()
    destination = str(tmp_path / "x") + ("/" if target.endswith("/") else "")
    result = run_cli("cp", "-r", f"gs://{gcs_bucket}/{source}", destination)
    assert result.returncode == 0, result.stderr
    base = root.format(bucket=gcs_bucket)
    extra = "p/" if source == "" else ""
    assert _files(tmp_path) == sorted(f"{base}/{extra}{rel}" for rel in SITE)


def test_download_into_directory_and_several_sources(
    run_cli: RunCli, gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    gcs_server.put_object(gcs_bucket, "p/one.txt", b"1")
    gcs_server.put_object(gcs_bucket, "q/two.txt", b"2")
    out = tmp_path / "out"
    out.mkdir()
    single = run_cli("cp", f"gs://{gcs_bucket}/p/one.txt", str(out))
    assert single.returncode == 0, single.stderr
    assert (out / "one.txt").read_bytes() == b"1"

    refused = run_cli(
        "cp", f"gs://{gcs_bucket}/p/one.txt", f"gs://{gcs_bucket}/q/two.txt", str(tmp_path / "no")
    )
    assert refused.returncode == 2
    assert str(tmp_path / "no") in refused.stderr and "end the destination with '/'" in (
        refused.stderr
    )
    assert not (tmp_path / "no").exists()

    many = run_cli(
        "cp", f"gs://{gcs_bucket}/p/one.txt", f"gs://{gcs_bucket}/q/two.txt", f"{tmp_path}/new/"
    )
    assert many.returncode == 0, many.stderr
    assert _files(tmp_path / "new") == ["one.txt", "two.txt"]


# -- wildcards --------------------------------------------------------------------------------


def test_gs_wildcards(
    run_cli: RunCli, gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    for name in ("w/a.txt", "w/b.txt", "w/ab.log", "w/sub/c.txt", "w/sub/deep/d.txt", "wx.txt"):
        gcs_server.put_object(gcs_bucket, name, name.encode())
    star = run_cli("cp", f"gs://{gcs_bucket}/w/*.txt", f"{tmp_path}/star/")
    assert star.returncode == 0, star.stderr
    assert _files(tmp_path / "star") == ["a.txt", "b.txt"]

    question = run_cli("cp", f"gs://{gcs_bucket}/w/?.txt", f"{tmp_path}/q/")
    assert question.returncode == 0, question.stderr
    assert _files(tmp_path / "q") == ["a.txt", "b.txt"]

    deep = run_cli("cp", f"gs://{gcs_bucket}/w/**.txt", f"{tmp_path}/deep/")
    assert deep.returncode == 0, deep.stderr
    assert _files(tmp_path / "deep") == ["a.txt", "b.txt", "c.txt", "d.txt"]  # flattened
    assert (tmp_path / "deep" / "d.txt").read_bytes() == b"w/sub/deep/d.txt"

    # A prefix matched without -r is omitted (and said so); with -r it is copied as a tree.
    flat = run_cli("cp", f"gs://{gcs_bucket}/w/s*", f"{tmp_path}/flat/")
    assert flat.returncode == 1
    assert f"omitting gs://{gcs_bucket}/w/sub/" in flat.stderr
    tree = run_cli("cp", "-r", f"gs://{gcs_bucket}/w/s*", f"{tmp_path}/tree/")
    assert tree.returncode == 0, tree.stderr
    assert _files(tmp_path / "tree") == ["sub/c.txt", "sub/deep/d.txt"]

    gs_to_gs = run_cli("cp", f"gs://{gcs_bucket}/w/*.txt", f"gs://{gcs_bucket}/copied")
    assert gs_to_gs.returncode == 0, gs_to_gs.stderr
    assert [n for n in _names(gcs_server, gcs_bucket) if n.startswith("copied")] == [
        "copied/a.txt",
        "copied/b.txt",
    ]

    nothing = run_cli("cp", f"gs://{gcs_bucket}/w/*.pdf", f"{tmp_path}/none/")
    assert nothing.returncode == 1
    assert f"gs://{gcs_bucket}/w/*.pdf: no match" in nothing.stderr


def test_local_wildcards(
    run_cli: RunCli, gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    site = _tree(tmp_path)
    (site / "x.html").write_bytes(b"x")
    star = run_cli("cp", f"{site}/*.html", f"gs://{gcs_bucket}/star/")
    assert star.returncode == 0, star.stderr
    deep = run_cli("cp", f"{site}/**.css", f"gs://{gcs_bucket}/deep/")
    assert deep.returncode == 0, deep.stderr
    question = run_cli("cp", "-r", f"{tmp_path}/sit?", f"gs://{gcs_bucket}/q/")
    assert question.returncode == 0, question.stderr
    assert _names(gcs_server, gcs_bucket) == [
        "deep/a.css",
        "deep/b.css",
        *[f"q/site/{rel}" for rel in sorted([*SITE, "x.html"])],
        "star/index.html",
        "star/x.html",
    ]


def test_read_sources_from_stdin(
    run_cli: RunCli, gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    for name in ("one", "two words", "three"):
        (tmp_path / name).write_bytes(name.encode())
    listing = "\n".join(str(tmp_path / n) for n in ("one", "two words")) + "\n\n"
    result = run_cli("cp", "-I", f"gs://{gcs_bucket}/in/", stdin=listing)
    assert result.returncode == 0, result.stderr
    assert _names(gcs_server, gcs_bucket) == ["in/one", "in/two words"]
    assert gcs_server.object_bytes(gcs_bucket, "in/two words") == b"two words"


# -- -n ---------------------------------------------------------------------------------------


def test_no_clobber_upload_sends_if_generation_match_0(
    run_cli: RunCli, gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    gcs_server.put_object(gcs_bucket, "n/old.txt", b"server copy")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "old.txt").write_bytes(b"local copy")
    (tmp_path / "src" / "new.txt").write_bytes(b"new")
    gcs_server.clear_requests()
    result = run_cli("cp", "-n", "--json", "-r", f"{tmp_path}/src/", f"gs://{gcs_bucket}/n")
    assert result.returncode == 0, result.stderr
    assert gcs_server.object_bytes(gcs_bucket, "n/old.txt") == b"server copy"
    assert gcs_server.object_bytes(gcs_bucket, "n/src/new.txt") == b"new"
    status = {
        json.loads(line)["destination"]: json.loads(line)["status"]
        for line in result.stdout.splitlines()
    }
    assert status == {
        f"gs://{gcs_bucket}/n/src/new.txt": "ok",
        f"gs://{gcs_bucket}/n/src/old.txt": "ok",
    }
    # "n" existed as a prefix, so src kept its name; now copy into n/ directly, clobbering.
    again = run_cli("cp", "-n", "--json", f"{tmp_path}/src/old.txt", f"gs://{gcs_bucket}/n/")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["status"] == "skipped"
    assert gcs_server.object_bytes(gcs_bucket, "n/old.txt") == b"server copy"
    uploads = [r for r in gcs_server.requests if r.path.startswith("/upload/")]
    assert uploads and all("ifGenerationMatch=0" in r.path for r in uploads)
    assert uploads[-1].status == 412


def test_no_clobber_large_upload_sends_no_bytes(
    run_cli: RunCli, gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    gcs_server.put_object(gcs_bucket, "big.bin", b"server")
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(2_000_000))  # one multipart request at the default chunk
    gcs_server.clear_requests()
    result = run_cli("cp", "-n", str(source), f"gs://{gcs_bucket}/")
    assert result.returncode == 0, result.stderr
    assert "skipped" in result.stderr and "(-n)" in result.stderr
    assert gcs_server.object_bytes(gcs_bucket, "big.bin") == b"server"
    assert not [r for r in gcs_server.requests if r.path.startswith("/upload/")]


def test_no_clobber_download_and_rewrite(
    run_cli: RunCli, gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    gcs_server.put_object(gcs_bucket, "s/a.txt", b"remote a")
    gcs_server.put_object(gcs_bucket, "s/b.txt", b"remote b")
    gcs_server.put_object(gcs_bucket, "t/a.txt", b"existing copy")
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.txt").write_bytes(b"local a")
    down = run_cli("cp", "-n", f"gs://{gcs_bucket}/s/*", str(out))
    assert down.returncode == 0, down.stderr
    assert (out / "a.txt").read_bytes() == b"local a"
    assert (out / "b.txt").read_bytes() == b"remote b"

    gcs_server.clear_requests()
    copy = run_cli("cp", "-n", f"gs://{gcs_bucket}/s/*", f"gs://{gcs_bucket}/t/")
    assert copy.returncode == 0, copy.stderr
    assert gcs_server.object_bytes(gcs_bucket, "t/a.txt") == b"existing copy"
    assert gcs_server.object_bytes(gcs_bucket, "t/b.txt") == b"remote b"
    rewrites = [r for r in gcs_server.requests if "/rewriteTo/" in r.path]
    assert len(rewrites) == 2 and all("ifGenerationMatch=0" in r.path for r in rewrites)
    assert sorted(r.status for r in rewrites) == [200, 412]


# -- -P ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "extra", "method"),
    [
        (1000, [], "multipart"),
        (700_000, ["--chunk-size", "256KiB"], "pipelined"),
        (1_300_000, ["--chunk-size", "256KiB", "--processes", "2"], "parallel-xml"),
    ],
)
def test_preserve_posix_round_trip(
    run_cli: RunCli,
    gcs_server: GCSServer,
    gcs_bucket: str,
    tmp_path: pathlib.Path,
    size: int,
    extra: list[str],
    method: str,
) -> None:
    source = tmp_path / "data.bin"
    data = os.urandom(size)
    source.write_bytes(data)
    os.chmod(source, 0o640)
    os.utime(source, (1_500_000_000, 1_600_000_000))
    up = run_cli("cp", "-P", "--json", *extra, str(source), f"gs://{gcs_bucket}/keep.bin")
    assert up.returncode == 0, up.stderr
    assert json.loads(up.stdout)["method"] == method
    custom = _meta(gcs_server, gcs_bucket, "keep.bin").get("metadata")
    assert custom == {"goog-reserved-file-mtime": "1600000000", "goog-reserved-posix-mode": "640"}

    plain = tmp_path / "plain.bin"
    assert run_cli("cp", *extra, f"gs://{gcs_bucket}/keep.bin", str(plain)).returncode == 0
    assert int(plain.stat().st_mtime) != 1_600_000_000

    kept = tmp_path / "kept.bin"
    down = run_cli("cp", "-P", *extra, f"gs://{gcs_bucket}/keep.bin", str(kept))
    assert down.returncode == 0, down.stderr
    assert kept.read_bytes() == data
    assert kept.stat().st_mtime == 1_600_000_000
    assert kept.stat().st_mode & 0o777 == 0o640


def test_preserve_posix_recursive_download(
    run_cli: RunCli, gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    site = _tree(tmp_path)
    for offset, path in enumerate(sorted(p for p in site.rglob("*") if p.is_file())):
        os.utime(path, (1_000_000_000, 1_000_000_000 + offset))
    assert run_cli("cp", "-r", "-P", str(site), f"gs://{gcs_bucket}/").returncode == 0
    back = tmp_path / "back"
    down = run_cli("cp", "-r", "-P", f"gs://{gcs_bucket}/site", str(back))
    assert down.returncode == 0, down.stderr
    for rel in SITE:
        assert (back / rel).stat().st_mtime_ns == (site / rel).stat().st_mtime_ns


# -- gs→gs ------------------------------------------------------------------------------------


def test_gs_to_gs_is_server_side(
    run_cli: RunCli, gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    other = gcs_bucket + "-dst"
    gcs_server.create_bucket(other)
    data = os.urandom(3 * 2**20 + 5)
    gcs_server.put_object(
        gcs_bucket, "src/big.bin", data, content_type="image/png", metadata={"owner": "ops"}
    )
    gcs_server.put_object(gcs_bucket, "src/dir/small.txt", b"small", content_type="text/plain")
    gcs_server.rewrite_bytes_per_call = 2**20
    gcs_server.clear_requests()
    try:
        result = run_cli("cp", "-r", "--json", f"gs://{gcs_bucket}/src", f"gs://{other}/")
    finally:
        gcs_server.rewrite_bytes_per_call = None
    assert result.returncode == 0, result.stderr
    assert _names(gcs_server, other) == ["src/big.bin", "src/dir/small.txt"]
    assert gcs_server.object_bytes(other, "src/big.bin") == data
    copied = _meta(gcs_server, other, "src/big.bin")
    assert copied["contentType"] == "image/png"
    assert copied["metadata"] == {"owner": "ops"}
    assert _meta(gcs_server, other, "src/dir/small.txt")["contentType"] == "text/plain"
    # No object byte passed through the client: no media request at all, none counted.
    assert gcs_server.media_bytes_sent_for(gcs_bucket) == 0
    assert gcs_server.media_bytes_sent_for(other) == 0
    assert not [r for r in gcs_server.requests if "/upload/" in r.path or "alt=media" in r.path]
    rewrites = [r for r in gcs_server.requests if "/rewriteTo/" in r.path]
    big = [r for r in rewrites if "big.bin" in r.path]
    assert len(big) == 4  # 3 MiB + 5 bytes at 1 MiB per call
    assert sum("rewriteToken=" in r.path for r in big) == 3
    assert all(r.body_bytes_in < 1000 and r.body_bytes_out < 10_000 for r in rewrites)
    methods = {json.loads(line)["method"] for line in result.stdout.splitlines()}
    assert methods == {"rewrite"}


def test_gs_to_gs_missing_source_names_it(
    run_cli: RunCli, gcs_server: GCSServer, gcs_bucket: str
) -> None:
    result = run_cli("cp", f"gs://{gcs_bucket}/absent.txt", f"gs://{gcs_bucket}/copy.txt")
    assert result.returncode == 1
    assert f"gs://{gcs_bucket}/absent.txt" in result.stderr
    assert "resumable-media ls" in result.stderr
    assert not gcs_server.has_object(gcs_bucket, "copy.txt")


# -- --manifest -------------------------------------------------------------------------------


def test_manifest_rerun_skips_what_is_still_in_place(
    run_cli: RunCli, gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    site = _tree(tmp_path)
    manifest = tmp_path / "cp.jsonl"
    first = run_cli("cp", "-r", "--manifest", str(manifest), str(site), f"gs://{gcs_bucket}/")
    assert first.returncode == 0, first.stderr
    records = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert sorted(r["destination"] for r in records) == [
        f"gs://{gcs_bucket}/site/{rel}" for rel in SITE
    ]
    assert {r["status"] for r in records} == {"copied"}
    assert all(r["crc32c"] and r["generation"] and r["action"] == "upload" for r in records)

    (site / "index.html").write_bytes(b"<html> changed")
    gcs_server.clear_requests()
    second = run_cli(
        "cp", "-r", "--json", "--manifest", str(manifest), str(site), f"gs://{gcs_bucket}/"
    )
    assert second.returncode == 0, second.stderr
    status = {
        json.loads(x)["destination"]: json.loads(x)["status"] for x in second.stdout.splitlines()
    }
    assert status == {
        f"gs://{gcs_bucket}/site/css/a.css": "skipped",
        f"gs://{gcs_bucket}/site/css/deep/b.css": "skipped",
        f"gs://{gcs_bucket}/site/index.html": "ok",
    }
    uploads = [r for r in gcs_server.requests if r.path.startswith("/upload/")]
    assert len(uploads) == 1  # only the changed file sent bytes
    assert gcs_server.object_bytes(gcs_bucket, "site/index.html") == b"<html> changed"

    # The destination changed behind the manifest's back: copied again, not trusted.
    gcs_server.put_object(gcs_bucket, "site/css/a.css", b"overwritten")
    back = tmp_path / "back"
    down = run_cli("cp", "-r", "--manifest", str(manifest), f"gs://{gcs_bucket}/site", str(back))
    assert down.returncode == 0, down.stderr
    third = run_cli(
        "cp", "-r", "--json", "--manifest", str(manifest), str(site), f"gs://{gcs_bucket}/"
    )
    status = {
        json.loads(x)["destination"]: json.loads(x)["status"] for x in third.stdout.splitlines()
    }
    assert status[f"gs://{gcs_bucket}/site/css/a.css"] == "ok"
    assert gcs_server.object_bytes(gcs_bucket, "site/css/a.css") == b"a{}"
    assert status[f"gs://{gcs_bucket}/site/index.html"] == "skipped"


def test_flattened_wildcard_refuses_a_second_source_for_one_name(
    run_cli: RunCli, gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    gcs_server.put_object(gcs_bucket, "x/a/same.txt", b"first")
    gcs_server.put_object(gcs_bucket, "x/b/same.txt", b"second")
    result = run_cli("cp", f"gs://{gcs_bucket}/x/**", f"{tmp_path}/out/")
    assert result.returncode == 1
    assert f"gs://{gcs_bucket}/x/b/same.txt: another source is also copied to" in result.stderr
    assert (tmp_path / "out" / "same.txt").read_bytes() == b"first"


def test_stdin_gs_sources_and_a_new_directory_with_slash(
    run_cli: RunCli, gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    gcs_server.put_object(gcs_bucket, "i/one", b"1")
    gcs_server.put_object(gcs_bucket, "i/deep/two", b"2")
    listing = f"gs://{gcs_bucket}/i/one\ngs://{gcs_bucket}/i/deep/two\n"
    result = run_cli("cp", "-I", f"{tmp_path}/got/", stdin=listing)
    assert result.returncode == 0, result.stderr
    assert _files(tmp_path / "got") == ["one", "two"]
    single = run_cli("cp", f"gs://{gcs_bucket}/i/one", f"{tmp_path}/solo/")
    assert single.returncode == 0, single.stderr
    assert (tmp_path / "solo" / "one").read_bytes() == b"1"
    empty = run_cli("cp", "-I", f"gs://{gcs_bucket}/x/", stdin="\n")
    assert empty.returncode == 2 and "no source given" in empty.stderr
