"""Fixtures for the ecosystem tests: a google-cloud-storage client on the loopback server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from resumable_media.testing import GCSServer


@pytest.fixture
def client(gcs_server: GCSServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_server.endpoint)
    client = storage.Client(project="test-project", credentials=AnonymousCredentials())
    yield client
    client.close()
