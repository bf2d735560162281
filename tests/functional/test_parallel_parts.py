"""The accelerator's transport-free pieces: chunk plans, the journal, the sink, progress."""

from __future__ import annotations

import os
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resumable_media._protocol.ranged import add_generation
from resumable_media.parallel.journal import Journal
from resumable_media.parallel.plan import RangeJob, plan_chunks
from resumable_media.parallel.progress import ProgressTracker
from resumable_media.parallel.sink import TempSink, map_range


@settings(deadline=None)
@given(
    start=st.integers(0, 10**9),
    length=st.integers(0, 20_000),
    chunk_size=st.integers(1, 5000),
)
def test_plan_covers_the_range_exactly(start, length, chunk_size):
    chunks = plan_chunks(start, start + length - 1, chunk_size)
    assert sum(c.length for c in chunks) == length
    position = start
    for index, chunk in enumerate(chunks):
        assert chunk.index == index and chunk.start == position
        assert chunk.offset == position - start
        assert 1 <= chunk.length <= chunk_size
        position = chunk.end + 1
    assert all(c.length == chunk_size for c in chunks[:-1])


def test_plan_rejects_bad_input():
    with pytest.raises(ValueError, match="chunk_size"):
        plan_chunks(0, 10, 0)
    with pytest.raises(ValueError, match="inverted"):
        plan_chunks(10, 5, 4)


def test_pin_generation():
    assert add_generation("http://h/o?alt=media", 7) == "http://h/o?alt=media&generation=7"
    assert add_generation("http://h/o", 7) == "http://h/o?generation=7"
    assert add_generation("http://h/o?alt=media", None) == "http://h/o?alt=media"


def test_jobs_pickle_small():
    job = RangeJob(
        transfer_id=1, index=2, url="u", path="p", offset=0, start=0, length=5, done=0, crc=0,
        total=5, generation=None, headers=(("a", "b"),), factory=b"f", retry=None,
        timeout=(1.0, 2.0),
    )  # fmt: skip
    data = pickle.dumps(job)
    assert pickle.loads(data) == job and len(data) < 600


def test_journal_round_trip_and_atomic_replace(tmp_path):
    path = str(tmp_path / "j")
    journal = Journal(
        media_url="u", generation=3, size=100, start=0, end=99, chunk_size=40,
        crc32c="AAAAAA==", md5=None, chunks=[[40, 1], [10, 2], [0, 0]],
    )  # fmt: skip
    journal.save(path)
    loaded = Journal.load(path)
    assert loaded == journal
    assert loaded.matches("u", 0, None, 40) and loaded.matches("u", 0, 500, 40)
    assert not loaded.matches("u", 0, None, 41) and not loaded.matches("v", 0, None, 40)
    assert sorted(os.listdir(tmp_path)) == ["j"]  # no temporary left behind
    assert oct(os.stat(path).st_mode & 0o777) == oct(0o600)


@pytest.mark.parametrize("content", [b"", b"{not json", b'{"version": 99}', b'{"version": 1}'])
def test_unusable_journal_is_ignored(tmp_path, content):
    path = tmp_path / "j"
    path.write_bytes(content)
    assert Journal.load(str(path)) is None


def test_sink_preallocates_locks_and_commits(tmp_path):
    dest = tmp_path / "out"
    sink = TempSink(dest)
    sink.open(10_000, keep_existing=False)
    assert os.path.getsize(sink.temp_path) == 10_000
    assert oct(os.stat(sink.temp_path).st_mode & 0o777) == oct(0o600)
    with pytest.raises(BlockingIOError, match="in progress"):
        TempSink(dest).open(10_000, keep_existing=False)
    with map_range(sink.temp_path, 5000, 4000) as view:
        view[:] = b"x" * 4000
    sink.commit()
    assert dest.read_bytes() == b"\0" * 5000 + b"x" * 4000 + b"\0" * 1000
    assert sorted(os.listdir(tmp_path)) == ["out"]


def test_sink_discard_keeps_the_destination(tmp_path):
    dest = tmp_path / "out"
    dest.write_bytes(b"old")
    sink = TempSink(dest)
    sink.open(5, keep_existing=False)
    sink.discard()
    assert dest.read_bytes() == b"old" and sorted(os.listdir(tmp_path)) == ["out"]


def test_sink_needs_an_existing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        TempSink(tmp_path / "missing" / "out").open(1, keep_existing=False)


def test_progress_never_goes_backwards_and_is_rate_limited():
    calls: list[tuple[int, int | None]] = []
    tracker = ProgressTracker(lambda done, total: calls.append((done, total)), 100, interval_s=60)
    tracker.set(0, 30)
    tracker.set(1, 20)
    tracker.set(0, 10)  # a retried chunk reports less: ignored
    tracker.tick()
    tracker.tick()  # within the interval: no call
    tracker.set(1, 70)
    tracker.tick(force=True)
    assert calls == [(50, 100), (100, 100)]
