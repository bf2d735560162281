"""Listings in one order (local walk == Cloud Storage listing == UTF-8 byte order), the march,
filters, and the ledger's reading of torn lines."""

from __future__ import annotations

import json
import pathlib
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resumable_media import bulk
from resumable_media._objects.urls import GsUrl
from resumable_media.bulk.filters import glob_to_regex
from resumable_media.testing import GCSServer

SEGMENT = st.text(alphabet="ab-._~ /\u00e9\u00ff\u4e2d\U0001f600", min_size=1, max_size=4).map(
    lambda s: s.replace("/", "")
)
NAMES = st.lists(
    st.lists(SEGMENT.filter(lambda s: s not in ("", ".", "..")), min_size=1, max_size=3).map(
        "/".join
    ),
    min_size=1,
    max_size=12,
    unique=True,
)


def _consistent(names: list[str]) -> list[str]:
    """Drop names that would need a file and a directory of the same path."""
    kept: list[str] = []
    for name in sorted(names, key=len):
        parts = name.split("/")
        prefixes = {"/".join(parts[:i]) for i in range(1, len(parts))}
        if prefixes & set(kept) or any(k.startswith(name + "/") for k in kept):
            continue
        kept.append(name)
    return kept


def _write(root: pathlib.Path, names: list[str]) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(name.encode())


def test_tricky_separator_order() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp)
        _write(root, ["a/b", "a-b", "a.b", "a0", "a/b/../c".replace("/../", "-"), "ab"])
        listing = bulk.Listing(tmp)
        names = [entry.name for entry in bulk.walk_local(root, listing)]
    assert names == ["a-b", "a.b", "a/b", "a/b-c", "a0", "ab"]
    assert listing.complete


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(NAMES)
def test_local_walk_is_utf8_byte_order(names: list[str]) -> None:
    names = _consistent(names)
    with tempfile.TemporaryDirectory() as tmp:
        _write(pathlib.Path(tmp), names)
        walked = [e.name for e in bulk.walk_local(pathlib.Path(tmp), bulk.Listing(tmp))]
    assert walked == sorted(names, key=lambda n: n.encode("utf-8"))


def test_local_walk_matches_the_server_listing(gcs_server: GCSServer, gcs_bucket: str) -> None:
    names = _consistent(
        ["a/b", "a-b", "a.b", "a/b/c", "\u00e9", "e/f", "\U0001f600", "\u4e2d/x", "z", "Z", "~"]
    )
    for name in names:
        gcs_server.put_object(gcs_bucket, f"p/{name}", name.encode())
    storage = bulk.connect(gcs_server.endpoint)
    listing = bulk.Listing("gs")
    remote = [e.name for e in bulk.walk_gcs(storage, GsUrl(gcs_bucket, "p"), listing, page_size=3)]
    with tempfile.TemporaryDirectory() as tmp:
        _write(pathlib.Path(tmp), names)
        local = [e.name for e in bulk.walk_local(pathlib.Path(tmp), bulk.Listing(tmp))]
    assert remote == local == sorted(names, key=lambda n: n.encode("utf-8"))
    assert listing.complete


def test_scratch_files_are_not_listed(tmp_path: pathlib.Path) -> None:
    _write(tmp_path, ["x", ".x.ab12cd.rm-part", "big.rmpart", "big.rmpart.journal", "y.rm-part"])
    names = [e.name for e in bulk.walk_local(tmp_path, bulk.Listing("t"))]
    assert names == ["x", "y.rm-part"]


def test_march_pairs_by_name() -> None:
    def entries(*names: str) -> list[bulk.Entry]:
        return [bulk.Entry(name=n, size=0) for n in names]

    pairs = list(bulk.march(iter(entries("a", "c", "d")), iter(entries("b", "c", "e"))))
    assert [(s.name if s else None, d.name if d else None) for s, d in pairs] == [
        ("a", None),
        (None, "b"),
        ("c", "c"),
        ("d", None),
        (None, "e"),
    ]


@pytest.mark.parametrize(
    ("pattern", "matches", "misses"),
    [
        ("*.log", ["a.log", "d/e/a.log"], ["a.logx", "a/log"]),
        ("/top/*.txt", ["top/a.txt"], ["x/top/a.txt", "top/a/b.txt"]),
        ("dir/**", ["dir/a", "dir/a/b", "x/dir/a"], ["dir", "dirx/a"]),
        ("cache/", ["cache/a", "cache/b/c"], ["cache"]),
        ("?.bin", ["a.bin", "x/b.bin"], ["ab.bin", "/.bin"]),
        ("[ab]*", ["a1", "b", "z/a"], ["c"]),
        ("[!ab]*", ["c1"], ["a1"]),
    ],
)
def test_globs(pattern: str, matches: list[str], misses: list[str]) -> None:
    regex = glob_to_regex(pattern)
    assert all(regex.fullmatch(name) for name in matches)
    assert not any(regex.fullmatch(name) for name in misses)


def test_filter_precedence() -> None:
    rules = bulk.Filters(
        [bulk.Rule(include=False, pattern="*.tmp"), bulk.Rule(include=True, pattern="keep/**")]
    )
    assert not rules.included("keep/x.tmp")  # the earlier exclude wins
    assert rules.included("keep/x")
    assert not rules.included("other")  # an --include was given: the rest is excluded
    assert bulk.Filters([bulk.Rule(include=False, pattern="*.tmp")]).included("other")
    with pytest.raises(ValueError, match="empty filter"):
        bulk.Filters([bulk.Rule(include=True, pattern="")])


def test_ledger_reads_back_last_done_record_and_ignores_torn_lines(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "m.jsonl"
    good = {
        "source": "s",
        "destination": "d",
        "status": "copied",
        "size": 3,
        "crc32c": "c",
        "generation": 7,
        "mtime_ns": 9,
    }
    failed = {**good, "source": "s2", "status": "failed"}
    path.write_text(json.dumps(good) + "\n" + json.dumps(failed) + "\n" + '{"source": "s3", "dest')
    with bulk.Ledger(path) as ledger:
        assert ledger.lookup("s", "d") == (3, "c", 7, 9)
        assert ledger.lookup("s2", "d") is None
        ledger.record(
            bulk.JobResult(
                source="s",
                destination="d",
                action=bulk.Action.UPLOAD,
                status=bulk.Status.FAILED,
                size=3,
                error="boom",
            )
        )
    assert bulk.Ledger(path, read_only=True).lookup("s", "d") is None  # the later failure wins
