"""Picklable transport factories for the accelerator's worker processes.

Invariants: a factory is a small picklable object holding only configuration (never a
session, socket or credential); calling it builds a fresh requests-compatible transport
in the calling process, so each worker owns its connections.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import requests
import requests.adapters

__all__ = ["AnonymousFactory", "GoogleDefaultFactory", "anonymous", "google_default"]

DEFAULT_POOL_SIZE = 64
"""int: Connections a session keeps per host (requests' default of 10 is too small)."""

DEFAULT_SCOPES = ("https://www.googleapis.com/auth/devstorage.read_write",)
"""tuple: OAuth scopes requested by ``google_default`` unless told otherwise."""


def _mount(session: requests.Session, pool_size: int) -> None:
    adapter = requests.adapters.HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    _remember_environment(session)


def _remember_environment(session: requests.Session) -> None:
    """Read the proxy and CA-bundle environment once per origin, not on every request.

    ``requests`` walks the whole environment (twice) for each request to find proxies;
    for many small objects that was a large share of the client's CPU.  What it finds
    depends only on the URL's scheme and host, so the answer is kept per origin for the
    life of the session (the settings passed to one request still win, as before).
    """
    merge: Any = session.merge_environment_settings
    remembered: dict[tuple[str, bool | None], dict[str, Any]] = {}

    def merge_environment_settings(
        url: Any, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> Any:
        if proxies or verify is not None or cert is not None:
            return merge(url, proxies, stream, verify, cert)
        origin = str(url).split("/", 3)[:3]
        key = ("/".join(origin), stream)
        settings = remembered.get(key)
        if settings is None:
            settings = remembered[key] = merge(url, proxies, stream, verify, cert)
        return {**settings, "proxies": dict(settings["proxies"])}

    setattr(session, "merge_environment_settings", merge_environment_settings)  # noqa: B010


@dataclasses.dataclass(frozen=True, slots=True)
class AnonymousFactory:
    """Builds an unauthenticated ``requests.Session`` with a large connection pool.

    Attributes:
        pool_size: Connections kept per host.
    """

    pool_size: int = DEFAULT_POOL_SIZE

    def __call__(self) -> requests.Session:
        """Return a new session."""
        session = requests.Session()
        _mount(session, self.pool_size)
        return session


@dataclasses.dataclass(frozen=True, slots=True)
class GoogleDefaultFactory:
    """Builds a ``google.auth`` ``AuthorizedSession`` from Application Default Credentials.

    Attributes:
        scopes: OAuth scopes to request.
        pool_size: Connections kept per host.
    """

    scopes: tuple[str, ...] = DEFAULT_SCOPES
    pool_size: int = DEFAULT_POOL_SIZE

    def __call__(self) -> Any:
        """Return a new authorized session.

        Raises:
            google.auth.exceptions.DefaultCredentialsError: No credentials are configured
                (set GOOGLE_APPLICATION_CREDENTIALS or run ``gcloud auth
                application-default login``).
        """
        import google.auth
        import google.auth.transport.requests

        credentials, _project = google.auth.default(scopes=list(self.scopes))
        session = google.auth.transport.requests.AuthorizedSession(credentials)  # type: ignore[no-untyped-call]
        _mount(session, self.pool_size)
        return session


def anonymous(pool_size: int = DEFAULT_POOL_SIZE) -> AnonymousFactory:
    """A picklable zero-argument factory of unauthenticated sessions.

    Args:
        pool_size: Connections kept per host.

    Returns:
        The factory.
    """
    return AnonymousFactory(pool_size)


def google_default(
    scopes: Sequence[str] = DEFAULT_SCOPES, pool_size: int = DEFAULT_POOL_SIZE
) -> GoogleDefaultFactory:
    """A picklable zero-argument factory of ``AuthorizedSession`` objects.

    Credentials are looked up when the factory is called (in each worker), never pickled.

    Args:
        scopes: OAuth scopes.
        pool_size: Connections kept per host.

    Returns:
        The factory.
    """
    if isinstance(scopes, str):
        scopes = (scopes,)  # a single scope, not a sequence of characters
    return GoogleDefaultFactory(tuple(scopes), pool_size)
