"""Pure-logic pieces of the command: URLs, endpoint choice, sizes, headers, paths, progress."""

from __future__ import annotations

import argparse
import io
import os
import pathlib
from urllib.parse import unquote, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from resumable_media._cli.options import headers_from_env, parse_header, parse_size
from resumable_media._cli.progress import ProgressBar, format_eta
from resumable_media._objects.paths import LocalPaths, UnsafeName, local_path_for
from resumable_media._objects.transfer import make_durable
from resumable_media._objects.urls import (
    GCS_ENDPOINT,
    Endpoint,
    GsUrl,
    parse_gs_url,
    resolve_endpoint,
)

EP = Endpoint("http://127.0.0.1:9", authenticated=False)


def test_parse_gs_url_keeps_url_syntax_in_names() -> None:
    assert parse_gs_url("gs://b/a b/c#d?e=%41") == GsUrl("b", "a b/c#d?e=%41")
    assert parse_gs_url("gs://bucket") == GsUrl("bucket", "")
    assert parse_gs_url("gs://bucket/") == GsUrl("bucket", "")
    for bad in ("http://b/x", "gs://", "gs:///x", "gs://b#/x", "gs://b/x\ny"):
        with pytest.raises(ValueError):
            parse_gs_url(bad)


@given(st.text(min_size=1).filter(lambda s: "\x00" not in s and "\r" not in s and "\n" not in s))
def test_object_names_survive_every_request_path(name: str) -> None:
    url = GsUrl("bkt", name)
    for built in (EP.object_url(url), EP.media_url(url, 7)):
        parts = urlsplit(built)
        assert unquote(parts.path.rsplit("/o/", 1)[1]) == name
        assert parts.fragment == ""
    assert "generation=7" in EP.media_url(url, 7)
    assert urlsplit(EP.xml_url(url)).fragment == ""


def test_list_and_upload_urls_encode_query_values() -> None:
    listing = EP.list_url("b", "a&b=c/#", "tok en", 5)
    assert "prefix=a%26b%3Dc%2F%23" in listing and "pageToken=tok+en" in listing
    assert "maxResults=5" in listing
    upload = EP.upload_url("b", "multipart", {"ifGenerationMatch": 0})
    assert upload.endswith("/upload/storage/v1/b/b/o?uploadType=multipart&ifGenerationMatch=0")


def test_child_urls() -> None:
    assert GsUrl("b", "").child("x/y") == GsUrl("b", "x/y")
    assert GsUrl("b", "pre").child("x") == GsUrl("b", "pre/x")
    assert GsUrl("b", "pre/").child("x") == GsUrl("b", "pre/x")


def test_resolve_endpoint_order() -> None:
    assert resolve_endpoint(None, {}) == Endpoint(GCS_ENDPOINT, authenticated=True)
    emulator = resolve_endpoint(None, {"STORAGE_EMULATOR_HOST": "localhost:9023"})
    assert emulator == Endpoint("http://localhost:9023", authenticated=False)
    option = resolve_endpoint("https://e.example/", {"STORAGE_EMULATOR_HOST": "x:1"})
    assert option == Endpoint("https://e.example", authenticated=False)
    with pytest.raises(ValueError):
        resolve_endpoint("ftp://nope", {})


