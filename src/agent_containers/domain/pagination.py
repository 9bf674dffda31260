"""Page sizes and opaque page tokens for keyset pagination.

A token carries the last row's sort key and a fingerprint of the query that made it, so it
cannot be replayed against another query (another filter, another tenant).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json

from agent_containers.domain.errors import FieldViolation, InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
MAX_TOKEN_LENGTH = 1024  # ours are ~150 characters; anything far longer is not one of ours


def page_size(
    requested: int, *, default: int = DEFAULT_PAGE_SIZE, maximum: int = MAX_PAGE_SIZE
) -> int:
    """0 means the default; above the maximum is clamped; negative is malformed."""
    if requested < 0:
        raise InvalidArgument([FieldViolation("page_size", "must not be negative")])
    if requested == 0:
        return default
    return min(requested, maximum)


def query_fingerprint(*parts: object) -> str:
    """A short digest of everything that defines a query."""
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:16]


def encode_page_token(fingerprint: str, key: list[str]) -> str:
    """An opaque token for the page after the row with sort key `key`."""
    raw = json.dumps({"q": fingerprint, "k": key}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(token: str, fingerprint: str, key_length: int) -> list[str] | None:
    """The sort key a token carries; None for the first page. Rejects foreign or forged tokens."""
    if not token:
        return None
    if len(token) > MAX_TOKEN_LENGTH:
        raise invalid_page_token()
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        payload = json.loads(raw)
        key = payload["k"]
        valid = (
            payload["q"] == fingerprint
            and isinstance(key, list)
            and len(key) == key_length
            and all(isinstance(part, str) for part in key)
        )
    except (binascii.Error, ValueError, KeyError, TypeError, RecursionError):
        valid = False
    if not valid:
        raise invalid_page_token()
    return list(key)


def invalid_page_token() -> InvalidArgument:
    """The error for a token that no previous page of this query gave."""
    return InvalidArgument(
        [FieldViolation("page_token", "is not a token from a previous page of this query")]
    )
