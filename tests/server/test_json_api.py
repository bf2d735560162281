"""The JSON API a migration touches, over raw HTTP: buckets, object metadata, copies, rewrites,
the simple stored resources, and never a silent 200 for what is not implemented."""

from __future__ import annotations

import base64
import hashlib
import itertools
import os
from typing import Any

import google_crc32c
import pytest
import requests

from resumable_media.testing import GCSServer
from resumable_media.testing.faults import METHODS
from resumable_media.testing.jsonapi import ROUTES, api_methods

MiB = 1 << 20
_names = itertools.count(1)


def _api(server: GCSServer) -> str:
    return f"{server.endpoint}/storage/v1"


def _new_bucket(server: GCSServer, **fields: Any) -> str:
    name = f"json-api-{next(_names)}"
    made = requests.post(f"{_api(server)}/b?project=p", json={"name": name, **fields})
    assert made.status_code == 200, made.text
    return name


# -- buckets ---------------------------------------------------------------------------------
def test_bucket_delete_refuses_a_non_empty_bucket_then_deletes_and_is_gone(
    gcs_server: GCSServer,
) -> None:
    bucket = _new_bucket(gcs_server)
    gcs_server.put_object(bucket, "x", b"1")
    url = f"{_api(gcs_server)}/b/{bucket}"
    refused = requests.delete(url)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == 409
    assert requests.get(url).status_code == 200
    assert requests.delete(f"{url}/o/x").status_code == 204
    deleted = requests.delete(url)
    assert deleted.status_code == 204 and deleted.content == b""
    assert requests.get(url).status_code == 404
    assert requests.delete(url).status_code == 404


def test_bucket_patch_merges_labels_and_update_replaces(gcs_server: GCSServer) -> None:
    bucket = _new_bucket(gcs_server, labels={"a": "1", "b": "2"}, storageClass="NEARLINE")
    url = f"{_api(gcs_server)}/b/{bucket}"
    first = requests.get(url).json()
    assert first["labels"] == {"a": "1", "b": "2"} and first["storageClass"] == "NEARLINE"
    assert first["metageneration"] == "1"
    patched = requests.patch(
        url, json={"labels": {"b": None, "c": "3"}, "versioning": {"enabled": True}}
    )
    assert patched.status_code == 200
    doc = patched.json()
    assert doc["labels"] == {"a": "1", "c": "3"}
    assert doc["versioning"] == {"enabled": True} and doc["metageneration"] == "2"
    assert doc["storageClass"] == "NEARLINE"
    replaced = requests.put(url, json={"name": bucket, "labels": {"only": "this"}}).json()
    assert replaced["labels"] == {"only": "this"} and "versioning" not in replaced
    assert replaced["metageneration"] == "3" and replaced["storageClass"] == "STANDARD"
    assert requests.get(url).json()["labels"] == {"only": "this"}


def test_bucket_metageneration_preconditions(gcs_server: GCSServer) -> None:
    bucket = _new_bucket(gcs_server)
    url = f"{_api(gcs_server)}/b/{bucket}"
    stale = requests.patch(url, params={"ifMetagenerationMatch": 7}, json={"labels": {"x": "y"}})
    assert stale.status_code == 412
    assert "labels" not in requests.get(url).json()
    ok = requests.patch(url, params={"ifMetagenerationMatch": 1}, json={"labels": {"x": "y"}})
    assert ok.status_code == 200
    assert requests.get(url, params={"ifMetagenerationNotMatch": 2}).status_code == 412
    assert requests.delete(url, params={"ifMetagenerationMatch": 1}).status_code == 412
    assert requests.delete(url, params={"ifMetagenerationMatch": 2}).status_code == 204


def test_bucket_list_by_prefix_with_pages(gcs_server: GCSServer) -> None:
    stem = f"listing-{next(_names)}-"
    for i in range(5):
        assert requests.post(f"{_api(gcs_server)}/b", json={"name": f"{stem}{i}"}).ok
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        params: dict[str, Any] = {"project": "p", "prefix": stem, "maxResults": 2}
        if token:
            params["pageToken"] = token
        page = requests.get(f"{_api(gcs_server)}/b", params=params).json()
        assert page["kind"] == "storage#buckets"
        seen += [b["name"] for b in page["items"]]
        pages += 1
        token = page.get("nextPageToken")
        if not token:
            break
    assert seen == [f"{stem}{i}" for i in range(5)] and pages == 3


