"""The JSON API (``/storage/v1/...``) of the loopback server: buckets, objects, copies, and the
simple stored resources (ACLs, IAM, notifications, HMAC keys, the service account).

Invariants: a request is matched against one table of resource paths; each path names the
methods it answers, so a known path with another method gets 405 with ``Allow``, a method GCS
has and this server does not gets 501 naming it, and an unknown path gets 404 -- never a
silent 200.  The Retry Test API method name is set (and immediate faults applied) before any
side effect.  No authorisation is enforced anywhere.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from . import xmlapi
from .download import serve_media
from .exchange import Exchange
from .faults import Fault
from .resources import service_account
from .state import FaultSource, ServerState
from .store import (
    Bucket,
    ObjectMeta,
    Preconditions,
    StoredObject,
    StoreError,
    int_param,
    merge_patch,
    not_allowed,
    page,
)

__all__ = ["NOT_IMPLEMENTED", "ROUTES", "handle"]

Handler = Callable[[Exchange, ServerState, list[str]], None]

# (pattern over the path after /storage/v1, {HTTP method: (API method name, handler name)})
_SEG = r"([^/]+)"
_NAME = r"(.+?)"


def _route(pattern: str, methods: dict[str, tuple[str, str]]) -> tuple[re.Pattern[str], Any]:
    return re.compile(pattern), methods


ROUTES: list[tuple[re.Pattern[str], dict[str, tuple[str, str]]]] = [
    _route(r"/b/?", {"GET": ("storage.buckets.list", "bucket_list"),
                     "POST": ("storage.buckets.insert", "bucket_insert")}),
    _route(rf"/b/{_SEG}", {"GET": ("storage.buckets.get", "bucket_get"),
                           "PATCH": ("storage.buckets.patch", "bucket_patch"),
                           "PUT": ("storage.buckets.update", "bucket_update"),
                           "DELETE": ("storage.buckets.delete", "bucket_delete")}),
    _route(rf"/b/{_SEG}/lockRetentionPolicy",
           {"POST": ("storage.buckets.lockRetentionPolicy", "bucket_lock")}),
    _route(rf"/b/{_SEG}/iam", {"GET": ("storage.buckets.getIamPolicy", "iam_get"),
                               "PUT": ("storage.buckets.setIamPolicy", "iam_set")}),
    _route(rf"/b/{_SEG}/iam/testPermissions",
           {"GET": ("storage.buckets.testIamPermissions", "iam_test")}),
    _route(rf"/b/{_SEG}/(acl|defaultObjectAcl)/?",
           {"GET": ("{acl}.list", "acl_list"), "POST": ("{acl}.insert", "acl_insert")}),
    _route(rf"/b/{_SEG}/(acl|defaultObjectAcl)/{_SEG}",
           {"GET": ("{acl}.get", "acl_get"), "PATCH": ("{acl}.patch", "acl_patch"),
            "PUT": ("{acl}.update", "acl_update"), "DELETE": ("{acl}.delete", "acl_delete")}),
    _route(rf"/b/{_SEG}/notificationConfigs/?",
           {"GET": ("storage.notifications.list", "notification_list"),
            "POST": ("storage.notifications.insert", "notification_insert")}),
    _route(rf"/b/{_SEG}/notificationConfigs/{_SEG}",
           {"GET": ("storage.notifications.get", "notification_get"),
            "DELETE": ("storage.notifications.delete", "notification_delete")}),
    _route(rf"/b/{_SEG}/o/?", {"GET": ("storage.objects.list", "object_list")}),
    _route(rf"/b/{_SEG}/o/{_NAME}/copyTo/b/{_SEG}/o/{_NAME}",
           {"POST": ("storage.objects.copy", "object_copy")}),
    _route(rf"/b/{_SEG}/o/{_NAME}/rewriteTo/b/{_SEG}/o/{_NAME}",
           {"POST": ("storage.objects.rewrite", "object_rewrite")}),
    _route(rf"/b/{_SEG}/o/{_NAME}/compose", {"POST": ("storage.objects.compose", "compose")}),
    _route(rf"/b/{_SEG}/o/{_SEG}/(acl)/?",
           {"GET": ("{acl}.list", "acl_list"), "POST": ("{acl}.insert", "acl_insert")}),
    _route(rf"/b/{_SEG}/o/{_SEG}/(acl)/{_SEG}",
           {"GET": ("{acl}.get", "acl_get"), "PATCH": ("{acl}.patch", "acl_patch"),
            "PUT": ("{acl}.update", "acl_update"), "DELETE": ("{acl}.delete", "acl_delete")}),
    _route(rf"/b/{_SEG}/o/{_NAME}", {"GET": ("storage.objects.get", "object_get"),
                                     "HEAD": ("storage.objects.get", "object_get"),
                                     "PATCH": ("storage.objects.patch", "object_patch"),
                                     "PUT": ("storage.objects.update", "object_update"),
                                     "DELETE": ("storage.objects.delete", "object_delete")}),
    _route(r"/projects/([^/]+)/serviceAccount",
           {"GET": ("storage.serviceaccount.get", "service_account")}),
    _route(r"/projects/([^/]+)/hmacKeys/?", {"GET": ("storage.hmacKey.list", "hmac_list"),
                                            "POST": ("storage.hmacKey.create", "hmac_create")}),
    _route(rf"/projects/([^/]+)/hmacKeys/{_SEG}",
           {"GET": ("storage.hmacKey.get", "hmac_get"),
            "PUT": ("storage.hmacKey.update", "hmac_update"),
            "DELETE": ("storage.hmacKey.delete", "hmac_delete")}),
]  # fmt: skip

NOT_IMPLEMENTED: list[tuple[re.Pattern[str], str, str]] = [
    (re.compile(rf"/b/{_SEG}/o/watch"), "POST", "storage.objects.watchAll"),
    (re.compile(rf"/b/{_SEG}/o/bulkRestore"), "POST", "storage.objects.bulkRestore"),
    (re.compile(rf"/b/{_SEG}/o/{_NAME}/restore"), "POST", "storage.objects.restore"),
    (re.compile(rf"/b/{_SEG}/o/{_NAME}/moveTo/o/{_NAME}"), "POST", "storage.objects.move"),
    (re.compile(rf"/b/{_SEG}/relocate"), "POST", "storage.buckets.relocate"),
    (re.compile(r"/channels/stop"), "POST", "storage.channels.stop"),
    (re.compile(rf"/b/{_SEG}/anywhereCaches(/.*)?"), "*", "storage.anywhereCaches"),
    (re.compile(rf"/b/{_SEG}/managedFolders(/.*)?"), "*", "storage.managedFolders"),
    (re.compile(rf"/b/{_SEG}/folders(/.*)?"), "*", "storage.folders"),
    (re.compile(rf"/b/{_SEG}/operations(/.*)?"), "*", "storage.buckets.operations"),
    (re.compile(rf"/b/{_SEG}/restore"), "POST", "storage.buckets.restore"),
    (re.compile(rf"/b/{_SEG}/storageLayout"), "GET", "storage.buckets.getStorageLayout"),
]
"""Methods GCS has and this server does not: answered 501 with the method's name."""

