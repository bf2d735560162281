"""``multipart/related`` request bodies as RFC 2046 allows them, read in one pass.

Invariants: only the body's head (the metadata part and the media part's headers, at most
``HEAD_LIMIT`` bytes) is held in memory; the media part is streamed by the caller straight
into its destination through ``Rest`` with the body's last ``tail_size`` bytes held back, so the
closing boundary is found without writing or hashing the media twice. Lines may end in CRLF or
a bare LF (gcsfs sends LF only), and a part's header block may be empty (Go's
``mime/multipart`` as used by rclone sends none for the media part). The line ending of the
first boundary line is the body's: with LF bodies a media part that itself ends in CR keeps
that byte (it is data, not half of a CRLF). Every malformed body is refused with a 400 naming
what is wrong.
"""

from __future__ import annotations

import dataclasses
import re

from .exchange import Body
from .store import StoreError

HEAD_LIMIT = 1 << 20
HEAD_READ = 64 << 10
EPILOGUE_LIMIT = 4096
_BOUNDARY = re.compile(r"""boundary=(?:"([^"]+)"|'([^']+)'|([^";\s]+))""", re.IGNORECASE)


def _invalid(problem: str) -> StoreError:
    return StoreError(400, f"Invalid multipart request: {problem}.")


def boundary(content_type: str) -> bytes:
    """The boundary parameter of a ``multipart/*`` Content-Type.

    Raises:
        StoreError: 400 when the type is not multipart or has no boundary.
    """
    match = _BOUNDARY.search(content_type)
    if not content_type.lower().lstrip().startswith("multipart/") or not match:
        raise _invalid("the Content-Type has no multipart boundary")
    # apitools (gsutil) single-quotes the boundary; GCS accepts that, so this server does too.
    return (match[1] or match[2] or match[3]).encode("latin-1")


@dataclasses.dataclass
class Head:
    """The parsed start of a multipart body: the first part and the media part's headers."""

    metadata: bytes
    media_headers: dict[str, str]
    leftover: bytes
    """Body bytes already read that belong to the media part (and maybe the closing
    boundary)."""
    crlf: bool = True
    """Whether the body's lines end in CRLF (else a bare LF), as its first boundary line."""


def _line(buf: bytes, at: int) -> tuple[bytes, int] | None:
    """The line starting at ``at`` without its CRLF or LF, and where the next one starts."""
    end = buf.find(b"\n", at)
    if end < 0:
        return None
    line = buf[at:end]
    return (line[:-1] if line.endswith(b"\r") else line), end + 1


def _headers(buf: bytes, at: int, which: str) -> tuple[dict[str, str], int] | None:
    """A part's header block from ``at`` up to its blank line (an empty block is allowed)."""
    headers: dict[str, str] = {}
    while True:
        got = _line(buf, at)
        if got is None:
            return None
        line, at = got
        if not line:
            return headers, at
        key, sep, value = line.decode("latin-1").partition(":")
        if not sep or not key.strip():
            raise _invalid(f"the {which} part has a malformed header line {line[:80]!r}")
        headers[key.strip().lower()] = value.strip()


def _parse_head(buf: bytes, delim: bytes) -> Head | None:
    """Parse the head if ``buf`` holds all of it; None when more bytes are needed."""
    first = buf.find(delim)
    if first < 0 or (first > 0 and buf[first - 1 : first] != b"\n"):
        return None
    opening = _line(buf, first + len(delim))
    if opening is None:
        return None
    crlf = buf[opening[1] - 2 : opening[1]] == b"\r\n"
    if opening[0].strip():
        raise _invalid("the first boundary line is followed by unexpected characters")
    got = _headers(buf, opening[1], "metadata")
    if got is None:
        return None
    _, body_at = got
    second = buf.find(b"\n" + delim, body_at - 1)
    if second < 0:
        return None
    metadata = buf[body_at:second]
    if metadata.endswith(b"\r"):
        metadata = metadata[:-1]
    after = second + 1 + len(delim)
    if buf[after : after + 2] == b"--":
        raise _invalid("the body has a metadata part but no media part")
    line = _line(buf, after)
    if line is None:
        return None
    if line[0].strip():
        raise _invalid("the second boundary line is followed by unexpected characters")
    media = _headers(buf, line[1], "media")
    if media is None:
        return None
    return Head(metadata, media[0], buf[media[1] :], crlf)


def read_head(body: Body, delim: bytes) -> Head:
    """Read the body until its head is complete (at most ``HEAD_LIMIT`` bytes).

    Raises:
        StoreError: 400 when the body ends, or grows past the limit, before the media part
            starts.
    """
    buf = bytearray()
    chunk = memoryview(bytearray(HEAD_READ))
    while True:
        head = _parse_head(bytes(buf), delim)
        if head is not None:
            return head
        if len(buf) >= HEAD_LIMIT:
            raise _invalid(f"no media part starts within the first {HEAD_LIMIT} bytes")
        n = body.readinto(chunk)
        if not n:
            break
        buf += chunk[:n]
    if buf.find(delim) < 0:
        raise _invalid(f"the boundary {delim[2:].decode('latin-1')!r} does not occur in the body")
    raise _invalid("the body ends before the media part's headers end with a blank line")


class Rest:
    """The media part and what follows it: the head's leftover bytes, then the body."""

    def __init__(self, leftover: bytes, body: Body) -> None:
        self._leftover = memoryview(leftover)
        self._body = body

    @property
    def length(self) -> int | None:
        """Bytes still to come, when the body's length is known."""
        if self._body.length is None:
            return None
        return len(self._leftover) + self._body.length - self._body.bytes_read

    def readinto(self, view: memoryview) -> int:
        """Fill ``view`` from the leftover bytes first, then from the body."""
        if self._leftover:
            n = min(len(view), len(self._leftover))
            view[:n] = self._leftover[:n]
            self._leftover = self._leftover[n:]
            return n
        return self._body.readinto(view)


def tail_size(delim: bytes) -> int:
    """How many trailing bytes to hold back: the closing boundary plus a short epilogue."""
    return len(delim) + 4 + EPILOGUE_LIMIT


def media_end(tail: bytes, delim: bytes, crlf: bool = True) -> int:
    """Where the media part ends within the held-back ``tail`` (its closing boundary starts).

    Args:
        tail: The body's last bytes.
        delim: ``--`` and the boundary.
        crlf: Whether the body's lines end in CRLF (then the CR before the closing
            boundary's LF belongs to the boundary; with LF lines, a CR there is media).

    Raises:
        StoreError: 400 when the body has no closing boundary near its end.
    """
    close = tail.rfind(b"\n" + delim + b"--")
    if close < 0:
        if tail.rfind(b"\n" + delim) >= 0:
            raise _invalid("the body has more than two parts (expected metadata and media)")
        raise _invalid(
            f"the body does not end with the closing boundary '--{delim[2:].decode('latin-1')}--'"
        )
    if crlf and close > 0 and tail[close - 1 : close] == b"\r":
        return close - 1
    return close
