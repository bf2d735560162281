"""Simple stored resources of the loopback server: ACLs, IAM policies, notifications, HMAC keys.

These exist so that google-cloud-storage (and its retry-conformance suite) can run against the
server as written. **No authorisation is enforced**: every resource stores and returns what it
is given, in GCS's JSON shapes, and nothing here affects who may read or write an object.

Invariants: every collection is guarded by one lock; ids are assigned here and never reused;
an HMAC secret is returned by ``create`` only and never stored in a form that is listed.
"""

from __future__ import annotations

import base64
import itertools
import secrets
import threading
import time
from collections.abc import Mapping
from typing import Any

from .store import StoreError, rfc3339

__all__ = ["AclStore", "HmacKeys", "IamPolicies", "Notifications", "service_account"]


def _etag(counter: int) -> str:
    return base64.b64encode(f"etag-{counter}".encode()).decode("ascii")


class AclStore:
    """Access-control entries, keyed by (scope, entity); a scope names a bucket, its default
    object ACL, or one object generation.  No authorisation is enforced."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, ...], dict[str, dict[str, Any]]] = {}
        self._counter = itertools.count(1)

    def list(self, scope: tuple[str, ...]) -> list[dict[str, Any]]:
        """Every entry of ``scope``, in insertion order."""
        with self._lock:
            return [dict(e) for e in self._entries.get(scope, {}).values()]

    def get(self, scope: tuple[str, ...], entity: str) -> dict[str, Any]:
        """One entry, or a 404 StoreError."""
        with self._lock:
            entry = self._entries.get(scope, {}).get(entity)
        if entry is None:
            raise StoreError(
                404,
                (f"ACL entry {entity} not found: list the ACL to see its entities."),
                "notFound",
            )
        return dict(entry)

    def put(
        self, scope: tuple[str, ...], entity: str, doc: Mapping[str, Any], base: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Insert or replace one entry; ``base`` holds the scope's identifying fields.

        Raises:
            StoreError: 400 when ``role`` or ``entity`` is missing.
        """
        role = doc.get("role")
        if not entity or not isinstance(role, str) or not role:
            raise StoreError(400, "Required fields: entity and role.", "required")
        entry = {**doc, **base, "entity": entity, "role": role}
        entry["etag"] = _etag(next(self._counter))
        with self._lock:
            self._entries.setdefault(scope, {})[entity] = entry
        return dict(entry)

    def replace(self, scope: tuple[str, ...], entries: Any, base: Mapping[str, Any]) -> None:
        """Replace every entry of ``scope`` (a resource's ``acl`` field was written).

        Raises:
            StoreError: 400 when ``entries`` is not a list of entries with entity and role.
        """
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise StoreError(400, "Invalid value for acl: expected a list of entries.")
        with self._lock:
            old = self._entries.pop(scope, None)
        try:
            for entry in entries:
                self.put(scope, str(entry.get("entity", "")), entry, base)
        except BaseException:
            with self._lock:
                self._entries[scope] = old or {}
            raise

    def delete(self, scope: tuple[str, ...], entity: str) -> None:
        """Remove one entry, or raise a 404 StoreError."""
        with self._lock:
            if self._entries.get(scope, {}).pop(entity, None) is None:
                raise StoreError(
                    404,
                    (f"ACL entry {entity} not found: list the ACL to see its entities."),
                    "notFound",
                )

    def drop(self, scope: tuple[str, ...]) -> None:
        """Forget a whole scope (its bucket or object is gone)."""
        with self._lock:
            self._entries.pop(scope, None)


class IamPolicies:
    """Bucket IAM policies, stored as given; ``testIamPermissions`` echoes the permissions
    asked for.  No authorisation is enforced."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._policies: dict[str, dict[str, Any]] = {}
        self._counter = itertools.count(1)

    def get(self, bucket: str) -> dict[str, Any]:
        """The bucket's policy (an empty one until set)."""
        with self._lock:
            policy = self._policies.get(bucket)
        if policy is None:
            policy = {"bindings": [], "etag": "CAE=", "version": 1}
        return {"kind": "storage#policy", "resourceId": f"projects/_/buckets/{bucket}", **policy}

    def set(self, bucket: str, doc: Mapping[str, Any]) -> dict[str, Any]:
        """Replace the bucket's policy.

        Raises:
            StoreError: 400 when ``bindings`` is not a list; 412 when ``etag`` is stale.
        """
        bindings = doc.get("bindings", [])
        if not isinstance(bindings, list):
            raise StoreError(400, "Invalid value for bindings: expected a list.")
        with self._lock:
            current = self._policies.get(bucket)
            etag = doc.get("etag")
            if etag and current is not None and etag != current["etag"]:
                raise StoreError(412, "The policy's etag does not match.", "conditionNotMet")
            self._policies[bucket] = {
                "bindings": bindings,
                "etag": _etag(next(self._counter)),
                "version": int(doc.get("version") or 1),
            }
        return self.get(bucket)

    def drop(self, bucket: str) -> None:
        """Forget a deleted bucket's policy."""
        with self._lock:
            self._policies.pop(bucket, None)