_ACL_METHOD = {
    "acl": "storage.bucket_acl",
    "defaultObjectAcl": "storage.default_object_acl",
    "object": "storage.object_acl",
}


def api_methods() -> frozenset[str]:
    """Every JSON API method name this server implements (for the Retry Test API)."""
    names: set[str] = {"storage.objects.insert"}
    for _, methods in ROUTES:
        for api, _handler in methods.values():
            if "{acl}" in api:
                names.update(api.replace("{acl}", prefix) for prefix in _ACL_METHOD.values())
            else:
                names.add(api)
    return frozenset(names)


def handle(ex: Exchange, state: ServerState, faults: FaultSource) -> None:
    """Answer one ``/storage/v1/...`` request."""
    path = ex.raw_path.split("?", 1)[0][len("/storage/v1") :]
    for unsupported, method, name in NOT_IMPLEMENTED:
        if method in ("*", ex.method) and unsupported.fullmatch(path):
            raise StoreError(501, f"{name} is not implemented by this server.", "notImplemented")
    for pattern, methods in ROUTES:
        match = pattern.fullmatch(path)
        if match is None:
            continue
        if ex.method not in methods:
            raise not_allowed(ex.method, path, methods)
        api, handler_name = methods[ex.method]
        groups = [unquote(g) if g is not None else "" for g in match.groups()]
        if "{acl}" in api:
            # Normalised to [bucket, scope kind, object name or "", entity or ""].
            if "/o/" in pattern.pattern:
                groups = [groups[0], "object", groups[1], *groups[3:], ""][:4]
            else:
                groups = [groups[0], groups[1], "", *groups[2:], ""][:4]
            api = api.replace("{acl}", _ACL_METHOD[groups[1]])
        faults.method = api
        if faults.immediate(ex):
            return
        if handler_name == "object_get":
            _object_get(ex, state, groups, faults)
        else:
            _HANDLERS[handler_name](ex, state, groups)
        return
    raise StoreError(404, f"Not Found: {ex.raw_path}", "notFound")


