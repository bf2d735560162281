"""obstore (Rust object_store's GCS backend, which speaks the XML API) against the server."""

from __future__ import annotations

import obstore
from obstore.store import GCSStore

from resumable_media.testing import GCSServer


def _store(server: GCSServer, bucket: str) -> GCSStore:
    # A static bearer token stands in for credentials: the server enforces no authorisation.
    return GCSStore(
        bucket,
        base_url=server.endpoint,
        bearer_token="loopback-test",
        client_options={"allow_http": True},
    )


def test_obstore_put_get_list(
    gcs_server: GCSServer, gcs_bucket: str, payloads: dict[str, bytes]
) -> None:
    store = _store(gcs_server, gcs_bucket)
    for name, data in payloads.items():
        obstore.put(store, f"ob/{name}", data)  # the 40 MiB object goes as an XML multipart
        assert gcs_server.object_bytes(gcs_bucket, f"ob/{name}") == data
    for name, data in payloads.items():
        assert bytes(obstore.get(store, f"ob/{name}").bytes()) == data
    large = payloads["large.bin"]
    ranged = obstore.get_range(store, "ob/large.bin", start=1 << 20, end=(1 << 20) + 4096)
    assert bytes(ranged) == large[1 << 20 : (1 << 20) + 4096]
    head = obstore.head(store, "ob/small.bin")
    assert head["size"] == len(payloads["small.bin"]) and head["version"]

    listed = sorted((m["path"], m["size"]) for batch in obstore.list(store, "ob") for m in batch)
    assert listed == sorted((f"ob/{n}", len(d)) for n, d in payloads.items())
    top = obstore.list_with_delimiter(store)
    assert top["common_prefixes"] == ["ob"] and top["objects"] == []

    obstore.delete(store, "ob/small.bin")
    assert not gcs_server.has_object(gcs_bucket, "ob/small.bin")