def test_bucket_list_by_project(gcs_server: GCSServer) -> None:
    stem = f"projects-{next(_names)}-"
    for project in ("alpha", "beta"):
        made = requests.post(
            f"{_api(gcs_server)}/b?project={project}", json={"name": stem + project}
        )
        assert made.status_code == 200
    gcs_server.create_bucket(stem + "helper")  # made without a project: in every listing

    def listed(project: str) -> list[str]:
        params = {"project": project, "prefix": stem}
        return [
            b["name"] for b in requests.get(f"{_api(gcs_server)}/b", params=params).json()["items"]
        ]

    assert listed("alpha") == [stem + "alpha", stem + "helper"]
    assert listed("beta") == [stem + "beta", stem + "helper"]
    assert listed("gamma") == [stem + "helper"]


def test_retention_policy_lock(gcs_server: GCSServer) -> None:
    bucket = _new_bucket(gcs_server)
    url = f"{_api(gcs_server)}/b/{bucket}"
    assert requests.post(f"{url}/lockRetentionPolicy?ifMetagenerationMatch=1").status_code == 400
    requests.patch(url, json={"retentionPolicy": {"retentionPeriod": "60"}})
    assert requests.post(f"{url}/lockRetentionPolicy").status_code == 400  # metageneration needed
    assert requests.post(f"{url}/lockRetentionPolicy?ifMetagenerationMatch=1").status_code == 412
    locked = requests.post(f"{url}/lockRetentionPolicy?ifMetagenerationMatch=2")
    assert locked.status_code == 200
    assert locked.json()["retentionPolicy"] == {"retentionPeriod": "60", "isLocked": True}


# -- object metadata -------------------------------------------------------------------------
def test_object_patch_merges_and_update_replaces_metadata(
    gcs_server: GCSServer, gcs_bucket: str
) -> None:
    gcs_server.put_object(
        gcs_bucket, "m", b"data", content_type="text/plain", metadata={"a": "1", "b": "2"}
    )
    url = f"{_api(gcs_server)}/b/{gcs_bucket}/o/m"
    before = requests.get(url).json()
    patched = requests.patch(
        url, json={"metadata": {"b": None, "c": "3"}, "cacheControl": "no-store"}
    ).json()
    assert patched["metadata"] == {"a": "1", "c": "3"} and patched["cacheControl"] == "no-store"
    assert patched["contentType"] == "text/plain"
    assert patched["generation"] == before["generation"]
    assert int(patched["metageneration"]) == int(before["metageneration"]) + 1
    replaced = requests.put(url, json={"metadata": {"z": "26"}}).json()
    assert replaced["metadata"] == {"z": "26"}
    assert "cacheControl" not in replaced
    assert replaced["contentType"] == "application/octet-stream"
    assert replaced["generation"] == before["generation"]
    assert int(replaced["metageneration"]) == int(before["metageneration"]) + 2
    media = requests.get(url, params={"alt": "media"})
    assert media.content == b"data" and media.headers["x-goog-meta-z"] == "26"


def test_object_patch_preconditions_and_missing_object(
    gcs_server: GCSServer, gcs_bucket: str
) -> None:
    gcs_server.put_object(gcs_bucket, "p", b"x")
    url = f"{_api(gcs_server)}/b/{gcs_bucket}/o/p"
    doc = requests.get(url).json()
    gen, meta = doc["generation"], doc["metageneration"]
    body = {"metadata": {"k": "v"}}
    assert requests.patch(url, params={"ifGenerationMatch": 1}, json=body).status_code == 412
    assert requests.patch(url, params={"ifGenerationNotMatch": gen}, json=body).status_code == 412
    assert requests.patch(url, params={"ifMetagenerationMatch": 9}, json=body).status_code == 412
    assert (
        requests.patch(url, params={"ifMetagenerationNotMatch": meta}, json=body).status_code == 412
    )
    assert "metadata" not in requests.get(url).json()
    good = requests.patch(url, params={"ifGenerationMatch": gen, "ifMetagenerationMatch": meta},
                          json=body)  # fmt: skip
    assert good.status_code == 200 and good.json()["metadata"] == {"k": "v"}
    assert requests.patch(f"{url}-missing", json=body).status_code == 404
    assert requests.put(f"{url}?generation=1", json=body).status_code == 404