def read_json(ex: Exchange) -> dict[str, Any]:
    """The request body as a JSON object ({} when empty).

    Raises:
        StoreError: 400 when the body is not a JSON object.
    """
    raw = ex.body.read_all(1 << 20)
    try:
        doc = json.loads(raw) if raw.strip() else {}
    except (ValueError, UnicodeDecodeError):
        raise StoreError(400, "Parse Error: the request body is not valid JSON.") from None
    if not isinstance(doc, dict):
        raise StoreError(400, "Invalid request: expected a JSON object.")
    return doc


def _page(ex: Exchange, names: list[str]) -> tuple[list[str], str | None]:
    """One page of sorted ``names`` after ``pageToken``, at most ``maxResults`` long."""
    token = ex.query.get("pageToken", "")
    size = int_param(ex.query, "maxResults") or 1000
    after = [n for n in names if n > token] if token else names
    if len(after) > size:
        return after[:size], after[size - 1]
    return after, None


def _bucket_acl_base(bucket: str, field: str) -> dict[str, Any]:
    kind = "storage#bucketAccessControl" if field == "acl" else "storage#objectAccessControl"
    return {"kind": kind, "bucket": bucket}


def _absorb_bucket_acls(state: ServerState, bucket: str, doc: dict[str, Any]) -> dict[str, Any]:
    """Move ``acl``/``defaultObjectAcl`` of a bucket body into the ACL store; the rest stays."""
    rest = dict(doc)
    for field in ("acl", "defaultObjectAcl"):
        if field in rest:
            state.acls.replace((field, bucket), rest.pop(field), _bucket_acl_base(bucket, field))
    return rest


def _bucket_resource(ex: Exchange, state: ServerState, bucket: Bucket) -> dict[str, Any]:
    doc = bucket.resource()
    if ex.query.get("projection") == "full":
        doc["acl"] = state.acls.list(("acl", bucket.name))
        doc["defaultObjectAcl"] = state.acls.list(("defaultObjectAcl", bucket.name))
    return doc


def _object_resource(ex: Exchange, state: ServerState, obj: StoredObject) -> dict[str, Any]:
    doc = obj.resource(ex.base_url)
    if ex.query.get("projection") == "full":
        doc["acl"] = state.acls.list(_object_scope(obj))
    return doc


def _object_scope(obj: StoredObject) -> tuple[str, ...]:
    return ("object", obj.bucket, obj.name, str(obj.generation))


def _object_acl_base(obj: StoredObject) -> dict[str, Any]:
    return {
        "kind": "storage#objectAccessControl",
        "bucket": obj.bucket,
        "object": obj.name,
        "generation": str(obj.generation),
    }


def _absorb_object_acl(
    state: ServerState, bucket: str, name: str, doc: dict[str, Any]
) -> dict[str, Any]:
    """Move ``acl`` of an object body into the ACL store; the rest stays."""
    rest = dict(doc)
    if "acl" in rest:
        obj = state.store.get(bucket, name)
        state.acls.replace(_object_scope(obj), rest.pop("acl"), _object_acl_base(obj))
    return rest


# -- buckets -------------------------------------------------------------------------------
def _bucket_list(ex: Exchange, state: ServerState, g: list[str]) -> None:
    ex.finish_body()
    project = ex.query.get("project") or None
    listed = state.store.list_buckets(ex.query.get("prefix", ""), project)
    buckets = {b.name: b for b in listed}
    names, token = _page(ex, sorted(buckets))
    doc: dict[str, Any] = {
        "kind": "storage#buckets",
        "items": [buckets[n].resource() for n in names],
    }
    if token:
        doc["nextPageToken"] = token
    ex.reply_json(200, doc)


