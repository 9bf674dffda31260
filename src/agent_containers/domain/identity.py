"""Who is calling: the tenant every query is scoped to, and the user acting in it."""

from __future__ import annotations

import re
from dataclasses import dataclass

from agent_containers.domain.errors import Unauthenticated

# Tenant and user ids travel in metadata and land in SQL and logs: keep them plain.
_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}")


@dataclass(frozen=True)
class Identity:
    """The verified caller of one request."""

    tenant_id: str
    user_id: str

    @classmethod
    def from_headers(cls, tenant_id: str | None, user_id: str | None) -> Identity:
        """Builds the identity from the interim `x-tenant-id` / `x-user-id` headers."""
        return cls(
            tenant_id=_checked("x-tenant-id", tenant_id), user_id=_checked("x-user-id", user_id)
        )


def _checked(header: str, value: str | None) -> str:
    if not value:
        raise Unauthenticated(f"metadata {header} is required")
    if not _ID_PATTERN.fullmatch(value):
        raise Unauthenticated(
            f"metadata {header} must be 1-128 characters of letters, digits and _.:@-",
            reason="IDENTITY_MALFORMED",
        )
    return value
