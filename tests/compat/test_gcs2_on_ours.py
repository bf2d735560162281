"""google-cloud-storage 2.19, without google-resumable-media, running on resumable_media
through ``resumable_media.compat.install()``, against the loopback server.

The venv is built once per (Python, google-cloud-storage, resumable-media) version under
pytest's cache directory; resumable-media is reinstalled into it only when the package
sources changed, so a rerun costs seconds.  In CI (a clean machine) the first run builds
it.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import subprocess
import sys
import venv

import pytest

import resumable_media
from resumable_media.testing import GCSServer

GCS_VERSION = "2.19.0"
ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = pathlib.Path(__file__).with_name("gcs2_script.py")


def _sources_digest() -> str:
    digest = hashlib.sha256()
    files = [ROOT / "pyproject.toml", ROOT / "setup.py"]
    files += sorted((ROOT / "src").rglob("*.py")) + sorted((ROOT / "ext").rglob("*"))
    for path in files:
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(ROOT)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _run(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        pytest.fail(f"{what} failed (exit {result.returncode}):\n{result.stdout}\n{result.stderr}")


@pytest.fixture(scope="module")
def gcs2_python(request: pytest.FixtureRequest) -> pathlib.Path:
    """The python of a venv with google-cloud-storage 2.19 and ours, no google-resumable-media."""
    python_version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    key = f"gcs{GCS_VERSION}-py{python_version}-rm{resumable_media.__version__}"
    home = pathlib.Path(request.config.cache.mkdir(f"compat-venv-{key}"))
    python = home / "bin" / "python"
    ready = home / "deps-installed"
    if not ready.exists():
        venv.EnvBuilder(with_pip=True, clear=True).create(home)
        _run(
            [str(python), "-m", "pip", "install", "-q", f"google-cloud-storage=={GCS_VERSION}"],
            f"installing google-cloud-storage {GCS_VERSION}",
        )
        ready.write_text("ok\n")
    stamp = home / "resumable-media-sources"
    digest = _sources_digest()
    if not stamp.exists() or stamp.read_text() != digest:
        _run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "-q",
                "--force-reinstall",
                "--no-deps",
                f"{ROOT}",
            ],
            "installing resumable-media from this checkout",
        )
        # Its own dependencies (requests, google-crc32c, crcmod, ...), without touching others.
        _run([str(python), "-m", "pip", "install", "-q", str(ROOT)], "resolving its dependencies")
        stamp.write_text(digest)
    # google-cloud-storage 2.x depends on google-resumable-media: take it away every time,
    # so nothing can pass by importing the real one.
    _run(
        [str(python), "-m", "pip", "uninstall", "-q", "-y", "google-resumable-media"],
        "uninstalling google-resumable-media",
    )
    return python


def test_google_cloud_storage_2_runs_on_resumable_media(
    gcs2_python: pathlib.Path, gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    env = {**os.environ, "STORAGE_EMULATOR_HOST": gcs_server.endpoint}
    env.pop("PYTHONPATH", None)
    corrupt = gcs_server.create_retry_test({"storage.objects.get": ["return-corrupted-data"]})
    result = subprocess.run(
        [str(gcs2_python), str(SCRIPT), gcs_bucket, str(tmp_path), corrupt],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    lines = result.stdout.splitlines()
    assert lines[-1] == "done" and not [line for line in lines if line.startswith("FAIL")]
    assert "ok google-cloud-storage uses resumable_media's classes" in lines


def test_install_refuses_after_upstream_was_imported(gcs2_python: pathlib.Path) -> None:
    code = (
        "import sys, types\n"
        "sys.modules['google.resumable_media'] = types.ModuleType('google.resumable_media')\n"
        "from resumable_media import compat\n"
        "try:\n"
        "    compat.install()\n"
        "except RuntimeError as exc:\n"
        "    print('refused:', exc)\n"
    )
    result = subprocess.run(
        [str(gcs2_python), "-c", code], capture_output=True, text=True, timeout=60
    )
    assert "refused: google.resumable_media was already imported" in result.stdout, result.stderr
