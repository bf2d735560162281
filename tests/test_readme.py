"""README stays true: its Python examples run as written, and CI can find its two commands."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.S)


def test_readme_has_python_examples() -> None:
    assert len(PYTHON_BLOCKS) >= 2


@pytest.mark.parametrize("index", range(len(PYTHON_BLOCKS)))
def test_readme_python_example_runs(index: int, tmp_path: pathlib.Path) -> None:
    script = tmp_path / f"example_{index}.py"
    script.write_text(PYTHON_BLOCKS[index], encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("marker", ["demo-command", "test-command"])
def test_ci_finds_each_set_up_command(marker: str) -> None:
    # The same extraction .ci/run performs.
    awk = (
        f'$0 == "<!-- {marker} -->" {{f=1; next}} f && /^```bash/ {{g=1; next}} '
        "g && /^```/ {exit} g {print}"
    )
    out = subprocess.run(
        ["awk", awk, str(ROOT / "README.md")], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out.startswith("python3 -m venv .venv && .venv/bin/pip install -q ")
    assert len(out.splitlines()) == 1
    assert f"readme_command {marker}" in (ROOT / ".ci" / "run").read_text()
