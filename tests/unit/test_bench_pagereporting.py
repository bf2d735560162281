"""The benchmark's free-page-reporting switch: it always puts the setting back."""

from __future__ import annotations

import pytest

from resumable_media._bench import pagereporting


@pytest.fixture
def fake_parameters(tmp_path, monkeypatch):
    order = tmp_path / "page_reporting_order"
    order.write_text("9\n")
    reported = tmp_path / "reported_kib"
    reported.write_text(str(3 * 2**20) + "\n")
    monkeypatch.setattr(pagereporting, "_ORDER", order)
    monkeypatch.setattr(pagereporting, "_REPORTED", reported)
    return order


def test_describe_names_the_block_size_and_order(fake_parameters):
    text = pagereporting.describe()
    assert ">= 2 MiB" in text and "page_reporting_order=9" in text and "3 GiB" in text


def test_hold_raises_the_order_then_restores_it(fake_parameters):
    with pagereporting.hold(2**20) as described:
        held = int(fake_parameters.read_text())
        assert held > 9
        assert f"9 -> {held}" in described and "restored to 9" in described
    assert fake_parameters.read_text().strip() == "9"


def test_hold_restores_after_a_failure(fake_parameters):
    with pytest.raises(RuntimeError), pagereporting.hold(2**20):
        assert fake_parameters.read_text().strip() != "9"
        raise RuntimeError("a case blew up")
    assert fake_parameters.read_text().strip() == "9"


def test_without_page_reporting_nothing_changes(tmp_path, monkeypatch):
    monkeypatch.setattr(pagereporting, "_ORDER", tmp_path / "absent")
    with pagereporting.hold(2**20) as described:
        assert "no free-page reporting" in described
    assert not (tmp_path / "absent").exists()
