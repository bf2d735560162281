"""checksums API: backend selection, hashers, base64 helpers, x-goog-hash, resolve_checksum."""

from __future__ import annotations

import base64
import hashlib
import mmap
import os
import subprocess
import sys

import google_crc32c
import pytest
from hypothesis import given
from hypothesis import strategies as st

from resumable_media import checksums
from resumable_media.checksums import (
    Crc32cHasher,
    GoogHashError,
    Md5Hasher,
    crc32c_from_b64,
    crc32c_to_b64,
    format_goog_hash,
    new_hasher,
    parse_goog_hash,
    resolve_checksum,
)


def _run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", f"from resumable_media import checksums as c; {code}"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


# --- backend selection ------------------------------------------------------------


@pytest.mark.parametrize("name", ["google-crc32c", "crcmod", "python"])
def test_env_forces_backend(name: str) -> None:
    proc = _run_python("print(c.implementation)", RESUMABLE_MEDIA_CRC32C=name)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == name


def test_env_with_unknown_backend_fails_clearly() -> None:
    proc = _run_python("print(c.implementation)", RESUMABLE_MEDIA_CRC32C="zlib")
    assert proc.returncode != 0
    assert "RESUMABLE_MEDIA_CRC32C='zlib' is not a CRC32C backend" in proc.stderr


def test_backend_lookup() -> None:
    live = checksums.backend(checksums.implementation)
    assert live.name == checksums.implementation
    assert checksums.crc32c is live.crc32c
    assert checksums.crc32c_combine is live.crc32c_combine
    assert checksums.backend("python") is checksums.backend("python")
    available = checksums.available_backends()
    assert "python" in available and checksums.implementation in available
    assert available == [n for n in checksums.BACKENDS if n in available]  # fallback order
    with pytest.raises(ValueError, match="unknown CRC32C backend"):
        checksums.backend("adler32")


def test_fallback_order_prefers_first_available() -> None:
    forced = os.environ.get("RESUMABLE_MEDIA_CRC32C", "").strip().lower()
    available = checksums.available_backends()
    if forced:
        assert checksums.implementation == forced
    elif "native" in available:
        assert checksums.implementation == "native"
    elif "google-crc32c" in available and google_crc32c.implementation == "c":
        assert checksums.implementation == "google-crc32c"


# --- base64 helpers ------------------------------------------------------------------


def test_crc32c_b64_round_trip() -> None:
    # GCS shows crc32c("hello world") as yZRlqg==.
    assert crc32c_to_b64(checksums.crc32c(b"hello world")) == "yZRlqg=="
    assert crc32c_from_b64("yZRlqg==") == 0xC99465AA
    assert crc32c_to_b64(0) == "AAAAAA=="
    assert crc32c_from_b64(crc32c_to_b64(0xFFFFFFFF)) == 0xFFFFFFFF


@pytest.mark.parametrize("bad", ["", "yZRl", "yZRlqg", "not base64!", "AAAAAAAA"])
def test_crc32c_from_b64_rejects_garbage(bad: str) -> None:
    with pytest.raises(ValueError, match="CRC32C"):
        crc32c_from_b64(bad)


def test_crc32c_to_b64_rejects_out_of_range() -> None:
    with pytest.raises(ValueError):
        crc32c_to_b64(1 << 32)


# --- hashers -------------------------------------------------------------------------


def test_md5_hasher_matches_hashlib() -> None:
    data = os.urandom(100_000)
    hasher = new_hasher("md5")
    assert hasher.name == "md5"
    hasher.update(data[:3])
    hasher.update(memoryview(bytearray(data))[3:])
    assert hasher.digest() == hashlib.md5(data).digest()
    assert hasher.hexdigest() == hashlib.md5(data).hexdigest()
    assert hasher.b64digest() == base64.b64encode(hashlib.md5(data).digest()).decode()


def test_crc32c_hasher() -> None:
    data = os.urandom(10_000)
    hasher = new_hasher("crc32c")
    assert hasher.name == "crc32c"
    for i in range(0, len(data), 999):
        hasher.update(memoryview(data)[i : i + 999])
    expected = google_crc32c.value(data)
    assert isinstance(hasher, Crc32cHasher)
    assert hasher.value == expected
    assert hasher.digest() == expected.to_bytes(4, "big")
    assert hasher.hexdigest() == f"{expected:08x}"
    assert hasher.b64digest() == base64.b64encode(expected.to_bytes(4, "big")).decode()


def test_crc32c_hasher_resumes_from_value() -> None:
    resumed = Crc32cHasher(value=checksums.crc32c(b"12345"))
    resumed.update(b"6789")
    assert resumed.value == 0xE3069283
    with pytest.raises(ValueError):
        Crc32cHasher(value=-1)


