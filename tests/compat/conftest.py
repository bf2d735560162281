"""Fixtures of the differential suite: both implementations, and a runner that drives a
scenario through each against its own bucket (or its own scripted server) and compares.

google-resumable-media 2.11.0 comes from the ``test`` extra (it imports as
``google.resumable_media``, so it installs beside ``resumable_media``); it is never
committed here.
"""

from __future__ import annotations

import itertools
import types
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from _diff import SUBSTITUTIONS, Impl, Observed, check, observe
from _scripted import ScriptedServer

import resumable_media
import resumable_media.common
import resumable_media.requests
from resumable_media.testing import GCSServer

_counter = itertools.count(1)


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


Scenario = Callable[[Impl, Any], Observed]


class Runner:
    """Runs one scenario on both implementations and checks the differences."""

    def __init__(self, impls: tuple[Impl, Impl], server: GCSServer) -> None:
        self.impls = impls
        self.server = server
        self.results: dict[str, Observed] = {}

    def loopback(
        self,
        name: str,
        scenario: Scenario,
        allowed: list[str],
        *,
        objects: dict[str, tuple[bytes, str | None]] | None = None,
        faults: dict[str, list[str]] | None = None,
        bare: bool = False,
    ) -> dict[str, Observed]:
        """Against the loopback server: a bucket per implementation holding ``objects``
        (name -> (bytes, content_encoding)); ``faults`` makes a Retry Test per run."""
        results = {}
        for impl in self.impls:
            bucket = f"compat-{impl.name}-{next(_counter)}"
            self.server.create_bucket(bucket)
            for object_name, (data, encoding) in (objects or {}).items():
                self.server.put_object(bucket, object_name, data, content_encoding=encoding)
            subs = [(bucket, "BUCKET"), *SUBSTITUTIONS, (r"generation=\d+", "generation=GEN")]
            extra: dict[str, Any] = {}
            if faults:
                test_id = self.server.create_retry_test(faults)
                subs.append((test_id, "RETRY-TEST"))
                extra["fault_headers"] = {"x-retry-test-id": test_id}
            else:
                extra["fault_headers"] = {}
            with requests.Session() as session:
                results[impl.name] = observe(
                    impl,
                    scenario,
                    session,
                    subs,
                    endpoint=self.server.endpoint,
                    bucket=bucket,
                    server=self.server,
                    impl_name=impl.name,
                    bare=bare,
                    **extra,
                )
        check(name, results["upstream"], results["ours"], allowed)
        return results

    def scripted(
        self,
        name: str,
        scenario: Scenario,
        allowed: list[str],
        script: list[Any],
        *,
        bare: bool = False,
    ) -> dict[str, Observed]:
        """Against a raw-socket server replaying ``script`` (a fresh one per implementation)."""
        results = {}
        for impl in self.impls:
            with ScriptedServer(script) as scripted, requests.Session() as session:
                subs = [(scripted.endpoint, "ENDPOINT"), *SUBSTITUTIONS]
                results[impl.name] = observe(
                    impl,
                    scenario,
                    session,
                    subs,
                    endpoint=scripted.endpoint,
                    bucket="b",
                    scripted_server=scripted,
                    impl_name=impl.name,
                    fault_headers={},
                    bare=bare,
                )
                results[impl.name]["wire"] = [
                    {"method": r.method, "target": r.target, "body_len": len(r.body)}
                    for r in scripted.received
                ]
        check(name, results["upstream"], results["ours"], allowed)
        return results


@pytest.fixture
def runner(impls: tuple[Impl, Impl], gcs_server: GCSServer) -> Iterator[Runner]:
    """A :class:`Runner` on the session's loopback server."""
    yield Runner(impls, gcs_server)
