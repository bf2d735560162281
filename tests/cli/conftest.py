"""Fixtures for the command's tests: run ``python -m resumable_media`` as a subprocess."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping

import pytest
from cli_helpers import RunCli, cli_env, command

from resumable_media.testing import GCSServer


@pytest.fixture
def run_cli(gcs_server: GCSServer) -> RunCli:
    """Run the command against the loopback server (``--endpoint`` added to ``cp`` and to
    the object commands; ``stdin`` is fed to the command's standard input)."""

    def run(
        *args: str,
        env: Mapping[str, str] | None = None,
        timeout: float = 60,
        stdin: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        argv = list(args)
        if argv and argv[0] in ("cp", "ls", "rm", "cat", "stat", "du"):
            argv[1:1] = ["--endpoint", gcs_server.endpoint]
        return subprocess.run(
            command(*argv),
            capture_output=True,
            text=True,
            timeout=timeout,
            env=cli_env(env),
            check=False,
            input=stdin,
        )

    return run
