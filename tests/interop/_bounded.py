"""Run a peer's command with a deadline that always holds.

``subprocess.run(..., timeout=)`` kills only the direct child; a wrapper script (the Cloud
SDK's ``gsutil`` is a shell script that starts Python) leaves a grandchild holding the pipes,
and the call then blocks forever reading them. Here the command gets its own process group,
and the whole group is killed at the deadline.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Mapping, Sequence


def run_bounded(
    command: Sequence[str], *, env: Mapping[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    """Run ``command`` to completion or kill its process group after ``timeout`` seconds.

    Raises:
        subprocess.TimeoutExpired: At the deadline, with whatever output had arrived.
    """
    with subprocess.Popen(
        list(command),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(env),
        start_new_session=True,
    ) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate(timeout=10)
            raise subprocess.TimeoutExpired(proc.args, timeout, out, err) from None
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
