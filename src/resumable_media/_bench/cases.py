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
from resumable_media._bench.names import FAMILIES, TOOLS, WORKLOADS, Workload

__all__ = [
    "CASES",
    "FAMILIES",
    "REFERENCES",
    "RSS_CASE",
    "RSS_LIMIT_BYTES",
    "TABLE_CASES",
    "TARGETS",
    "WORKLOADS",
    "Workload",
    "select_cases",
    "table_cases",
]

_TOOLS = TOOLS

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
    *,
    workload: str = "large",
    source: str = "transfers",
    extra: dict[str, str] | None = None,
    concurrency: int | None = None,
    **options: str,
) -> CaseSpec:
    options.update(extra or {})
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
        runner=f"resumable_media._bench.{source}:{body}",
        options=tuple(sorted(options.items())),
        peer=peer,
        target=target,
        ours=family == "ours",
        default=case_id != RSS_CASE,
        workload=workload,
        needs_tls=family == "gsutil",
        concurrency=concurrency,
    )


_IN_FLIGHT = {
    "ours.cp": 8,
    "ours.bulk": 8,
    "obstore": 8,
    "rclone": 8,
    "tm.many": 8,
    "curl.many": 8,
}
"""Objects in flight of the many-object cases whose concurrency is fixed (8: our cp -j)."""


def _peer_cases() -> tuple[CaseSpec, ...]:
    """Our `cp` command and every native or CLI peer, for each workload and direction."""
    out: list[CaseSpec] = []
    # Per family: (download body, download label, upload body, upload label, options).
    large: tuple[tuple[str, str, str, str, str, dict[str, str]], ...] = (
        (
            "ours.cp",
            "ours_cp_download",
            "cp gs://... FILE (defaults)",
            "ours_cp_upload",
            "cp FILE gs://... (defaults)",
            {},
        ),
        (
            "obstore",
            "obstore_download",
            "get_range_async, 32 MiB x 4 in flight, pwrite",
            "obstore_upload",
            "put(path) (defaults: multipart, 12 parts in flight)",
            {},
        ),
        (
            "pyarrow",
            "pyarrow_download",
            "fs.copy_files (defaults)",
            "pyarrow_upload",
            "fs.copy_files (defaults)",
            {},
        ),
        (
            "gcsfs",
            "gcsfs_download",
            "GCSFileSystem.get (defaults)",
            "gcsfs_upload",
            "GCSFileSystem.put (defaults)",
            {},
        ),
        (
            "rclone",
            "rclone_download",
            "rclone copyto (defaults: 4 streams)",
            "rclone_upload",
            "rclone copyto (defaults: one stream)",
            {},
        ),
        (
            "gcs.blob",
            "gcs_blob_download",
            "Blob.download_to_filename (defaults)",
            "gcs_blob_upload",
            "Blob.upload_from_filename (defaults)",
            {},
        ),
        (
            "gsutil",
            "gsutil_download",
            "gsutil cp (defaults)",
            "gsutil_upload",
            "gsutil cp (defaults)",
            {},
        ),
    )
    many: tuple[tuple[str, str, str, str, str, dict[str, str]], ...] = (
        (
            "ours.cp",
            "ours_cp_download",
            "cp -r gs://.../prefix DIR (defaults: -j 8)",
            "ours_cp_upload",
            "cp -r DIR gs://.../prefix/ (defaults: -j 8)",
            {},
        ),
        (
            "ours.bulk",
            "ours_bulk_download",
            "bulk.execute(Plan(gs://..., DIR), ThreadExecutor(8))",
            "ours_bulk_upload",
            "bulk.execute(Plan(DIR, gs://...), ThreadExecutor(8))",
            {},
        ),
        (
            "obstore",
            "obstore_download",
            "get_async, 8 objects in flight",
            "obstore_upload",
            "put_async(path), 8 files in flight",
            {"concurrency": "8"},
        ),
        (
            "pyarrow",
            "pyarrow_download",
            "fs.copy_files of the prefix (defaults)",
            "pyarrow_upload",
            "fs.copy_files of the directory (defaults)",
            {},
        ),
        (
            "gcsfs",
            "gcsfs_download",
            "GCSFileSystem.get(list) (defaults)",
            "gcsfs_upload",
            "GCSFileSystem.put(list) (defaults)",
            {},
        ),
        (
            "rclone",
            "rclone_download",
            "rclone copy --transfers 8",
            "rclone_upload",
            "rclone copy --transfers 8",
            {"transfers": "8"},
        ),
        (
            "tm.many",
            "tm_many_download",
            "download_many_to_path (defaults: 8 processes)",
            "tm_many_upload",
            "upload_many_from_filenames (defaults: 8 processes)",
            {},
        ),
        (
            "curl.many",
            "curl_many_download",
            "curl --parallel --parallel-max 8 (media GETs)",
            "curl_many_upload",
            "curl --parallel --parallel-max 8 (XML PUTs)",
            {"parallel": "8"},
        ),
        (
            "gsutil",
            "gsutil_download",
            "gsutil -m cp -I DIR (defaults)",
            "gsutil_upload",
            "gsutil -m cp -I gs://.../prefix/ (defaults)",
            {},
        ),
    )
    for workload, table in (("large", large), ("small", many), ("medium", many)):
        for stem, down, down_label, up, up_label, options in table:
            for body, label, group, tail in (
                (down, down_label, "download", "down"),
                (up, up_label, "upload", "up"),
            ):
                out.append(
                    _case(
                        f"{stem}.{workload}.{tail}",
                        label,
                        group,
                        body,
                        workload=workload,
                        source="peers",
                        extra=options,
                        concurrency=_IN_FLIGHT.get(stem) if workload != "large" else None,
                    )
                )
    return tuple(out)


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
    *_peer_cases(),
)
"""Every case, in the order of the first repeat (later repeats alternate it)."""

