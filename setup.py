"""Build script for the optional native CRC32C extension.

All package metadata lives in pyproject.toml.  This file only adds the C
extension ``resumable_media._crc32c``.  The build is optional: if no compiler
is available the package installs without it and ``resumable_media.checksums``
falls back to google-crc32c, crcmod or pure Python.  Setting the environment
variable ``RESUMABLE_MEDIA_NATIVE=required`` turns a failed build into a failed
install (CI sets it so a broken extension can never go unnoticed).
"""

from __future__ import annotations

import os
import sys
from glob import glob

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

NATIVE_ENV = "RESUMABLE_MEDIA_NATIVE"


def _native_required() -> bool:
    return os.environ.get(NATIVE_ENV, "").strip().lower() == "required"


class OptionalBuildExt(build_ext):
    """build_ext that tolerates failure unless the native build is required."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - any toolchain failure
            self._failed(exc)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001
            self._failed(exc)

    def _failed(self, exc: BaseException) -> None:
        if _native_required():
            raise RuntimeError(
                f"{NATIVE_ENV}=required but the native CRC32C extension failed to build: {exc}"
            ) from exc
        sys.stderr.write(
            "WARNING: resumable_media native CRC32C extension not built "
            f"({exc}); falling back to google-crc32c/crcmod/pure Python.\n"
        )


def _extra_compile_args() -> list[str]:
    if sys.platform == "win32":
        return ["/O2"]
    return ["-O3", "-std=c11", "-Wall", "-Wextra", "-fvisibility=hidden"]


sources = sorted(glob(os.path.join("ext", "*.c")))

setup(
    ext_modules=[
        Extension(
            "resumable_media._crc32c",
            sources=sources,
            include_dirs=["ext"],
            extra_compile_args=_extra_compile_args(),
        )
    ]
    if sources
    else [],
    cmdclass={"build_ext": OptionalBuildExt},
)
