"""Internals of the ``resumable-media`` command (see :mod:`resumable_media.cli`).

Invariants: nothing here is public API; the modules are split by responsibility
(URLs and endpoints, options, progress, safe local paths, object operations, copy
planning, demo) and only :mod:`resumable_media.cli` wires them to argparse.
"""
