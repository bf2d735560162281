"""fsspec's own abstract test suite (copy, get, put, open, pipe) run on the gcsx filesystem.

The classes ship inside the fsspec wheel (``fsspec.tests.abstract``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

abstract = pytest.importorskip("fsspec.tests.abstract")

from resumable_media.fsspec import GCSXFileSystem  # noqa: E402
from resumable_media.testing import GCSServer  # noqa: E402


class _Fixtures(abstract.AbstractFixtures):  # type: ignore[misc,name-defined]
    @pytest.fixture
    def fs(self, gcs_server: GCSServer) -> Iterator[GCSXFileSystem]:
        yield GCSXFileSystem(endpoint=gcs_server.endpoint, skip_instance_cache=True)

    @pytest.fixture
    def fs_path(self, gcs_bucket: str) -> str:
        return gcs_bucket

    @pytest.fixture
    def supports_empty_directories(self) -> bool:
        return False


class TestGCSXCopy(abstract.AbstractCopyTests, _Fixtures):  # type: ignore[misc,name-defined]
    pass


class TestGCSXGet(abstract.AbstractGetTests, _Fixtures):  # type: ignore[misc,name-defined]
    pass


class TestGCSXPut(abstract.AbstractPutTests, _Fixtures):  # type: ignore[misc,name-defined]
    pass


class TestGCSXOpen(abstract.AbstractOpenTests, _Fixtures):  # type: ignore[misc,name-defined]
    pass


class TestGCSXPipe(abstract.AbstractPipeTests, _Fixtures):  # type: ignore[misc,name-defined]
    pass
