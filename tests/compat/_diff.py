"""The differential harness: run one scenario on upstream and on ours, compare what a
caller sees, and check every difference against the allow-list.

A scenario is a function ``(impl, ctx) -> dict`` that drives one public class and returns
observations (status, stream bytes, state attributes); :func:`observe` adds the
exception (class and ``args``) and every ``transport.request`` call (method, URL,
positional arguments, keyword names, ``stream``/``timeout``, headers and body).  Values
that legitimately differ between two runs (bucket names, upload ids, Retry Test ids,
multipart boundaries) are replaced by placeholders before comparing.
"""

from __future__ import annotations

import dataclasses
import http
import re
import types
from collections.abc import Callable
from typing import Any

import requests

Observed = dict[str, Any]


@dataclasses.dataclass
class Impl:
    """One implementation under test: ``google.resumable_media`` or ``resumable_media``."""

    name: str
    requests: types.ModuleType
    common: types.ModuleType

    def retry(self, max_retries: int) -> Any:
        """A strategy allowing ``max_retries`` retries with (near) zero waits."""
        if self.name == "ours":
            return self.common.RetryStrategy(
                max_retries=max_retries, initial_delay=0.001, jitter_s=0
            )
        # Upstream's sleeps are patched out by the suite's fixture.
        return self.common.RetryStrategy(max_retries=max_retries)


class Recorder:
    """A transport that records each ``request`` call, then sends it on a real session."""

    def __init__(self, session: requests.Session) -> None:
        self.session = session
        self.calls: list[dict[str, Any]] = []
        self.responses: list[Any] = []

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        data = kwargs.get("data")
        headers = kwargs.get("headers")
        self.calls.append(
            {
                "method": method,
                "url": url,
                "positional": len(args),
                "keywords": sorted(kwargs),
                "stream": kwargs.get("stream", "<absent>"),
                "timeout": kwargs.get("timeout", "<absent>"),
                "headers": dict(headers) if headers is not None else None,
                "body": bytes(data) if isinstance(data, (bytes, bytearray)) else data,
            }
        )
        result = self.session.request(method, url, *args, **kwargs)
        self.responses.append(result)
        return result

    def close(self) -> None:
        """Close every response (upstream leaves a failed streamed response open)."""
        for result in self.responses:
            result.close()


def watch_session(session: requests.Session, recorder: Recorder) -> requests.Session:
    """Record what ``session`` sends, at ``send`` level, leaving its type alone (so code
    that recognises a plain ``requests.Session`` still does): method, URL, headers and
    body of each prepared request, in the same shape as :class:`Recorder`'s calls."""
    send = session.send

    def watched(request: requests.PreparedRequest, **kwargs: Any) -> Any:
        recorder.calls.append(
            {
                "method": request.method,
                "url": request.url,
                "headers": {k.lower(): v for k, v in request.headers.items()},
                "body": request.body,
            }
        )
        result = send(request, **kwargs)
        recorder.responses.append(result)
        return result

    session.send = watched  # type: ignore[method-assign]
    return session


class Context:
    """What a scenario may use: the recorder transport and the per-implementation names."""

    def __init__(self, transport: Recorder | requests.Session, **values: Any) -> None:
        self.transport = transport
        self.__dict__.update(values)


def _exception_name(exc: BaseException) -> str:
    cls = type(exc)
    module = cls.__module__
    if module in ("google.resumable_media.common", "resumable_media.common"):
        return f"common.{cls.__qualname__}"
    return f"{module}.{cls.__qualname__}"


def normalise(value: Any, subs: list[tuple[str, str]]) -> Any:
    """Make a value comparable across the two runs."""
    if isinstance(value, http.HTTPStatus):
        return int(value)
    if isinstance(value, BaseException):
        return {"class": _exception_name(value), "args": normalise(list(value.args), subs)}
    if isinstance(value, requests.Response):
        return f"<Response {value.status_code}>"

    if isinstance(value, (list, tuple)):
        return [normalise(item, subs) for item in value]
    if isinstance(value, dict):
        return {normalise(k, subs): normalise(v, subs) for k, v in value.items()}
    if isinstance(value, (bytes, bytearray)):
        text = bytes(value)
        for old, new in subs:
            text = re.sub(old.encode(), new.encode(), text)
        return text
    if isinstance(value, str):
        for old, new in subs:
            value = re.sub(old, new, value)
        return value
    if hasattr(value, "headers") and hasattr(value, "status_code"):
        return f"<response {value.status_code}>"
    return value