@pytest.mark.parametrize("name", ["md5", "crc32c"])
def test_hasher_copy_is_independent(name: str) -> None:
    hasher = new_hasher(name)
    hasher.update(b"abc")
    clone = hasher.copy()
    clone.update(b"def")
    reference = new_hasher(name)
    reference.update(b"abcdef")
    assert clone.digest() == reference.digest()
    assert hasher.digest() != clone.digest()
    assert type(clone) is type(hasher)


@pytest.mark.parametrize("name", ["md5", "crc32c"])
def test_hasher_accepts_mmap_and_rejects_bad_input(name: str) -> None:
    hasher = new_hasher(name)
    with mmap.mmap(-1, 5000) as m:
        m.write(b"x" * 5000)
        hasher.update(m)
    reference = new_hasher(name)
    reference.update(b"x" * 5000)
    assert hasher.digest() == reference.digest()
    with pytest.raises(TypeError):
        hasher.update("text")  # type: ignore[arg-type]
    with pytest.raises(BufferError):
        hasher.update(memoryview(b"abcdef")[::2])


def test_new_hasher_unknown_name() -> None:
    with pytest.raises(ValueError, match="sha256"):
        new_hasher("sha256")
    assert isinstance(new_hasher("md5"), Md5Hasher)


# --- resolve_checksum ----------------------------------------------------------------


def test_resolve_checksum() -> None:
    assert resolve_checksum(None) is None
    assert resolve_checksum("md5") == "md5"
    assert resolve_checksum("crc32c") == "crc32c"
    fast = checksums.implementation in ("native", "google-crc32c")
    assert resolve_checksum("auto") == ("crc32c" if fast else "md5")
    for bad in ("CRC32C", "sha1", ""):
        with pytest.raises(ValueError, match="checksum must be"):
            resolve_checksum(bad)


def test_resolve_auto_on_slow_backend_is_md5() -> None:
    for name, expected in (("crcmod", "md5"), ("python", "md5"), ("google-crc32c", "crc32c")):
        proc = _run_python("print(c.resolve_checksum('auto'))", RESUMABLE_MEDIA_CRC32C=name)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == expected, name


# --- x-goog-hash -----------------------------------------------------------------------


def test_parse_goog_hash() -> None:
    assert parse_goog_hash("crc32c=yZRlqg==,md5=XrY7u+Ae7tCTyyK7j1rNww==") == {
        "crc32c": "yZRlqg==",
        "md5": "XrY7u+Ae7tCTyyK7j1rNww==",
    }
    assert parse_goog_hash("crc32c=yZRlqg==, md5=XrY7u+Ae7tCTyyK7j1rNww==")["md5"] == (
        "XrY7u+Ae7tCTyyK7j1rNww=="
    )
    assert parse_goog_hash("crc32c=yZRlqg==") == {"crc32c": "yZRlqg=="}
    assert parse_goog_hash(None) == {}
    assert parse_goog_hash("") == {}


@pytest.mark.parametrize("name", ["md5", "crc32c"])
def test_parse_goog_hash_duplicate(name: str) -> None:
    header = f"{name}=AAAAAA==, crc32c=yZRlqg==, md5=XrY7u+Ae7tCTyyK7j1rNww==, {name}=BBBBBB=="
    with pytest.raises(GoogHashError) as info:
        parse_goog_hash(header)
    err = info.value
    assert isinstance(err, ValueError)
    assert str(err) == f"X-Goog-Hash header had multiple ``{name}`` values."
    assert err.name == name
    assert err.header == header
    assert len(err.matches) == 3 and err.matches[0] == "AAAAAA==" and err.matches[-1] == "BBBBBB=="


def test_parse_goog_hash_malformed() -> None:
    with pytest.raises(GoogHashError, match="not name=value"):
        parse_goog_hash("crc32c")


def test_format_goog_hash() -> None:
    assert format_goog_hash({"md5": "XrY7u+Ae7tCTyyK7j1rNww==", "crc32c": "yZRlqg=="}) == (
        "crc32c=yZRlqg==,md5=XrY7u+Ae7tCTyyK7j1rNww=="
    )
    assert format_goog_hash({}) == ""
    for bad in ({"md5": "a,b"}, {"md 5": "AAAA"}, {"crc32c": ""}):
        with pytest.raises(ValueError, match="x-goog-hash"):
            format_goog_hash(bad)


@given(
    st.dictionaries(
        st.sampled_from(["crc32c", "md5"]),
        st.binary(min_size=1, max_size=16).map(lambda b: base64.b64encode(b).decode()),
    )
)
def test_goog_hash_round_trip(hashes: dict[str, str]) -> None:
    assert parse_goog_hash(format_goog_hash(hashes)) == hashes
