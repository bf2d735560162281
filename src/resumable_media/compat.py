"""Make ``import google.resumable_media`` load this package, for code that cannot change imports.

Call :func:`install` once, before anything imports ``google.resumable_media`` (above
all before ``import google.cloud.storage``): afterwards ``google.resumable_media`` and
its public submodules (``common``, ``requests``, ``requests.download``,
``requests.upload``) are this package's modules, so google-cloud-storage 2.x, or any
program written for google-resumable-media 2.11, runs its transfers on this engine.

google-cloud-storage 3.x does not import ``google.resumable_media`` for transfers (it
carries a private copy, ``google.cloud.storage._media``), so this does not change how
it transfers; only its exception classes, which subclass ``google.resumable_media``'s
when that imports, then subclass ours.

Invariants:
- Only names listed in :data:`MODULES` are aliased; a private upstream module
  (``google.resumable_media._helpers``, ``_download``, ``_upload``,
  ``requests._request_helpers``) keeps failing to import, rather than resolving to
  something with a different contract.
- :func:`install` is idempotent, and refuses (``RuntimeError``) once a different
  ``google.resumable_media`` has been imported: modules already bound to it would
  keep using it, half the program on each engine.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

__all__ = ["MODULES", "install", "installed"]

MODULES: dict[str, str] = {
    "google.resumable_media": "resumable_media",
    "google.resumable_media.common": "resumable_media.common",
    "google.resumable_media.requests": "resumable_media.requests",
    "google.resumable_media.requests.download": "resumable_media.requests.download",
    "google.resumable_media.requests.upload": "resumable_media.requests.upload",
}
"""Upstream module name -> the module of this package it resolves to."""


def installed() -> bool:
    """Whether ``google.resumable_media`` currently resolves to this package."""
    current = sys.modules.get("google.resumable_media")
    return current is not None and current is sys.modules.get("resumable_media")


def install() -> None:
    """Alias ``google.resumable_media`` (and its public submodules) to this package.

    Raises:
        RuntimeError: If google-resumable-media itself was already imported in this
            process (call ``install()`` earlier, before importing google.cloud.storage
            or anything else that imports it).
    """
    if installed():
        return
    for upstream in MODULES:
        loaded = sys.modules.get(upstream)
        if loaded is not None:
            where = getattr(loaded, "__file__", None)
            origin = f"from {where}" if where else "(a module without a file)"
            raise RuntimeError(
                f"{upstream} was already imported {origin}; "
                "call resumable_media.compat.install() before anything imports it "
                "(for example before `import google.cloud.storage`)"
            )
    modules: dict[str, ModuleType] = {
        upstream: importlib.import_module(ours) for upstream, ours in MODULES.items()
    }
    for upstream, module in modules.items():
        sys.modules[upstream] = module
    # ``from google import resumable_media`` reads the attribute of the ``google``
    # namespace package when it exists; set it there too.
    google = sys.modules.get("google")
    if google is None:
        try:
            google = importlib.import_module("google")
        except ImportError:
            google = None
    if google is not None:
        google.resumable_media = modules["google.resumable_media"]  # type: ignore[attr-defined]