def test_delete_with_generation(gcs_server: GCSServer, gcs_bucket: str) -> None:
    gcs_server.put_object(gcs_bucket, "d", b"x")
    url = f"{_api(gcs_server)}/b/{gcs_bucket}/o/d"
    gen = requests.get(url).json()["generation"]
    assert requests.delete(url, params={"generation": int(gen) + 1}).status_code == 404
    assert requests.delete(url, params={"generation": gen}).status_code == 204
    assert requests.get(url).status_code == 404


# -- copies ----------------------------------------------------------------------------------
def _digests(data: bytes) -> tuple[str, str]:
    crc = base64.b64encode(google_crc32c.value(data).to_bytes(4, "big")).decode()
    return crc, base64.b64encode(hashlib.md5(data).digest()).decode()


def test_copy_to_keeps_bytes_hashes_and_metadata(gcs_server: GCSServer, gcs_bucket: str) -> None:
    other = _new_bucket(gcs_server)
    data = os.urandom(3 * MiB + 5)
    gcs_server.put_object(gcs_bucket, "src", data, content_type="image/png", metadata={"k": "v"})
    url = f"{_api(gcs_server)}/b/{gcs_bucket}/o/src/copyTo/b/{other}/o/dst%2Fcopy"
    copied = requests.post(url)
    assert copied.status_code == 200, copied.text
    doc = copied.json()
    assert doc["name"] == "dst/copy" and doc["bucket"] == other
    assert (doc["crc32c"], doc["md5Hash"]) == _digests(data)
    assert doc["contentType"] == "image/png" and doc["metadata"] == {"k": "v"}
    assert gcs_server.object_bytes(other, "dst/copy") == data
    override = requests.post(url, json={"contentType": "text/plain"}).json()
    assert override["contentType"] == "text/plain" and "metadata" not in override
    missing = requests.post(f"{_api(gcs_server)}/b/{gcs_bucket}/o/nope/copyTo/b/{other}/o/x")
    assert missing.status_code == 404
    to_no_bucket = requests.post(f"{_api(gcs_server)}/b/{gcs_bucket}/o/src/copyTo/b/none/o/x")
    assert to_no_bucket.status_code == 404


def test_rewrite_in_steps_with_a_token(gcs_server: GCSServer, gcs_bucket: str) -> None:
    other = _new_bucket(gcs_server)
    data = os.urandom(5 * MiB + 123)
    gcs_server.put_object(gcs_bucket, "big", data, metadata={"keep": "me"})
    url = f"{_api(gcs_server)}/b/{gcs_bucket}/o/big/rewriteTo/b/{other}/o/big2"
    params: dict[str, Any] = {"maxBytesRewrittenPerCall": 2 * MiB}
    progress = []
    while True:
        step = requests.post(url, params=params)
        assert step.status_code == 200, step.text
        doc = step.json()
        assert doc["kind"] == "storage#rewriteResponse" and doc["objectSize"] == str(len(data))
        progress.append(int(doc["totalBytesRewritten"]))
        if doc["done"]:
            break
        assert not gcs_server.has_object(other, "big2")  # nothing visible before the end
        params["rewriteToken"] = doc["rewriteToken"]
    assert progress == [2 * MiB, 4 * MiB, len(data)]
    assert doc["resource"]["crc32c"] == _digests(data)[0]
    assert doc["resource"]["metadata"] == {"keep": "me"}
    assert gcs_server.object_bytes(other, "big2") == data


