# Child-process entry point: runs one case once and writes its result as JSON.
#
# Invariants: one process per timed run, so no case inherits another's pools,
# connections, imports or heap; the result file is written exactly once, by
# rename, and always says one of "ok", "unavailable" or "error"; nothing here
# touches the bytes' correctness (the parent verifies them).
"""Run one benchmark case in this process.

Usage: ``python -m resumable_media._bench.child SPEC.json RESULT.json``.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
import traceback
from typing import Any

from resumable_media._bench.model import CaseContext, CaseUnavailable
from resumable_media._bench.rss import own_peak_rss_bytes


def run_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """Run the case described by ``spec`` (``runner`` and ``context``) and describe the outcome.

    Args:
        spec: ``{"runner": "module:function", "options": {...}, "context": CaseContext JSON}``.

    Returns:
        ``{"status": "ok", "seconds": ..., "cpu_seconds": ..., "detail": ...}``,
        ``{"status": "unavailable", "detail": reason}`` or
        ``{"status": "error", "detail": ..., "traceback": ...}``.
    """
    module_name, _, function_name = spec["runner"].partition(":")
    context = CaseContext.from_json(spec["context"])
    try:
        runner = getattr(importlib.import_module(module_name), function_name)
        outcome: dict[str, Any] = runner(context, **spec.get("options", {}))
    except CaseUnavailable as exc:
        return {"status": "unavailable", "detail": str(exc)}
    except BaseException as exc:  # report anything, KeyboardInterrupt included
        return {
            "status": "error",
            "detail": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(),
        }
    return {
        "status": "ok",
        # A peak the parent's sampler can miss in a run shorter than its interval.
        "own_peak_rss": own_peak_rss_bytes(),
        "seconds": float(outcome["seconds"]),
        "cpu_seconds": outcome.get("cpu_seconds"),
        "detail": outcome.get("detail", ""),
    }


def main(argv: list[str] | None = None) -> int:
    """Read the spec file, run the case, write the result file atomically.

    Args:
        argv: ``[SPEC_PATH, RESULT_PATH]``; defaults to ``sys.argv[1:]``.

    Returns:
        0 when a result was written (whatever it says), 2 on bad arguments.
    """
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        sys.stderr.write("usage: python -m resumable_media._bench.child SPEC.json RESULT.json\n")
        return 2
    spec_path, result_path = args
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    with open(spec_path, encoding="utf-8") as spec_file:
        spec = json.load(spec_file)
    result = run_spec(spec)
    partial = result_path + ".part"
    with open(partial, "w", encoding="utf-8") as result_file:
        json.dump(result, result_file)
    os.replace(partial, result_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