def _bucket_insert(ex: Exchange, state: ServerState, g: list[str]) -> None:
    doc = read_json(ex)
    name = doc.get("name")
    if not isinstance(name, str) or not name:
        raise StoreError(400, "Required parameter: name", "required")
    project = ex.query.get("project") or None
    bucket = state.store.create_bucket(name, exist_ok=False, fields=doc, project=project)
    _absorb_bucket_acls(state, name, doc)
    ex.reply_json(200, _bucket_resource(ex, state, bucket))


def _bucket_get(ex: Exchange, state: ServerState, g: list[str]) -> None:
    ex.finish_body()
    bucket = state.store.get_bucket(g[0])
    Preconditions.from_query(ex.query).check_metageneration(bucket.metageneration)
    ex.reply_json(200, _bucket_resource(ex, state, bucket))


def _bucket_patch(ex: Exchange, state: ServerState, g: list[str]) -> None:
    state.store.get_bucket(g[0])
    doc = _absorb_bucket_acls(state, g[0], read_json(ex))
    pre = Preconditions.from_query(ex.query)
    bucket = state.store.update_bucket(g[0], pre, lambda b: merge_patch(b.fields, doc, "labels"))
    ex.reply_json(200, _bucket_resource(ex, state, bucket))


def _bucket_update(ex: Exchange, state: ServerState, g: list[str]) -> None:
    state.store.get_bucket(g[0])
    doc = _absorb_bucket_acls(state, g[0], read_json(ex))
    pre = Preconditions.from_query(ex.query)
    bucket = state.store.update_bucket(g[0], pre, lambda b: doc)
    ex.reply_json(200, _bucket_resource(ex, state, bucket))


def _bucket_delete(ex: Exchange, state: ServerState, g: list[str]) -> None:
    ex.finish_body()
    state.store.delete_bucket(g[0], Preconditions.from_query(ex.query))
    for scope in (("acl", g[0]), ("defaultObjectAcl", g[0])):
        state.acls.drop(scope)
    state.iam.drop(g[0])
    state.notifications.drop(g[0])
    ex.reply(204)


def _bucket_lock(ex: Exchange, state: ServerState, g: list[str]) -> None:
    ex.finish_body()
    if int_param(ex.query, "ifMetagenerationMatch") is None:
        raise StoreError(400, "Required parameter: ifMetagenerationMatch", "required")

    def lock(fields: dict[str, Any]) -> dict[str, Any]:
        policy = fields.get("retentionPolicy")
        if not isinstance(policy, dict):
            raise StoreError(400, "The bucket has no retention policy to lock.")
        fields["retentionPolicy"] = {**policy, "isLocked": True}
        return fields

    pre = Preconditions.from_query(ex.query)
    bucket = state.store.update_bucket(g[0], pre, lambda b: lock(dict(b.fields)))
    ex.reply_json(200, bucket.resource())


# -- IAM, ACLs, notifications, HMAC keys ---------------------------------------------------------
def _iam_get(ex: Exchange, state: ServerState, g: list[str]) -> None:
    ex.finish_body()
    state.store.get_bucket(g[0])
    ex.reply_json(200, state.iam.get(g[0]))


def _iam_set(ex: Exchange, state: ServerState, g: list[str]) -> None:
    doc = read_json(ex)
    state.store.get_bucket(g[0])
    ex.reply_json(200, state.iam.set(g[0], doc))


def _iam_test(ex: Exchange, state: ServerState, g: list[str]) -> None:
    ex.finish_body()
    state.store.get_bucket(g[0])
    pairs = parse_qsl(urlsplit(ex.target).query, keep_blank_values=True)
    wanted = [v for k, v in pairs if k == "permissions"]
    ex.reply_json(200, {"kind": "storage#testIamPermissionsResponse", "permissions": wanted})


def _acl_scope(state: ServerState, g: list[str]) -> tuple[tuple[str, ...], dict[str, Any]]:
    """The ACL scope and identifying fields of a bucket, default-object or object ACL."""
    bucket = g[0]
    state.store.get_bucket(bucket)
    if g[1] == "object":
        obj = state.store.get(bucket, g[2])
        return _object_scope(obj), _object_acl_base(obj)
    return (g[1], bucket), _bucket_acl_base(bucket, g[1])


def _acl_list(ex: Exchange, state: ServerState, g: list[str]) -> None:
    ex.finish_body()
    scope, _ = _acl_scope(state, g)
    ex.reply_json(200, {"kind": "storage#objectAccessControls", "items": state.acls.list(scope)})