def test_rewrite_pins_the_source_generation_and_checks_preconditions(
    gcs_server: GCSServer, gcs_bucket: str
) -> None:
    old, new = os.urandom(3 * MiB), os.urandom(3 * MiB)
    gcs_server.put_object(gcs_bucket, "s", old)
    api = _api(gcs_server)
    first_gen = requests.get(f"{api}/b/{gcs_bucket}/o/s").json()["generation"]
    url = f"{api}/b/{gcs_bucket}/o/s/rewriteTo/b/{gcs_bucket}/o/t"
    step = requests.post(url, params={"maxBytesRewrittenPerCall": MiB}).json()
    gcs_server.put_object(gcs_bucket, "s", new)  # overwritten mid-rewrite
    params = {"maxBytesRewrittenPerCall": 4 * MiB, "rewriteToken": step["rewriteToken"]}
    done = requests.post(url, params=params).json()
    assert done["done"] and gcs_server.object_bytes(gcs_bucket, "t") == old
    # sourceGeneration of a generation that is gone, destination preconditions, bad limits.
    gone = requests.post(url, params={"sourceGeneration": first_gen})
    assert gone.status_code == 404
    exists = requests.post(url, params={"ifGenerationMatch": 0})
    assert exists.status_code == 412
    assert requests.post(url, params={"ifSourceGenerationMatch": 1}).status_code == 412
    assert requests.post(url, params={"maxBytesRewrittenPerCall": 1000}).status_code == 400
    assert requests.post(url, params={"rewriteToken": "forged"}).status_code == 404
    assert gcs_server.object_bytes(gcs_bucket, "t") == old


def test_rewrite_metadata_override_from_the_body(gcs_server: GCSServer, gcs_bucket: str) -> None:
    gcs_server.put_object(gcs_bucket, "o", b"abc", metadata={"old": "1"})
    url = f"{_api(gcs_server)}/b/{gcs_bucket}/o/o/rewriteTo/b/{gcs_bucket}/o/o2"
    doc = requests.post(url, json={"metadata": {"new": "2"}, "contentType": "a/b"}).json()
    assert doc["done"] and doc["resource"]["metadata"] == {"new": "2"}
    assert doc["resource"]["contentType"] == "a/b"


# -- stored resources ------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["acl", "defaultObjectAcl", "object"])
def test_acl_entries_round_trip(gcs_server: GCSServer, gcs_bucket: str, kind: str) -> None:
    base = f"{_api(gcs_server)}/b/{gcs_bucket}"
    if kind == "object":
        gcs_server.put_object(gcs_bucket, "with/acl", b"x")
        base, kind = f"{base}/o/with%2Facl", "acl"
    url = f"{base}/{kind}"
    assert requests.get(url).json()["items"] == []
    made = requests.post(url, json={"entity": "user-a@example.com", "role": "READER"})
    assert made.status_code == 200 and made.json()["role"] == "READER"
    assert requests.post(url, json={"entity": "x"}).status_code == 400
    entry = f"{url}/user-a@example.com"
    assert requests.get(entry).json()["entity"] == "user-a@example.com"
    assert requests.patch(entry, json={"role": "OWNER"}).json()["role"] == "OWNER"
    assert requests.put(entry, json={"role": "WRITER"}).json()["role"] == "WRITER"
    assert [e["role"] for e in requests.get(url).json()["items"]] == ["WRITER"]
    assert requests.delete(entry).status_code == 204
    assert requests.get(entry).status_code == 404
    assert requests.delete(entry).status_code == 404


def test_iam_policy_round_trip(gcs_server: GCSServer, gcs_bucket: str) -> None:
    url = f"{_api(gcs_server)}/b/{gcs_bucket}/iam"
    empty = requests.get(url).json()
    assert empty["kind"] == "storage#policy" and empty["bindings"] == []
    bindings = [{"role": "roles/storage.objectViewer", "members": ["allUsers"]}]
    stored = requests.put(url, json={"bindings": bindings, "etag": empty["etag"]}).json()
    assert stored["bindings"] == bindings and stored["etag"] != empty["etag"]
    stale = requests.put(url, json={"bindings": [], "etag": empty["etag"]})
    assert stale.status_code == 412
    assert requests.get(url).json()["bindings"] == bindings
    perms = ["storage.objects.get", "storage.buckets.delete"]
    tested = requests.get(f"{url}/testPermissions", params={"permissions": perms}).json()
    assert tested["permissions"] == perms
    assert requests.get(f"{_api(gcs_server)}/b/no-such-bucket/iam").status_code == 404


