"""One ``Checksum`` type: each protocol takes its subset and refuses the rest with ValueError."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any

import pytest

from resumable_media import common, requests
from resumable_media._protocol.chunked import ChunkedDownloadProtocol
from resumable_media._protocol.download import DownloadProtocol
from resumable_media._protocol.resumable import ResumableUploadProtocol
from resumable_media._protocol.upload import MultipartUploadProtocol
from resumable_media._protocol.xml_mpu import XMLMPUPartProtocol

CHUNK = common.UPLOAD_CHUNK_SIZE
BUILDERS: dict[str, Callable[[Any], object]] = {
    "Download": lambda c: DownloadProtocol("u", checksum=c),
    "ChunkedDownload": lambda c: ChunkedDownloadProtocol("u", 10, checksum=c),
    "ResumableUpload": lambda c: ResumableUploadProtocol("u", CHUNK, checksum=c),
    "MultipartUpload": lambda c: MultipartUploadProtocol("u", checksum=c),
    "XMLMPUPart": lambda c: XMLMPUPartProtocol("u", "id", "f", 0, 1, 1, checksum=c),
}


def test_the_literal_lists_every_value() -> None:
    assert typing.get_args(common.Checksum) == ("md5", "crc32c", "auto", "both", None)


@pytest.mark.parametrize("name", sorted(BUILDERS))
@pytest.mark.parametrize("value", [*typing.get_args(common.Checksum), "sha256", "MD5"])
def test_each_protocol_takes_its_subset(name: str, value: Any) -> None:
    if value in ("md5", "crc32c", "auto", None):
        BUILDERS[name](value)
        return
    # Upstream's own words for a value it does not take (kept for compatibility).
    with pytest.raises(ValueError, match="checksum must be ``'md5'``, ``'crc32c'`` or ``None``"):
        BUILDERS[name](value)


@pytest.mark.parametrize(
    "cls",
    [
        requests.Download,
        requests.RawDownload,
        requests.ChunkedDownload,
        requests.RawChunkedDownload,
        requests.MultipartUpload,
        requests.ResumableUpload,
        requests.XMLMPUPart,
    ],
)
def test_seed_classes_annotate_checksum_with_the_one_type(cls: type) -> None:
    hints = typing.get_type_hints(cls.__init__)  # type: ignore[misc]
    assert hints["checksum"] == common.Checksum, cls
    assert "checksum" in inspect.signature(cls).parameters
