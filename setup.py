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


class NativeBuildError(RuntimeError):
    """The native extension failed to build while it was required."""


class OptionalBuildExt(build_ext):
    """build_ext that tolerates failure unless the native build is required."""

    _native_failed = False

    def run(self) -> None:
        try:
            super().run()
        except NativeBuildError:
            raise
        except Exception as exc:  # any toolchain failure
            if not self._native_failed:  # e.g. the in-place copy of a .so never built
                self._failed(exc)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:
            self._failed(exc)

    def _failed(self, exc: BaseException) -> None:
        self._native_failed = True
        if _native_required():
            raise NativeBuildError(
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


# Sources are globbed relative to this file's directory (pip builds from it).
# The hardware kernels use per-function target attributes plus a runtime CPU
# probe, so no file needs ISA flags such as -msse4.2 and the module still
# imports (falling back to slicing-by-8) on CPUs without the instructions.
sources = sorted(glob(os.path.join("ext", "*.c")))
headers = sorted(glob(os.path.join("ext", "*.h")))

setup(
    ext_modules=[
        Extension(
            "resumable_media._crc32c",
            sources=sources,
            include_dirs=["ext"],
            depends=headers,
            extra_compile_args=_extra_compile_args(),
        )
    ]
    if sources
    else [],
    cmdclass={"build_ext": OptionalBuildExt},
)
