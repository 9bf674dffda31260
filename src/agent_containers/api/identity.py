"""The caller's identity, read once per RPC (by the service interceptor) for the servicers.

Interim tenancy: `x-tenant-id` / `x-user-id` metadata, required on every call, once each.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from contextvars import ContextVar

from agent_containers.domain.errors import Unauthenticated
from agent_containers.domain.identity import Identity

_current: ContextVar[Identity] = ContextVar("identity")


def current_identity() -> Identity:
    """The identity of the RPC being served (bound by the service interceptor)."""
    return _current.get()


@functools.lru_cache(maxsize=4096)
def _identity(tenant: str | None, user: str | None) -> Identity:
    # Callers repeat themselves: validating a pair once keeps the regexes off the hot path.
    return Identity.from_headers(tenant, user)


def _sent_twice(header: str) -> Unauthenticated:
    # A gateway that appends its header instead of replacing the caller's would otherwise let
    # whichever value comes last decide: two values are refused, whatever they are.
    return Unauthenticated(f"metadata {header} must be sent once", reason="IDENTITY_MALFORMED")


def _identify(metadata: Iterable[tuple[str, str | bytes]]) -> Identity:
    tenant = user = None
    for key, value in metadata:
        if key == "x-tenant-id" and isinstance(value, str):
            if tenant is not None:
                raise _sent_twice(key)
            tenant = value
        elif key == "x-user-id" and isinstance(value, str):
            if user is not None:
                raise _sent_twice(key)
            user = value
    return _identity(tenant, user)


def bind_identity(metadata: Iterable[tuple[str, str | bytes]]) -> None:
    """Reads the caller's identity from the invocation metadata of the RPC being served (its own
    task, so no reset)."""
    _current.set(_identify(metadata))
