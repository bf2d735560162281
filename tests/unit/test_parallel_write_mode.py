"""How ParallelDownload's write_mode="auto" is decided (pure logic, a fake sysfs file)."""

from __future__ import annotations

import pytest

from resumable_media.parallel import plan


@pytest.mark.parametrize(
    ("content", "expected"),
    [("9\n", "mmap"), ("10\n", "mmap"), ("11\n", "pwrite"), ("junk", "pwrite"), (None, "pwrite")],
)
def test_auto_follows_free_page_reporting(tmp_path, monkeypatch, content, expected):
    path = tmp_path / "page_reporting_order"
    if content is not None:
        path.write_text(content)
    monkeypatch.setattr(plan, "_PAGE_REPORTING_ORDER", str(path))
    assert plan.resolve_write_mode("auto") == expected


@pytest.mark.parametrize("mode", ["pwrite", "mmap"])
def test_explicit_modes_are_kept(tmp_path, monkeypatch, mode):
    monkeypatch.setattr(plan, "_PAGE_REPORTING_ORDER", str(tmp_path / "absent"))
    assert plan.resolve_write_mode(mode) == mode


def test_unknown_mode_is_an_error():
    with pytest.raises(ValueError, match="write_mode must be one of"):
        plan.resolve_write_mode("splice")
