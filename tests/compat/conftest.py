"""Fixtures of the differential suite: both implementations, and a :class:`_runner.Runner`
on the session's loopback server.

google-resumable-media 2.11.0 comes from the ``test`` extra (it imports as
``google.resumable_media``, so it installs beside ``resumable_media``); it is never
committed here.
"""

from __future__ import annotations

import types
from collections.abc import Iterator

import pytest
from _diff import Impl
from _runner import Runner

import resumable_media
import resumable_media.common
import resumable_media.requests
from resumable_media.testing import GCSServer


def _upstream() -> Impl:
    import google.resumable_media as grm
    import google.resumable_media.common
    import google.resumable_media.requests

    if getattr(grm, "__file__", "") == getattr(resumable_media, "__file__", None):
        pytest.fail("google.resumable_media is aliased to resumable_media in this process")
    from importlib import metadata

    version = metadata.version("google-resumable-media")
    assert version == "2.11.0", f"the differential suite needs 2.11.0, found {version}"
    return Impl("upstream", google.resumable_media.requests, google.resumable_media.common)


@pytest.fixture
def impls(monkeypatch: pytest.MonkeyPatch) -> tuple[Impl, Impl]:
    """(upstream, ours); upstream's retry sleeps are patched out (ours are configured ~0)."""
    upstream = _upstream()
    from google.resumable_media.requests import _request_helpers

    monkeypatch.setattr(_request_helpers, "time", types.SimpleNamespace(sleep=lambda _s: None))
    ours = Impl("ours", resumable_media.requests, resumable_media.common)
    return upstream, ours


@pytest.fixture
def runner(impls: tuple[Impl, Impl], gcs_server: GCSServer) -> Iterator[Runner]:
    """A :class:`Runner` on the session's loopback server."""
    yield Runner(impls, gcs_server)