def _acl_insert(ex: Exchange, state: ServerState, g: list[str]) -> None:
    doc = read_json(ex)
    scope, base = _acl_scope(state, g)
    entity = doc.get("entity")
    if not isinstance(entity, str):
        raise StoreError(400, "Required field: entity", "required")
    ex.reply_json(200, state.acls.put(scope, entity, doc, base))


def _acl_get(ex: Exchange, state: ServerState, g: list[str]) -> None:
    ex.finish_body()
    scope, _ = _acl_scope(state, g)
    ex.reply_json(200, state.acls.get(scope, g[3]))


def _acl_patch(ex: Exchange, state: ServerState, g: list[str]) -> None:
    doc = read_json(ex)
    scope, base = _acl_scope(state, g)
    entity = g[3]
    merged = {**state.acls.get(scope, entity), **doc}
    ex.reply_json(200, state.acls.put(scope, entity, merged, base))


def _acl_update(ex: Exchange, state: ServerState, g: list[str]) -> None:
    doc = read_json(ex)
    scope, base = _acl_scope(state, g)
    entity = g[3]
    state.acls.get(scope, entity)
    ex.reply_json(200, state.acls.put(scope, entity, doc, base))


def _acl_delete(ex: Exchange, state: ServerState, g: list[str]) -> None:
    ex.finish_body()
    scope, _ = _acl_scope(state, g)
    state.acls.delete(scope, g[3])
    ex.reply(204)


def _notification_list(ex: Exchange, state: ServerState, g: list[str]) -> None:
    ex.finish_body()
    state.store.get_bucket(g[0])
    ex.reply_json(200, {"kind": "storage#notifications", "items": state.notifications.list(g[0])})


def _notification_insert(ex: Exchange, state: ServerState, g: list[str]) -> None:
    doc = read_json(ex)
    state.store.get_bucket(g[0])
    ex.reply_json(200, state.notifications.insert(g[0], doc))


def _notification_get(ex: Exchange, state: ServerState, g: list[str]) -> None:
    ex.finish_body()
    state.store.get_bucket(g[0])
    ex.reply_json(200, state.notifications.get(g[0], g[1]))


def _notification_delete(ex: Exchange, state: ServerState, g: list[str]) -> None:
    ex.finish_body()
    state.store.get_bucket(g[0])
    state.notifications.delete(g[0], g[1])
    ex.reply(204)


def _service_account(ex: Exchange, state: ServerState, g: list[str]) -> None:
    ex.finish_body()
    ex.reply_json(200, service_account(g[0]))


def _hmac_list(ex: Exchange, state: ServerState, g: list[str]) -> None:
    ex.finish_body()
    items = state.hmac.list(
        g[0],
        ex.query.get("serviceAccountEmail"),
        ex.query.get("showDeletedKeys", "").lower() == "true",
    )
    ex.reply_json(200, {"kind": "storage#hmacKeysMetadata", "items": items})


def _hmac_create(ex: Exchange, state: ServerState, g: list[str]) -> None:
    ex.finish_body()
    ex.reply_json(200, state.hmac.create(g[0], ex.query.get("serviceAccountEmail", "")))


def _hmac_get(ex: Exchange, state: ServerState, g: list[str]) -> None:
    ex.finish_body()
    ex.reply_json(200, state.hmac.get(g[0], g[1]))


def _hmac_update(ex: Exchange, state: ServerState, g: list[str]) -> None:
    ex.reply_json(200, state.hmac.update(g[0], g[1], read_json(ex)))


def _hmac_delete(ex: Exchange, state: ServerState, g: list[str]) -> None:
    ex.finish_body()
    state.hmac.delete(g[0], g[1])
    ex.reply(204)


# -- objects -------------------------------------------------------------------------------------
def _object_list(ex: Exchange, state: ServerState, g: list[str]) -> None:
    ex.finish_body()
    prefix = ex.query.get("prefix", "")
    listing = page(
        state.store.list(g[0], prefix),
        prefix,
        ex.query.get("delimiter", ""),
        ex.query.get("pageToken", ""),
        int_param(ex.query, "maxResults") or 1000,
    )
    doc: dict[str, Any] = {
        "kind": "storage#objects",
        "items": [obj.resource(ex.base_url) for obj in listing.objects],
    }
    if listing.prefixes:
        doc["prefixes"] = listing.prefixes
    if listing.next_after:
        doc["nextPageToken"] = listing.next_after
    ex.reply_json(200, doc)