class Notifications:
    """Pub/Sub notification configs per bucket, stored as given (nothing is ever published)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._configs: dict[str, dict[str, dict[str, Any]]] = {}
        self._ids = itertools.count(1)

    def insert(self, bucket: str, doc: Mapping[str, Any]) -> dict[str, Any]:
        """Store a new config and give it an id.

        Raises:
            StoreError: 400 when ``topic`` is missing.
        """
        topic = doc.get("topic")
        if not isinstance(topic, str) or not topic:
            raise StoreError(400, "Required field: topic", "required")
        config_id = str(next(self._ids))
        config = {
            "payload_format": "JSON_API_V1",
            **doc,
            "kind": "storage#notification",
            "id": config_id,
            "selfLink": f"/storage/v1/b/{bucket}/notificationConfigs/{config_id}",
            "etag": config_id,
        }
        with self._lock:
            self._configs.setdefault(bucket, {})[config_id] = config
        return dict(config)

    def list(self, bucket: str) -> list[dict[str, Any]]:
        """The bucket's configs, in id order."""
        with self._lock:
            return [dict(c) for c in self._configs.get(bucket, {}).values()]

    def get(self, bucket: str, config_id: str) -> dict[str, Any]:
        """One config, or a 404 StoreError."""
        with self._lock:
            config = self._configs.get(bucket, {}).get(config_id)
        if config is None:
            raise StoreError(
                404,
                (f"Notification config {config_id} not found: list the bucket's configs."),
                "notFound",
            )
        return dict(config)

    def delete(self, bucket: str, config_id: str) -> None:
        """Remove one config, or raise a 404 StoreError."""
        with self._lock:
            if self._configs.get(bucket, {}).pop(config_id, None) is None:
                raise StoreError(
                    404,
                    (f"Notification config {config_id} not found: list the bucket's configs."),
                    "notFound",
                )

    def drop(self, bucket: str) -> None:
        """Forget a deleted bucket's configs."""
        with self._lock:
            self._configs.pop(bucket, None)


class HmacKeys:
    """HMAC keys per project; the secret is returned once, by ``create``.  No authorisation
    is enforced and no request is ever checked against a key."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: dict[str, dict[str, Any]] = {}
        self._counter = itertools.count(1)

    def create(self, project: str, service_account: str) -> dict[str, Any]:
        """A new ACTIVE key: ``{"metadata": ..., "secret": ...}``.

        Raises:
            StoreError: 400 when no service account email is given.
        """
        if not service_account:
            raise StoreError(400, "Required parameter: serviceAccountEmail", "required")
        access_id = "GOOG1E" + secrets.token_hex(16).upper()
        stamp = rfc3339(time.time())
        meta = {
            "kind": "storage#hmacKeyMetadata",
            "id": f"{project}/{access_id}",
            "accessId": access_id,
            "projectId": project,
            "serviceAccountEmail": service_account,
            "state": "ACTIVE",
            "timeCreated": stamp,
            "updated": stamp,
            "etag": _etag(next(self._counter)),
        }
        with self._lock:
            self._keys[access_id] = meta
        secret = base64.b64encode(secrets.token_bytes(30)).decode("ascii")
        return {"kind": "storage#hmacKey", "metadata": dict(meta), "secret": secret}

    def get(self, project: str, access_id: str) -> dict[str, Any]:
        """A key's metadata, or a 404 StoreError."""
        with self._lock:
            meta = self._keys.get(access_id)
        if meta is None or meta["projectId"] != project:
            raise StoreError(
                404, (f"HMAC key {access_id} not found in project {project}."), "notFound"
            )
        return dict(meta)

    def list(
        self, project: str, service_account: str | None, show_deleted: bool
    ) -> list[dict[str, Any]]:
        """The project's keys, optionally of one service account."""
        with self._lock:
            keys = [dict(m) for m in self._keys.values() if m["projectId"] == project]
        return [
            k
            for k in keys
            if (service_account is None or k["serviceAccountEmail"] == service_account)
            and (show_deleted or k["state"] != "DELETED")
        ]

    def update(self, project: str, access_id: str, doc: Mapping[str, Any]) -> dict[str, Any]:
        """Change a key's state (ACTIVE or INACTIVE).

        Raises:
            StoreError: 404 for an unknown or deleted key (a deleted key is gone for good);
                400 for another state; 412 for a stale ``etag``.
        """
        state = doc.get("state")
        if state not in ("ACTIVE", "INACTIVE"):
            raise StoreError(400, "Invalid value for state: expected ACTIVE or INACTIVE.")
        self.get(project, access_id)
        with self._lock:
            meta = self._keys[access_id]
            if meta["state"] == "DELETED":
                raise StoreError(
                    404, f"HMAC key {access_id} was deleted: create a new key.", "notFound"
                )
            if doc.get("etag") and doc["etag"] != meta["etag"]:
                raise StoreError(412, "The key's etag does not match.", "conditionNotMet")
            meta.update(state=state, updated=rfc3339(time.time()), etag=_etag(next(self._counter)))
            return dict(meta)

    def delete(self, project: str, access_id: str) -> None:
        """Delete an INACTIVE key (GCS refuses to delete an active one).

        Raises:
            StoreError: 404 for an unknown or already deleted key; 400 for an ACTIVE one.
        """
        self.get(project, access_id)
        with self._lock:
            meta = self._keys[access_id]
            if meta["state"] == "DELETED":
                raise StoreError(
                    404, f"HMAC key {access_id} was deleted: create a new key.", "notFound"
                )
            if meta["state"] == "ACTIVE":
                raise StoreError(
                    400, "Cannot delete an ACTIVE HMAC key: set its state to INACTIVE first."
                )
            meta["state"] = "DELETED"


def service_account(project: str) -> dict[str, Any]:
    """The project's Cloud Storage service agent, in ``serviceAccount.get``'s shape."""
    return {
        "kind": "storage#serviceAccount",
        "email_address": f"service-{project}@gs-project-accounts.iam.gserviceaccount.com",
    }
