"""The allow-list mirrors the README, and ``compat.install()`` behaves as documented."""

from __future__ import annotations

import pathlib
import subprocess
import sys

from allowlist import ALLOWED, NOTES

README = (pathlib.Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def test_allowlist_mirrors_readme() -> None:
    begin, end = "<!-- compat-differences -->\n", "<!-- /compat-differences -->"
    listed = README[README.index(begin) + len(begin) : README.index(end)].strip().splitlines()
    assert listed == [f"- {text}" for text in NOTES.values()]
    used = {note for entries in ALLOWED.values() for _pattern, note in entries}
    assert used == set(NOTES), "every README difference is allowed somewhere, and only those"


def _run(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_install_aliases_the_public_modules_only() -> None:
    out = _run(
        "import sys\n"
        "from resumable_media import compat\n"
        "compat.install(); compat.install()\n"
        "import google.resumable_media as g, google.resumable_media.common as c\n"
        "from google.resumable_media.requests import download, upload\n"
        "from google import resumable_media\n"
        "import resumable_media as ours\n"
        "assert g is ours and resumable_media is ours and c is ours.common\n"
        "assert upload.XMLMPUPart is ours.requests.XMLMPUPart and compat.installed()\n"
        "for private in ('_helpers', '_download', '_upload', 'requests._request_helpers'):\n"
        "    try:\n"
        "        __import__('google.resumable_media.' + private)\n"
        "    except ImportError:\n"
        "        print('absent', private)\n"
    )
    assert out.split("\n").count("absent _helpers") == 1
    assert "absent requests._request_helpers" in out


def test_install_refuses_once_upstream_is_imported() -> None:
    out = _run(
        "import google.resumable_media\n"
        "from resumable_media import compat\n"
        "try:\n"
        "    compat.install()\n"
        "except RuntimeError as exc:\n"
        "    print(exc)\n"
    )
    assert out.startswith("google.resumable_media was already imported from ")
    assert "call resumable_media.compat.install() before anything imports it" in out
