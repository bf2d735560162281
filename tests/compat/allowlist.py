"""The allow-list of the differential suite: the only differences from
google-resumable-media 2.11 a caller may see, each tied to a README compatibility note.

``NOTES`` maps a key to the README bullet (verbatim; ``test_allowlist_mirrors_readme``
checks that the README's "Deliberate differences" list holds exactly these bullets).
``ALLOWED`` maps (class, scenario) to ``(pattern, note)`` pairs; a pattern is matched
against the flattened observation paths of ``_diff.flatten``, with ``*`` for any text.  Every
pattern must match a difference of its scenario, so a fixed difference cannot linger.
"""

from __future__ import annotations

NOTES: dict[str, str] = {
    "in-memory-hash": (
        "`Download(stream=None)` checks the hash of `response.content`, so a corrupted "
        "body raises `DataCorruption` instead of being handed back. Why: upstream checks "
        "nothing without a stream, and a caller reading `content` deserves the same check."
    ),
    "resumed-hash": (
        "After a broken stream is resumed with a 206, the whole-object hash is still "
        "checked. Why: upstream skips every 206, so a resumed download, the one most likely "
        "to be damaged, is never verified; the running hash covers every attempt."
    ),
    "resume-offset": (
        "A resumed `Download` asks for the byte after the last one received, where "
        "upstream asks for the byte after its last whole 8 KiB piece. Why: bodies are read "
        "in 1 MiB pieces and every byte read is kept, so nothing is fetched twice."
    ),
    "chunked-whole-hash": (
        "A `ChunkedDownload` or `RawChunkedDownload` run that covers the whole object "
        "(`start=0`, no `end`) is checked against the server's hash after its last chunk "
        '(keyword `checksum=`, default `"auto"`). Why: upstream never checks chunks, yet '
        "a whole-object run has everything needed to."
    ),
    "bad-checksum-name": (
        '`checksum="badsum"` (any unknown name) raises upstream\'s `ValueError` in the '
        "constructor. Why: upstream raises it only once a download's first response has "
        "arrived, or when an upload is transmitted; a typo should fail where it is made."
    ),
    "x-goog-hash": (
        "The client sends its checksum as `x-goog-hash` on the final resumable chunk and "
        "on each XML multipart part. Why: the server then rejects corrupted bytes itself "
        "(google-cloud-storage 3.x does the same)."
    ),
    "short-chunk": (
        "A chunk whose `content-length` is shorter than its `Content-Range` is an error, "
        "`InvalidResponse('Response is different size than content-length', 'Expected', "
        "<Content-Range length>, 'Received', <content-length>)`, and the download becomes "
        "invalid. Why: upstream counts the short chunk and moves on, leaving a hole in the "
        "stream."
    ),
    "empty-total": (
        "`total_bytes` is 0 after the 416 that answers a chunked download of an empty "
        "object. Why: the object's size is known (upstream leaves it None)."
    ),
}

_ERROR = ["error*"]  # the exception, and the response it carries (error_response.*)
_AFTER_ERROR = [*_ERROR, "status", "class", "content*", "second_consume*"]

ALLOWED: dict[tuple[str, str], list[tuple[str, str]]] = {}


def _allow(classes: list[str], scenario: str, note: str, patterns: list[str]) -> None:
    for cls in classes:
        ALLOWED.setdefault((cls, scenario), []).extend((p, note) for p in patterns)


_SINGLE = ["Download", "RawDownload"]
_CHUNKED = ["ChunkedDownload", "RawChunkedDownload"]

_allow(["Download"], "checksum-mismatch-no-stream", "in-memory-hash", _AFTER_ERROR)
_allow(_SINGLE, "resumed-206-checksum-mismatch", "resumed-hash", _AFTER_ERROR)
_allow(["Download"], "resumed-206-checksum-mismatch", "resume-offset", ["calls[1].headers.range"])
_allow(["Download"], "broken-stream-resume-scripted", "resume-offset", ["calls[1].headers.range"])
# The body breaks off at 300 KiB, not on an 8 KiB boundary: upstream keeps 296 KiB of it.
_allow(["Download"], "broken-stream-exhausted", "resume-offset", ["calls[1].headers.range"])
_allow(_SINGLE, "broken-stream-exhausted", "resume-offset", ["stream"])
_allow(_SINGLE, "unknown-checksum", "bad-checksum-name", ["calls*", "state.finished"])
_allow(["MultipartUpload"], "unknown-checksum", "bad-checksum-name", ["state.finished"])
# Upstream initiates the session first and fails at the first chunk.
_allow(["ResumableUpload"], "unknown-checksum", "bad-checksum-name", ["calls*", "state.*"])
_allow(
    _CHUNKED,
    "whole-object-checksum-mismatch",
    "chunked-whole-hash",
    [*_ERROR, "responses*", "after_finished*", "state.invalid", "stream"],
)
_allow(
    _CHUNKED,
    "short-chunk",
    "short-chunk",
    [
        *_ERROR,
        *("calls[*", "calls.len", "wire*", "stream"),
        *("state.bytes_downloaded", "state.invalid", "state.total_bytes"),
    ],
)
_allow(_CHUNKED, "416-empty-object", "empty-total", ["state.total_bytes"])
for _scenario in ("checksum-mismatch", "checksum-missing"):
    _allow(["ResumableUpload"], _scenario, "x-goog-hash", ["calls[1].headers.x-goog-hash"])
for _scenario in ("success-md5", "success-crc32c", "5xx-retry"):
    _allow(["ResumableUpload"], _scenario, "x-goog-hash", ["calls[*].headers.x-goog-hash"])
for _scenario in ("success-md5", "success-crc32c"):
    _allow(["XMLMPUPart"], _scenario, "x-goog-hash", ["calls[*].headers*"])
for _scenario in ("checksum-mismatch", "checksum-missing", "missing-etag"):
    _allow(["XMLMPUPart"], _scenario, "x-goog-hash", ["calls[0].headers*"])