def test_notification_configs(gcs_server: GCSServer, gcs_bucket: str) -> None:
    url = f"{_api(gcs_server)}/b/{gcs_bucket}/notificationConfigs"
    assert requests.post(url, json={}).status_code == 400
    made = requests.post(url, json={"topic": "//pubsub.googleapis.com/projects/p/topics/t"})
    assert made.status_code == 200
    config = made.json()
    assert config["kind"] == "storage#notification" and config["payload_format"]
    assert [c["id"] for c in requests.get(url).json()["items"]] == [config["id"]]
    assert requests.get(f"{url}/{config['id']}").json()["topic"].endswith("/topics/t")
    assert requests.delete(f"{url}/{config['id']}").status_code == 204
    assert requests.get(f"{url}/{config['id']}").status_code == 404


def test_hmac_keys_secret_once_and_lifecycle(gcs_server: GCSServer) -> None:
    url = f"{_api(gcs_server)}/projects/proj/hmacKeys"
    assert requests.post(url).status_code == 400
    made = requests.post(url, params={"serviceAccountEmail": "sa@proj.iam"}).json()
    assert made["kind"] == "storage#hmacKey" and made["secret"]
    access_id = made["metadata"]["accessId"]
    key = f"{url}/{access_id}"
    got = requests.get(key).json()
    assert got["state"] == "ACTIVE" and "secret" not in got
    assert access_id in [k["accessId"] for k in requests.get(url).json()["items"]]
    assert all("secret" not in k for k in requests.get(url).json()["items"])
    assert requests.delete(key).status_code == 400  # active keys cannot be deleted
    assert requests.put(key, json={"state": "INACTIVE"}).json()["state"] == "INACTIVE"
    assert requests.delete(key).status_code == 204
    assert access_id not in [k["accessId"] for k in requests.get(url).json()["items"]]
    # A deleted key is gone for good: updating or deleting it again is 404 (clients' cleanup
    # code relies on NotFound there).
    assert requests.put(key, json={"state": "INACTIVE"}).status_code == 404
    assert requests.delete(key).status_code == 404
    assert requests.get(f"{url}/GOOG1ENOPE").status_code == 404


def test_service_account(gcs_server: GCSServer) -> None:
    doc = requests.get(f"{_api(gcs_server)}/projects/proj/serviceAccount").json()
    assert doc["kind"] == "storage#serviceAccount" and "proj" in doc["email_address"]


# -- never a silent 200 ----------------------------------------------------------------------
def test_unknown_paths_are_404_and_unknown_methods_405_with_allow(
    gcs_server: GCSServer, gcs_bucket: str
) -> None:
    api = _api(gcs_server)
    gcs_server.put_object(gcs_bucket, "o", b"x")
    assert requests.get(f"{api}/b/{gcs_bucket}/nonsense").status_code == 404
    assert requests.get(f"{api}/nonsense").status_code == 404
    wrong = requests.post(f"{api}/b/{gcs_bucket}")
    assert wrong.status_code == 405
    assert set(wrong.headers["Allow"].split(", ")) == {"GET", "PATCH", "PUT", "DELETE"}
    assert wrong.json()["error"]["code"] == 405
    watch = requests.post(f"{api}/b/{gcs_bucket}/o/watch")
    assert (
        watch.status_code == 501 and "storage.objects.watchAll" in watch.json()["error"]["message"]
    )
    for path, method in (
        (f"/b/{gcs_bucket}/o/o/moveTo/o/p", "storage.objects.move"),
        (f"/b/{gcs_bucket}/relocate", "storage.buckets.relocate"),
    ):
        answer = requests.post(api + path)
        assert answer.status_code == 501 and method in answer.json()["error"]["message"]
    assert gcs_server.has_object(gcs_bucket, "o") and not gcs_server.has_object(gcs_bucket, "p")


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/", "GET, HEAD"),
        ("POST", "/download/storage/v1/b/{b}/o/o?alt=media", "GET, HEAD"),
        ("GET", "/upload/storage/v1/b/{b}/o?uploadType=media&name=x", "DELETE, POST, PUT"),
        ("PATCH", "/upload/storage/v1/b/{b}/o?uploadType=media&name=x", "DELETE, POST, PUT"),
        ("PUT", "/retry_tests", "GET"),
        ("GET", "/retry_test", "POST"),
        ("PUT", "/retry_test/abc", "DELETE, GET"),
        ("POST", "/{b}", "GET, HEAD"),
        ("PATCH", "/{b}/o", "DELETE, GET, HEAD, POST, PUT"),
    ],
)
def test_every_known_path_answers_405_with_allow_outside_the_json_api(
    gcs_server: GCSServer, gcs_bucket: str, method: str, path: str, allow: str
) -> None:
    gcs_server.put_object(gcs_bucket, "o", b"x")
    answer = requests.request(method, gcs_server.endpoint + path.format(b=gcs_bucket))
    assert answer.status_code == 405, answer.text
    assert answer.headers["Allow"] == allow
    assert method in answer.text and allow.split(", ")[0] in answer.text
    assert not gcs_server.has_object(gcs_bucket, "x")


