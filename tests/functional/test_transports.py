"""The picklable transport factories."""

from __future__ import annotations

import pickle

import pytest
import requests

from resumable_media import transports


def test_anonymous_is_picklable_and_builds_sessions(gcs_server):
    factory = pickle.loads(pickle.dumps(transports.anonymous(pool_size=32)))
    session = factory()
    with session:
        assert isinstance(session, requests.Session)
        assert session.get_adapter("http://x")._pool_maxsize == 32  # type: ignore[attr-defined]
        response = session.get(f"{gcs_server.endpoint}/storage/v1/b/none/o/none")
        assert response.status_code == 404
    assert factory() is not session


def test_google_default_pickles_and_fails_clearly_without_credentials(tmp_path, monkeypatch):
    factory = transports.google_default(scopes=["https://example.invalid/scope"])
    clone = pickle.loads(pickle.dumps(factory))
    assert clone == factory and clone.scopes == ("https://example.invalid/scope",)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("CLOUDSDK_CONFIG", raising=False)
    import google.auth.exceptions

    with pytest.raises(google.auth.exceptions.DefaultCredentialsError):
        clone()


def test_google_default_accepts_a_single_scope_string():
    factory = transports.google_default("https://www.googleapis.com/auth/devstorage.read_only")
    assert factory.scopes == ("https://www.googleapis.com/auth/devstorage.read_only",)
