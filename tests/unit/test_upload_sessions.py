"""The CLI's store of upload sessions: private, keyed on the file's identity, expiring."""

from __future__ import annotations

import json
import os
import time

from resumable_media._objects import sessions
from resumable_media._objects.sessions import SessionStore


def test_save_load_forget(tmp_path, monkeypatch):
    monkeypatch.setenv("RESUMABLE_MEDIA_STATE_DIR", str(tmp_path / "state"))
    source = tmp_path / "f"
    source.write_bytes(b"x" * 100)
    store = SessionStore(source, "gs://b/o", "settings")
    assert store.load() is None
    store.save("http://server/upload?upload_id=1")
    assert SessionStore(source, "gs://b/o", "settings").load() == "http://server/upload?upload_id=1"
    assert oct(store.path.stat().st_mode & 0o777) == oct(0o600)
    assert oct(store.path.parent.stat().st_mode & 0o777) == oct(0o700)
    store.forget()
    assert store.load() is None and not store.path.exists()


def test_a_changed_file_or_destination_gets_another_session(tmp_path, monkeypatch):
    monkeypatch.setenv("RESUMABLE_MEDIA_STATE_DIR", str(tmp_path / "state"))
    source = tmp_path / "f"
    source.write_bytes(b"x" * 100)
    store = SessionStore(source, "gs://b/o", "s")
    store.save("http://one")
    assert SessionStore(source, "gs://b/other", "s").load() is None
    assert SessionStore(source, "gs://b/o", "other settings").load() is None
    source.write_bytes(b"y" * 101)
    assert SessionStore(source, "gs://b/o", "s").load() is None


def test_old_or_damaged_records_are_ignored(tmp_path, monkeypatch):
    monkeypatch.setenv("RESUMABLE_MEDIA_STATE_DIR", str(tmp_path / "state"))
    source = tmp_path / "f"
    source.write_bytes(b"x")
    store = SessionStore(source, "gs://b/o", "s")
    store.save("http://one")
    record = json.loads(store.path.read_text())
    record["saved"] = time.time() - sessions.MAX_AGE_S - 1
    store.path.write_text(json.dumps(record))
    assert store.load() is None and not store.path.exists()
    store.path.write_text("{not json")
    assert store.load() is None


def test_default_directory_follows_xdg(tmp_path, monkeypatch):
    monkeypatch.delenv("RESUMABLE_MEDIA_STATE_DIR", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert sessions.state_directory() == tmp_path / "resumable-media" / "uploads"
    assert os.fspath(sessions.state_directory()).startswith(os.fspath(tmp_path))


def test_session_ids_never_appear_in_cli_error_messages():
    import requests

    from resumable_media._objects.client import describe_error

    error = requests.exceptions.ConnectionError(
        "HTTPConnectionPool(host='h', port=1): Max retries exceeded with url: "
        "/upload/storage/v1/b/b/o?uploadType=resumable&upload_id=SECRET123 (Caused by X)"
    )
    text = describe_error(error)
    assert "SECRET123" not in text and "upload_id=<redacted>" in text
    xml = describe_error(OSError("PUT /b/o?partNumber=1&uploadId=ABCsecret failed"))
    assert "ABCsecret" not in xml and "uploadId=<redacted>" in xml