def test_method_sweep_never_answers_200_for_an_unlisted_method(
    gcs_server: GCSServer, gcs_bucket: str
) -> None:
    gcs_server.put_object(gcs_bucket, "o", b"x")
    api = _api(gcs_server)
    samples = {
        r"/b/?": "/b",
        r"/b/([^/]+)": f"/b/{gcs_bucket}",
        r"/b/([^/]+)/o/?": f"/b/{gcs_bucket}/o",
        r"/b/([^/]+)/o/(.+?)": f"/b/{gcs_bucket}/o/o",
        r"/b/([^/]+)/iam": f"/b/{gcs_bucket}/iam",
        r"/projects/([^/]+)/serviceAccount": "/projects/p/serviceAccount",
    }
    checked = 0
    for pattern, methods in ROUTES:
        if pattern.pattern not in samples:
            continue
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            if method in methods:
                continue
            answer = requests.request(method, f"{api}{samples[pattern.pattern]}")
            assert answer.status_code == 405, (method, pattern.pattern, answer.status_code)
            checked += 1
    assert checked >= 12


def test_retry_test_api_knows_every_implemented_method(
    gcs_server: GCSServer, gcs_bucket: str
) -> None:
    assert api_methods() == METHODS
    test_id = gcs_server.create_retry_test({"storage.objects.rewrite": ["return-503"]})
    gcs_server.put_object(gcs_bucket, "r", b"x")
    url = f"{_api(gcs_server)}/b/{gcs_bucket}/o/r/rewriteTo/b/{gcs_bucket}/o/r2"
    headers = {"x-retry-test-id": test_id}
    assert requests.post(url, headers=headers).status_code == 503
    assert not gcs_server.has_object(gcs_bucket, "r2")
    assert requests.post(url, headers=headers).json()["done"] is True
    unknown = requests.post(
        f"{gcs_server.endpoint}/retry_test",
        json={"instructions": {"storage.objects.teleport": ["return-503"]}},
    )
    assert unknown.status_code == 400