def _object_get(ex: Exchange, state: ServerState, g: list[str], faults: FaultSource) -> None:
    bucket, name = g[0], g[1]
    generation = int_param(ex.query, "generation")
    if ex.query.get("alt") == "media":
        obj, f = state.open_object(bucket, name, generation)
        with f:
            Preconditions.from_query(ex.query).check(obj)
            fault: Fault | None = faults.take(lambda x: x.streaming) if faults.active else None
            serve_media(ex, obj, f, fault, state.count_media)
        return
    ex.finish_body()
    obj = state.store.get(bucket, name, generation)
    Preconditions.from_query(ex.query).check(obj)
    ex.reply_json(200, _object_resource(ex, state, obj))


def _object_patch(ex: Exchange, state: ServerState, g: list[str]) -> None:
    doc = _absorb_object_acl(state, g[0], g[1], read_json(ex))
    obj = state.store.update_object(
        g[0],
        g[1],
        int_param(ex.query, "generation"),
        Preconditions.from_query(ex.query),
        lambda current: current.meta.patched(doc),
    )
    ex.reply_json(200, _object_resource(ex, state, obj))


def _object_update(ex: Exchange, state: ServerState, g: list[str]) -> None:
    doc = _absorb_object_acl(state, g[0], g[1], read_json(ex))
    meta = ObjectMeta.from_fields(doc)
    obj = state.store.update_object(
        g[0],
        g[1],
        int_param(ex.query, "generation"),
        Preconditions.from_query(ex.query),
        lambda current: meta,
    )
    ex.reply_json(200, _object_resource(ex, state, obj))


def _object_delete(ex: Exchange, state: ServerState, g: list[str]) -> None:
    ex.finish_body()
    pre = Preconditions.from_query(ex.query)
    state.store.delete(g[0], g[1], pre, int_param(ex.query, "generation"))
    ex.reply(204)


def _compose(ex: Exchange, state: ServerState, g: list[str]) -> None:
    obj = xmlapi.compose(ex, state, g[0], g[1], read_json(ex))
    ex.reply_json(200, obj.resource(ex.base_url))


def _copy_source(ex: Exchange, g: list[str]) -> tuple[str, str, int | None]:
    return g[0], g[1], int_param(ex.query, "sourceGeneration")


def _object_copy(ex: Exchange, state: ServerState, g: list[str]) -> None:
    body = read_json(ex)
    obj = state.rewrites.copy(state, _copy_source(ex, g), (g[2], g[3]), ex.query, body)
    ex.reply_json(200, obj.resource(ex.base_url))


def _object_rewrite(ex: Exchange, state: ServerState, g: list[str]) -> None:
    body = read_json(ex)
    doc = state.rewrites.step(state, _copy_source(ex, g), (g[2], g[3]), ex.query, body, ex.base_url)
    ex.reply_json(200, doc)


_HANDLERS: dict[str, Handler] = {
    "bucket_list": _bucket_list,
    "bucket_insert": _bucket_insert,
    "bucket_get": _bucket_get,
    "bucket_patch": _bucket_patch,
    "bucket_update": _bucket_update,
    "bucket_delete": _bucket_delete,
    "bucket_lock": _bucket_lock,
    "iam_get": _iam_get,
    "iam_set": _iam_set,
    "iam_test": _iam_test,
    "acl_list": _acl_list,
    "acl_insert": _acl_insert,
    "acl_get": _acl_get,
    "acl_patch": _acl_patch,
    "acl_update": _acl_update,
    "acl_delete": _acl_delete,
    "notification_list": _notification_list,
    "notification_insert": _notification_insert,
    "notification_get": _notification_get,
    "notification_delete": _notification_delete,
    "object_list": _object_list,
    "object_copy": _object_copy,
    "object_rewrite": _object_rewrite,
    "compose": _compose,
    "service_account": _service_account,
    "hmac_list": _hmac_list,
    "hmac_create": _hmac_create,
    "hmac_get": _hmac_get,
    "hmac_update": _hmac_update,
    "hmac_delete": _hmac_delete,
    "object_patch": _object_patch,
    "object_update": _object_update,
    "object_delete": _object_delete,
}