REFERENCES = {
    ("large", "download"): "ours.parallel_download",
    ("large", "upload"): "ours.parallel_upload",
    **{
        (workload, group): f"ours.cp.{workload}.{tail}"
        for workload in ("small", "medium")
        for group, tail in (("download", "down"), ("upload", "up"))
    },
}
"""Our row every other row of a (workload, direction) section is compared with."""

TABLE_CASES = frozenset(
    {
        *REFERENCES.values(),
        "curl",
        "curl.upload",
        "grm.download.crc32c",
        "grm.resumable",
        "tm.download",
        "tm.upload",
        "ours.pipelined",
        *(
            spec.case_id
            for spec in CASES
            if spec.runner.startswith("resumable_media._bench.peers:")
        ),
    }
)
"""The cases of the peer table (README): ours, our `cp`, and one row per peer and workload."""

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


def table_cases(
    workloads: Iterable[str] = tuple(WORKLOADS), peers: Iterable[str] | None = None
) -> list[str]:
    """The peer-table case ids for some workloads and peer families, in catalogue order.

    Args:
        workloads: Workload names (``large``, ``small``, ``medium``).
        peers: Peer families (see FAMILIES); None: every family. Ours always runs.

    Raises:
        ValueError: On an unknown workload or family (the message lists the valid ones).
    """
    wanted = set(workloads)
    families = set(FAMILIES if peers is None else peers)
    bad_w = sorted(wanted - set(WORKLOADS))
    if bad_w:
        raise ValueError(f"unknown workload {bad_w[0]!r}; choose from {', '.join(WORKLOADS)}")
    bad_f = sorted(families - set(FAMILIES))
    if bad_f:
        raise ValueError(f"unknown peer {bad_f[0]!r}; choose from {', '.join(FAMILIES)}")
    return [
        spec.case_id
        for spec in CASES
        if spec.case_id in TABLE_CASES
        and spec.workload in wanted
        and (spec.ours or spec.family in families)
    ]


def select_cases(patterns: Iterable[str | CaseSpec] | None) -> list[CaseSpec]:
    """Resolve case ids, globs (``ours.*``) or group names to case specs, in catalogue order.

    Args:
        patterns: Case ids, fnmatch globs (matching default cases only), the group names
            ``download``, ``upload``, ``memory``/``rss``, the workloads ``large``, ``small``,
            ``medium``, ``peers`` (the peer table) or ``all``. None selects the default
            cases of the ``large`` workload. A CaseSpec is taken as given (a custom case).

    Returns:
        The matching catalogue cases, each once, in catalogue order, then the custom ones.

    Raises:
        ValueError: If a pattern matches no case (the message lists the valid ids).
    """
    if patterns is None:
        # The many-object workloads (seeding 2,000 files, 1.6 GiB) are asked for by name.
        return [spec for spec in CASES if spec.default and spec.workload == "large"]
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
        elif pattern in WORKLOADS:
            matched = {s.case_id for s in CASES if s.default and s.workload == pattern}
        elif pattern == "peers":
            matched = set(TABLE_CASES)
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