# One request per Retry Test API method name: (HTTP method, path under the endpoint).
_B, _O = "/storage/v1/b/rt-bucket", "/storage/v1/b/rt-bucket/o/rt-object"
_REQUEST_OF_METHOD: dict[str, tuple[str, str]] = {
    **{
        f"storage.{kind}.{verb}": (http, f"{base}{tail}")
        for kind, base in (
            ("bucket_acl", f"{_B}/acl"),
            ("default_object_acl", f"{_B}/defaultObjectAcl"),
            ("object_acl", f"{_O}/acl"),
        )
        for verb, http, tail in (
            ("delete", "DELETE", "/user-x"),
            ("get", "GET", "/user-x"),
            ("insert", "POST", ""),
            ("list", "GET", ""),
            ("patch", "PATCH", "/user-x"),
            ("update", "PUT", "/user-x"),
        )
    },
    "storage.buckets.delete": ("DELETE", _B),
    "storage.buckets.get": ("GET", _B),
    "storage.buckets.getIamPolicy": ("GET", f"{_B}/iam"),
    "storage.buckets.insert": ("POST", "/storage/v1/b?project=p"),
    "storage.buckets.list": ("GET", "/storage/v1/b?project=p"),
    "storage.buckets.lockRetentionPolicy": ("POST", f"{_B}/lockRetentionPolicy"),
    "storage.buckets.patch": ("PATCH", _B),
    "storage.buckets.setIamPolicy": ("PUT", f"{_B}/iam"),
    "storage.buckets.testIamPermissions": ("GET", f"{_B}/iam/testPermissions?permissions=x"),
    "storage.buckets.update": ("PUT", _B),
    "storage.hmacKey.create": ("POST", "/storage/v1/projects/p/hmacKeys"),
    "storage.hmacKey.delete": ("DELETE", "/storage/v1/projects/p/hmacKeys/GOOG1EX"),
    "storage.hmacKey.get": ("GET", "/storage/v1/projects/p/hmacKeys/GOOG1EX"),
    "storage.hmacKey.list": ("GET", "/storage/v1/projects/p/hmacKeys"),
    "storage.hmacKey.update": ("PUT", "/storage/v1/projects/p/hmacKeys/GOOG1EX"),
    "storage.notifications.delete": ("DELETE", f"{_B}/notificationConfigs/1"),
    "storage.notifications.get": ("GET", f"{_B}/notificationConfigs/1"),
    "storage.notifications.insert": ("POST", f"{_B}/notificationConfigs"),
    "storage.notifications.list": ("GET", f"{_B}/notificationConfigs"),
    "storage.objects.compose": ("POST", f"{_O}/compose"),
    "storage.objects.copy": ("POST", f"{_O}/copyTo/b/rt-bucket/o/other"),
    "storage.objects.delete": ("DELETE", _O),
    "storage.objects.get": ("GET", _O),
    "storage.objects.insert": (
        "POST",
        "/upload/storage/v1/b/rt-bucket/o?uploadType=media&name=rt-object",
    ),
    "storage.objects.list": ("GET", f"{_B}/o"),
    "storage.objects.patch": ("PATCH", _O),
    "storage.objects.rewrite": ("POST", f"{_O}/rewriteTo/b/rt-bucket/o/other"),
    "storage.objects.update": ("PUT", _O),
    "storage.serviceaccount.get": ("GET", "/storage/v1/projects/p/serviceAccount"),
}


def test_every_retry_test_method_has_a_request_below() -> None:
    assert set(_REQUEST_OF_METHOD) == METHODS


@pytest.mark.parametrize("api_method", sorted(_REQUEST_OF_METHOD))
def test_retry_test_fault_reaches_every_method(gcs_server: GCSServer, api_method: str) -> None:
    http, path = _REQUEST_OF_METHOD[api_method]
    test_id = gcs_server.create_retry_test({api_method: ["return-503"]})
    answer = requests.request(
        http, gcs_server.endpoint + path, headers={"x-retry-test-id": test_id}, data=b""
    )
    assert answer.status_code == 503, (api_method, answer.status_code, answer.text[:200])
    assert gcs_server.retry_test(test_id)["completed"] is True
    assert not gcs_server.has_object("rt-bucket", "rt-object")


def test_object_listing_pages_never_repeat_a_common_prefix(
    gcs_server: GCSServer, gcs_bucket: str
) -> None:
    for name in ("a/1", "a/2", "a/3", "b", "c/1"):
        gcs_server.put_object(gcs_bucket, name, b"x")
    url = f"{_api(gcs_server)}/b/{gcs_bucket}/o"
    items: list[str] = []
    prefixes: list[str] = []
    params: dict[str, Any] = {"delimiter": "/", "maxResults": 1}
    for _ in range(10):
        page = requests.get(url, params=params).json()
        items += [o["name"] for o in page["items"]]
        prefixes += page.get("prefixes", [])
        if "nextPageToken" not in page:
            break
        params["pageToken"] = page["nextPageToken"]
    assert items == ["b"] and prefixes == ["a/", "c/"]