def seen_response(response: Any) -> Any:
    """What a caller can get from the response an exception carries: its status and
    ``content`` (read now, before the harness closes it)."""
    if response is None:
        return None
    try:
        content: Any = response.content
    except Exception as exc:
        content = exc
    return {"status": getattr(response, "status_code", None), "content": content}


SUBSTITUTIONS = [
    (r"upload_id=[A-Za-z0-9_\-]+", "upload_id=ID"),
    (r"={15}\d{19}==", "BOUNDARY"),
    (r"<UploadId>[^<]+</UploadId>", "<UploadId>ID</UploadId>"),
    (r"<ETag>[^<]*</ETag>", "<ETag>SERVER-ETAG</ETag>"),
]


def observe(
    impl: Impl,
    scenario: Callable[[Impl, Context], Observed],
    session: requests.Session,
    subs: list[tuple[str, str]],
    *,
    bare: bool = False,
    **values: Any,
) -> Observed:
    """Run ``scenario`` for ``impl`` and return its normalised observations.

    With ``bare`` the scenario gets the plain ``requests.Session`` itself as its transport
    (requests are recorded as the session sends them) instead of a :class:`Recorder`.
    """
    recorder = Recorder(session)
    ctx = Context(watch_session(session, recorder) if bare else recorder, **values)
    observed: Observed = {}
    try:
        observed.update(scenario(impl, ctx) or {})
    except Exception as exc:
        observed["error"] = exc
        observed["error_response"] = seen_response(getattr(exc, "response", None))
    observed.update(state(ctx))
    recorder.close()
    observed["calls"] = recorder.calls
    normalised: Observed = normalise(observed, [*getattr(ctx, "extra_subs", []), *subs])
    return normalised


STATE = (
    "finished",
    "invalid",
    "bytes_downloaded",
    "total_bytes",
    "resumable_url",
    "bytes_uploaded",
    "upload_id",
    "etag",
)


def state(ctx: Context) -> Observed:
    """The transfer object's public state, and the stream's bytes, as the scenario left them."""
    out: Observed = {}
    obj = getattr(ctx, "obj", None)
    if obj is not None:
        for name in STATE:
            if hasattr(type(obj), name) or name in vars(obj):
                out[f"state.{name}"] = getattr(obj, name)
    stream = getattr(ctx, "stream", None)
    if stream is not None:
        out["stream"] = stream.getvalue()
    return out


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": [1]}}`` -> ``{"a.b[0]": 1}``, so differences name a precise path."""
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list) and value:
        out = {}
        for index, item in enumerate(value):
            out.update(flatten(item, f"{prefix}[{index}]"))
        out[f"{prefix}.len"] = len(value)
        return out
    return {prefix: value}


def differences(upstream: Observed, ours: Observed) -> dict[str, tuple[Any, Any]]:
    """Every flattened path whose value differs (absent counts as a value)."""
    a, b = flatten(upstream), flatten(ours)
    missing = "<absent>"
    return {
        path: (a.get(path, missing), b.get(path, missing))
        for path in sorted(set(a) | set(b))
        if a.get(path, missing) != b.get(path, missing)
        # Public state ours has and upstream lacks (e.g. Download.bytes_downloaded) is an
        # addition, not a difference in what upstream code sees.
        and not (path.startswith("state.") and path not in a)
    }


def matches(path: str, pattern: str) -> bool:
    """Whether ``path`` matches ``pattern``, where only ``*`` is special (any text)."""
    regex = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(regex, path) is not None


def check(
    name: str,
    upstream: Observed,
    ours: Observed,
    allowed: list[str],
) -> None:
    """Fail on a difference no pattern allows, or on a pattern that allows nothing."""
    diff = differences(upstream, ours)
    unexplained = {
        path: values
        for path, values in diff.items()
        if not any(matches(path, pattern) for pattern in allowed)
    }
    unused = [p for p in allowed if not any(matches(path, p) for path in diff)]
    lines = []
    roots: dict[str, list[str]] = {}
    for path in unexplained:
        roots.setdefault(re.split(r"[.\[]", path, maxsplit=1)[0], []).append(path)
    for root, paths in roots.items():
        theirs, mine = upstream.get(root, "<absent>"), ours.get(root, "<absent>")
        lines.append(
            f"  {root} ({', '.join(paths[:6])}{', ...' if len(paths) > 6 else ''}):\n"
            f"    upstream: {theirs!r:.700}\n    ours:     {mine!r:.700}"
        )
    for pattern in unused:
        lines.append(f"  allow-list entry {pattern!r} matched no difference (stale entry)")
    if lines:
        raise AssertionError(f"{name}: differences outside the allow-list:\n" + "\n".join(lines))
