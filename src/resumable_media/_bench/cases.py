# The catalogue of benchmark cases and the ratios the project promises.
#
# Invariants: case ids are unique and stable (scripts and the CLI select by id or
# glob); every ``peer`` and every Target names a case in CASES; the runner string
# resolves to a function in transfers.py, imported only in the child process.
"""The benchmark case catalogue and the promised throughput ratios."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable

from resumable_media._bench.model import CaseSpec, Target

__all__ = ["CASES", "RSS_CASE", "RSS_LIMIT_BYTES", "TARGETS", "select_cases"]

_TOOLS = {
    "curl": "curl",
    "grm": "google-resumable-media 2.11",
    "tm": "google-cloud-storage transfer_manager",
    "ours": "resumable-media",
}
_MODULES = {"grm": "google.resumable_media.requests", "ours": "resumable_media.requests"}

RSS_CASE = "ours.parallel_download.rss"
"""The optional peak-RSS case (a larger object, default 4 GiB)."""

RSS_LIMIT_BYTES = 300 * (1 << 20)
"""The promised peak RSS of the RSS case, workers included (300 MiB)."""


def _case(
    case_id: str,
    label: str,
    group: str,
    body: str,
    peer: str | None = None,
    target: float | None = None,
    **options: str,
) -> CaseSpec:
    # The family prefix of the id names the tool; grm and ours share case bodies and
    # differ only in the module those bodies import.
    family = case_id.split(".")[0]
    if family in _MODULES and body in ("stream_download", "chunked_download", "resumable_upload"):
        options["module"] = _MODULES[family]
    return CaseSpec(
        case_id=case_id,
        label=label,
        tool=_TOOLS[family],
        group=group,
        runner=f"resumable_media._bench.transfers:{body}",
        options=tuple(sorted(options.items())),
        peer=peer,
        target=target,
        ours=family == "ours",
        default=case_id != RSS_CASE,
    )


_DOWNLOAD_MD5 = 'Download(checksum="md5")'
_DOWNLOAD_CRC = 'Download(checksum="crc32c")'
_CHUNKED = "ChunkedDownload(32 MiB)"
_RESUMABLE = "ResumableUpload(8 MiB, crc32c)"

CASES: tuple[CaseSpec, ...] = (
    _case("curl", "curl -o FILE", "download", "curl_download"),
    _case("grm.download.crc32c", _DOWNLOAD_CRC, "download", "stream_download", checksum="crc32c"),
    _case("grm.download.md5", _DOWNLOAD_MD5, "download", "stream_download", checksum="md5"),
    _case("grm.chunked", _CHUNKED, "download", "chunked_download"),
    _case("tm.download", "download_chunks_concurrently (defaults)", "download", "tm_download"),
    _case(
        "ours.download.crc32c",
        _DOWNLOAD_CRC,
        "download",
        "stream_download",
        "grm.download.crc32c",
        4.0,
        checksum="crc32c",
    ),
    _case(
        "ours.download.md5",
        _DOWNLOAD_MD5,
        "download",
        "stream_download",
        "grm.download.md5",
        1.8,
        checksum="md5",
    ),
    _case("ours.chunked", _CHUNKED, "download", "chunked_download", "grm.chunked", 4.0),
    _case(
        "ours.parallel_download",
        "ParallelDownload (defaults)",
        "download",
        "parallel_download",
        "curl",
        0.8,
    ),
    _case("curl.upload", "curl -T FILE (one PUT, no hashing)", "upload", "curl_upload"),
    _case("grm.resumable", _RESUMABLE, "upload", "resumable_upload"),
    _case("tm.upload", "upload_chunks_concurrently (defaults)", "upload", "tm_upload"),
    _case("ours.resumable", _RESUMABLE, "upload", "resumable_upload", "grm.resumable", 2.0),
    _case(
        "ours.pipelined",
        "PipelinedUpload(8 MiB, crc32c)",
        "upload",
        "pipelined_upload",
        "grm.resumable",
        2.5,
    ),
    _case(
        "ours.pipelined.single",
        "PipelinedUpload(8 MiB, crc32c, single_request=True)",
        "upload",
        "pipelined_upload",
        "grm.resumable",
        single_request="yes",
    ),
    _case(
        "ours.parallel_upload",
        "ParallelUpload (defaults)",
        "upload",
        "parallel_upload",
        "tm.upload",
        1.5,
    ),
    _case(RSS_CASE, "ParallelDownload (defaults), peak RSS", "memory", "parallel_download"),
)
"""Every case, in the order of the first repeat (later repeats alternate it)."""

TARGETS: tuple[Target, ...] = (
    *(
        Target(ours=spec.case_id, peer=spec.peer, minimum=spec.target)
        for spec in CASES
        if spec.peer is not None and spec.target is not None
    ),
    Target(ours="ours.parallel_download", peer="grm.chunked", minimum=5.0),
    Target(ours="ours.parallel_download", peer="tm.download", minimum=2.0),
)
"""Every promised ratio (ours / peer, medians of the same run)."""

_BY_ID = {spec.case_id: spec for spec in CASES}


def select_cases(patterns: Iterable[str | CaseSpec] | None) -> list[CaseSpec]:
    """Resolve case ids, globs (``ours.*``) or group names to case specs, in catalogue order.

    Args:
        patterns: Case ids, fnmatch globs (matching default cases only), the group names
            ``download``, ``upload``, ``memory``/``rss``, or ``all``. None selects the
            default cases. A CaseSpec is taken as given (a custom case).

    Returns:
        The matching catalogue cases, each once, in catalogue order, then the custom ones.

    Raises:
        ValueError: If a pattern matches no case (the message lists the valid ids).
    """
    if patterns is None:
        return [spec for spec in CASES if spec.default]
    chosen: set[str] = set()
    custom: list[CaseSpec] = []
    for pattern in patterns:
        if isinstance(pattern, CaseSpec):
            custom.append(pattern)
            continue
        if pattern == "all":
            matched = {spec.case_id for spec in CASES}
        elif pattern in ("download", "upload", "memory", "rss"):
            group = "memory" if pattern == "rss" else pattern
            matched = {spec.case_id for spec in CASES if spec.group == group}
        elif pattern in _BY_ID:
            matched = {pattern}
        else:
            # Globs pick default cases only: "ours.*" must not start a 4 GiB RSS run.
            matched = {
                spec.case_id
                for spec in CASES
                if spec.default and fnmatch.fnmatchcase(spec.case_id, pattern)
            }
        if not matched:
            valid = ", ".join(_BY_ID)
            raise ValueError(f"no benchmark case matches {pattern!r}; valid cases: {valid}")
        chosen |= matched
    selected = [spec for spec in CASES if spec.case_id in chosen]
    ids = [spec.case_id for spec in selected + custom]
    if len(set(ids)) != len(ids):
        raise ValueError(f"benchmark case ids must be unique, got {ids}")
    return selected + custom


def spec_for(case_id: str) -> CaseSpec:
    """Return the spec of ``case_id``.

    Raises:
        KeyError: If there is no such case.
    """
    return _BY_ID[case_id]
