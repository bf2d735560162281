"""``python -m resumable_media``: the ``resumable-media`` command."""

from __future__ import annotations

import sys

from resumable_media.cli import main

if __name__ == "__main__":
    sys.exit(main())
