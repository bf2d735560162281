"""The code stays clean: ruff (lint and format), strict mypy on the package, mypy on the tests."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", "src", "tests", "benchmarks"],
        ["ruff", "format", "--check", "src", "tests", "benchmarks"],
        ["mypy"],
    ],
    ids=["ruff-check", "ruff-format", "mypy"],
)
def test_tool_is_clean(command: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", *command],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


# mypy over tests/: each test directory is its own run, with the directory itself on the
# path, as pytest imports it (rootdir-relative: its helpers are imported by bare name and
# several directories have a conftest.py, so one run would see module "conftest" many
# times).  The tests' bodies are checked; their functions need not all be annotated.
_TEST_DIRS = [
    "unit",
    "functional",
    "support",
    "eco",
    "interop",
    "bulk",
    "conformance",
    "cli",
    "reliability",
    "compat",
    "server",
    "safety",
]
_RELAXED = ["--allow-untyped-defs", "--allow-untyped-calls", "--allow-incomplete-defs"]


def _mypy_tests(directory: str) -> subprocess.CompletedProcess[str]:
    tests = ROOT / "tests"
    path = [str(ROOT / "src"), str(tests)]
    if not (tests / directory / "__init__.py").exists():  # a package is found through tests/
        path.insert(1, str(tests / directory))
    env = {**os.environ, "MYPYPATH": os.pathsep.join(path)}
    command = ["mypy", "--explicit-package-bases", "--no-warn-unused-ignores", *_RELAXED]
    return subprocess.run(
        [sys.executable, "-m", *command, f"tests/{directory}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.parametrize(
    "directory",
    [
        *_TEST_DIRS,
    ],
)
def test_mypy_over_tests(directory: str) -> None:
    proc = _mypy_tests(directory)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_over_top_level_tests() -> None:
    files = sorted(p.name for p in (ROOT / "tests").glob("*.py"))
    env = {**os.environ, "MYPYPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT / "tests")])}
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--explicit-package-bases", "--no-warn-unused-ignores"]
        + _RELAXED
        + [f"tests/{name}" for name in files],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_test_directory_is_type_checked() -> None:
    directories = {p.parent.name for p in (ROOT / "tests").glob("*/*.py")}
    assert directories == set(_TEST_DIRS)


def test_the_library_never_imports_the_command() -> None:
    """Only ``cli.py`` and ``_cli/`` may import ``resumable_media._cli``."""
    import ast

    src = pathlib.Path(__file__).resolve().parents[1] / "src" / "resumable_media"
    offenders = []
    for path in sorted(src.rglob("*.py")):
        relative = path.relative_to(src)
        if relative.parts[0] in ("_cli", "cli.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            if any(
                name == "resumable_media._cli" or name.startswith("resumable_media._cli.")
                for name in names
            ):
                offenders.append(f"{relative}:{node.lineno}")
    assert offenders == [], f"library modules import the command: {offenders}"


# Functions in the transfer engine and the protocol core stay short enough to read as one
# phase each (issue 11): a longer one is split into named steps, not excused here.
_MAX_FUNCTION_LINES = 60
_SHORT_FUNCTION_PACKAGES = ["parallel", "_protocol"]
_SRC = ROOT / "src" / "resumable_media"


def _long_functions(directory: pathlib.Path, limit: int = _MAX_FUNCTION_LINES) -> list[str]:
    """``file:line qualified.name (N lines)`` for each function below ``directory`` whose
    body, not counting its docstring, spans more than ``limit`` lines (a nested function
    counts on its own and inside its parent)."""
    import ast

    found: list[tuple[str, int, str, int]] = []
    for path in sorted(directory.rglob("*.py")):
        pending: list[tuple[ast.AST, str]] = [(ast.parse(path.read_text(), str(path)), "")]
        while pending:
            node, prefix = pending.pop()
            for child in ast.iter_child_nodes(node):
                if not isinstance(child, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                    pending.append((child, prefix))
                    continue
                name = f"{prefix}{child.name}"
                pending.append((child, f"{name}."))
                body = child.body[1:] if ast.get_docstring(child) is not None else child.body
                if isinstance(child, ast.ClassDef) or not body:
                    continue
                lines = (body[-1].end_lineno or body[-1].lineno) - body[0].lineno + 1
                if lines > limit:
                    found.append((str(path.relative_to(directory)), child.lineno, name, lines))
    return [f"{where}:{line} {name} ({lines} lines)" for where, line, name, lines in sorted(found)]


@pytest.mark.parametrize("package", _SHORT_FUNCTION_PACKAGES)
def test_no_long_functions(package: str) -> None:
    long = _long_functions(_SRC / package)
    assert long == [], (
        f"functions in {package}/ over {_MAX_FUNCTION_LINES} lines (docstring not counted); "
        f"split them into named phases: {long}"
    )


def test_the_length_check_counts_bodies_without_docstrings(tmp_path: pathlib.Path) -> None:
    """At the limit passes, one line more fails; the docstring and nesting are handled."""

    def function(name: str, lines: int, indent: str = "") -> str:
        body = "".join(f"{indent}    x{n} = {n}\n" for n in range(lines))
        doc = f'{indent}    """A docstring\n\n{indent}    over three lines."""\n'
        return f"{indent}def {name}() -> None:\n{doc}{body}"

    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "mod.py").write_text(
        function("at_limit", 60)
        + function("over_limit", 61)
        + "class Holder:\n"
        + function("method", 61, indent="    ")
    )
    assert _long_functions(tmp_path) == [
        "sub/mod.py:65 over_limit (61 lines)",  # not at_limit: its docstring does not count
        "sub/mod.py:131 Holder.method (61 lines)",
    ]
