"""Kept for the modules that import it: the helpers live in :mod:`support`.

``no_jitter`` is a plain function now (not a fixture), so importing it switches nothing on.
"""

from __future__ import annotations

from support import FAST, session_for

__all__ = ["FAST", "no_jitter", "session_for"]


def no_jitter() -> None:
    """Nothing to do: ``FAST`` has no jitter."""
