"""The runner of the differential suite: drives one scenario through both implementations,
each against its own bucket (or its own scripted server), and compares what they did.

It lives here, not in ``conftest.py``, because test modules import it by name and several
test directories have a ``conftest``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import requests
from _diff import SUBSTITUTIONS, Impl, Observed, check, observe
from _scripted import ScriptedServer

from resumable_media.testing import GCSServer

_counter = itertools.count(1)


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
