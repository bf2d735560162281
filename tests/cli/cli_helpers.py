"""Helpers shared by the command's tests (imported by name: tests/cli is on sys.path)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping

RunCli = Callable[..., subprocess.CompletedProcess[str]]


STATE_DIR = tempfile.mkdtemp(prefix="rm-cli-state-")
"""Upload sessions of the tests' CLI runs live here, never in the user's home."""


def cli_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a CLI subprocess: no emulator variable, no extra headers, and a
    private directory for upload sessions."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("STORAGE_EMULATOR_HOST", "RESUMABLE_MEDIA_EXTRA_HEADERS")
    }
    env["RESUMABLE_MEDIA_STATE_DIR"] = STATE_DIR
    env.update(extra or {})
    return env


def command(*args: str) -> list[str]:
    """The argv that runs the command in this interpreter."""
    return [sys.executable, "-m", "resumable_media", *args]