def test_sizes() -> None:
    assert parse_size("8MiB") == 8 * 2**20
    assert parse_size("256k") == 256_000
    assert parse_size("1.5GiB") == 3 * 2**29
    assert parse_size("42") == 42
    for bad in ("", "MiB", "-1", "3 parsecs", "1XiB"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_size(bad)


def test_headers() -> None:
    assert parse_header("x-retry-test-id:  abc ") == ("x-retry-test-id", "abc")
    for bad in ("nocolon", "bad name: v", "Host: x", "x: a\r\nInjected: 1"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_header(bad)
    env = {"RESUMABLE_MEDIA_EXTRA_HEADERS": '{"a": "1", "B": "two"}'}
    assert headers_from_env(env) == {"a": "1", "B": "two"}
    lines = {"RESUMABLE_MEDIA_EXTRA_HEADERS": "a: 1\n\nb: 2\n"}
    assert headers_from_env(lines) == {"a": "1", "b": "2"}
    with pytest.raises(argparse.ArgumentTypeError):
        headers_from_env({"RESUMABLE_MEDIA_EXTRA_HEADERS": "{not json"})


@pytest.mark.parametrize(
    "relative", ["", "/etc/passwd", "../x", "a/../../x", "a//b", "a/./b", "a/", "..", "a\x00b"]
)
def test_local_path_refuses(tmp_path: pathlib.Path, relative: str) -> None:
    with pytest.raises(UnsafeName):
        local_path_for(tmp_path, relative)


@given(st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=4))
def test_local_path_is_inside_or_refused(segments: list[str]) -> None:
    root = pathlib.Path("/nonexistent-root/dest")
    try:
        path = local_path_for(root, "/".join(segments))
    except UnsafeName:
        return
    assert path.resolve().is_relative_to(root)
    assert path != root


def test_progress_bar_render_and_throttle() -> None:
    out = io.StringIO()
    bar = ProgressBar(1000, 3, enabled=True, stream=out, interval_s=60)
    bar.update("a", 250)
    bar.update("a", 300)  # throttled: no second draw
    assert out.getvalue().count("\r") == 1
    bar.finish("a", 500)
    text = bar.render()
    assert "50.0%" in text and "1/3 objects" in text and "ETA" in text and "/s" in text
    bar.close()
    assert out.getvalue().endswith("\r")
    quiet = io.StringIO()
    off = ProgressBar(10, enabled=False, stream=quiet)
    off.update("x", 5)
    off.close()
    assert quiet.getvalue() == ""


def test_format_eta() -> None:
    assert format_eta(None) == "--:--"
    assert format_eta(5) == "0:05"
    assert format_eta(3725) == "1:02:05"


def test_temp_registry_closes_when_the_command_stops(tmp_path: pathlib.Path) -> None:
    from resumable_media._objects.transfer import Interrupted, TempFiles

    registry = TempFiles()
    fd, first = registry.create(tmp_path, ".a.", ".rm-part")
    os.close(fd)
    late = tmp_path / ".late.rm-part"
    assert registry.remove_all() == [first]
    assert list(tmp_path.iterdir()) == []
    # A worker that has not yet seen the interrupt can leave nothing behind the cleanup.
    with pytest.raises(Interrupted):
        registry.create(tmp_path, ".b.", ".rm-part")
    late.write_bytes(b"x")
    with pytest.raises(Interrupted):
        registry.add(str(late))
    assert list(tmp_path.iterdir()) == []


def test_local_paths_agree_with_local_path_for(tmp_path: pathlib.Path) -> None:
    """The per-directory checker refuses and accepts exactly what the one-shot check does,
    including symlinks already on disk (a directory or a file pointing out, or at the root)."""
    root = tmp_path / "dest"
    (root / "sub").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "out").symlink_to(outside)
    (root / "sub" / "leak").symlink_to(outside / "f")
    (root / "sub" / "self").symlink_to(root)
    (root / "sub" / "inner").symlink_to(root / "sub")
    names = [
        "a", "sub/b", "sub/deeper/c", "out/x", "out/y/z", "sub/leak", "sub/self", "sub/inner",
        "sub/inner/q", "../x", "a//b", "", "sub/./c", "new/dir/f",
    ]  # fmt: skip
    checker = LocalPaths(root)
    for name in names * 2:  # the second pass answers from what the first remembered
        try:
            expected: pathlib.Path | str = local_path_for(root, name)
        except UnsafeName as exc:
            expected = str(exc)
        try:
            got: pathlib.Path | str = checker.path_for(name)
        except UnsafeName as exc:
            got = str(exc)
        assert got == expected, name


def test_make_durable_both_ways(tmp_path: pathlib.Path) -> None:
    files = []
    for index in range(3):
        path = tmp_path / f"d{index % 2}" / f"f{index}"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"x" * index)
        files.append(path)
    make_durable(files)
    make_durable(files, use_syncfs=False)
    make_durable([])
    with pytest.raises(FileNotFoundError):
        make_durable([tmp_path / "missing" / "f"])
