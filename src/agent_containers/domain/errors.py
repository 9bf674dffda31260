"""The service's error taxonomy, free of gRPC: the api layer maps each kind to a status code.

Each error carries a stable `reason` (ErrorInfo.reason) and what its detail message needs.
"""

from __future__ import annotations

from dataclasses import dataclass

# One error travels in a response's trailers, and clients refuse large trailers (gRPC's from 8
# KiB on, Java's at 8 KiB): a request with thousands of violations must still get its answer.
# So an error reports its first violations only, each of bounded length, in a short message.
MAX_REPORTED_VIOLATIONS = 20
MAX_FIELD_CHARS = 128
MAX_DESCRIPTION_CHARS = 256
MAX_MESSAGE_CHARS = 200
_VIOLATIONS_IN_MESSAGE = 3


def bounded(text: str, limit: int) -> str:
    """`text`, cut to at most `limit` characters (marked with "...") when longer."""
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


@dataclass(frozen=True)
class FieldViolation:
    """One malformed field: its path in the request and what is wrong with it."""

    field: str
    description: str


@dataclass(frozen=True)
class PreconditionViolation:
    """One unmet precondition (google.rpc.PreconditionFailure.Violation)."""

    type: str
    subject: str
    description: str


class DomainError(Exception):
    """Base of every error the service reports on purpose."""

    reason: str = "UNKNOWN"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason


class InvalidArgument(DomainError):
    """Malformed input; lists every violation at once."""

    reason = "INVALID_FIELD"

    def __init__(self, violations: list[FieldViolation], *, reason: str | None = None) -> None:
        super().__init__(_summary(violations), reason=reason)
        self.violations = violations


def _summary(violations: list[FieldViolation]) -> str:
    """The first violations in one line of bounded length, and how many more there are."""
    listed = violations[:_VIOLATIONS_IN_MESSAGE]
    more = len(violations) - len(listed)
    suffix = f" (and {more} more)" if more else ""
    prefix = "invalid request: "
    text = "; ".join(f"{v.field}: {v.description}" for v in listed)
    return prefix + bounded(text, MAX_MESSAGE_CHARS - len(prefix) - len(suffix)) + suffix


class MalformedRequest(InvalidArgument):
    """A request body that is not a message of the method's type: no field can be named."""

    reason = "MALFORMED_REQUEST"

    def __init__(self) -> None:
        super().__init__([FieldViolation("", "the request is not a valid message of its type")])


class MemoryTierNotAllowed(InvalidArgument):
    """A memory tier that exists but is not allowed for this tenant."""

    reason = "MEMORY_TIER_NOT_ALLOWED"


class NotFound(DomainError):
    """A resource that does not exist, or is another tenant's (existence must not leak)."""

    def __init__(self, resource_type: str, resource_name: str, *, reason: str) -> None:
        super().__init__(f"{resource_type} {resource_name!r} not found", reason=reason)
        self.resource_type = resource_type
        self.resource_name = resource_name


class AlreadyExists(DomainError):
    """A live resource already holds the name."""

    def __init__(
        self, resource_type: str, resource_name: str, *, reason: str, hint: str = ""
    ) -> None:
        message = f"{resource_type} {resource_name!r} already exists"
        super().__init__(f"{message}; {hint}" if hint else message, reason=reason)
        self.resource_type = resource_type
        self.resource_name = resource_name


class QuotaExceeded(DomainError):
    """A tenant's quota would be exceeded."""

    reason = "CONTAINER_QUOTA_EXCEEDED"

    def __init__(self, subject: str, description: str) -> None:
        super().__init__(description)
        self.subject = subject
        self.description = description


class RateLimited(DomainError):
    """Too many requests, ours or upstream's."""

    reason = "RATE_LIMITED"

    def __init__(self, message: str, *, retry_after_seconds: float) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class FailedPrecondition(DomainError):
    """The system is not in the state the call needs."""

    def __init__(
        self, message: str, violations: list[PreconditionViolation], *, reason: str
    ) -> None:
        super().__init__(message, reason=reason)
        self.violations = violations


class UpstreamUnavailable(DomainError):
    """The Containers API could not be reached or failed after retries."""

    reason = "UPSTREAM_UNAVAILABLE"

    def __init__(
        self,
        message: str,
        *,
        retry_after_seconds: float = 1.0,
        reason: str | None = None,
        outcome_unknown: bool = True,
    ) -> None:
        """`outcome_unknown`: upstream may have done the work anyway (a timeout, a dropped
        connection, a 5xx); False when it certainly did not (it refused our credentials)."""
        super().__init__(message, reason=reason)
        self.retry_after_seconds = retry_after_seconds
        self.outcome_unknown = outcome_unknown


class DatabaseUnavailable(DomainError):
    """The database could not be reached, or dropped the connection: worth a retry."""

    reason = "DATABASE_UNAVAILABLE"

    def __init__(self, message: str, *, retry_after_seconds: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class ShuttingDown(DomainError):
    """This process is shutting down: another replica can take the call at once."""

    reason = "SHUTTING_DOWN"

    def __init__(self) -> None:
        super().__init__(
            "the server is shutting down; retry the call (another replica can take it)"
        )
        self.retry_after_seconds = 1.0


class UpstreamRejected(DomainError):
    """The Containers API refused a request as invalid (HTTP 4xx other than 404 and 429)."""

    reason = "UPSTREAM_REJECTED"

    def __init__(self, message: str, *, http_status: int) -> None:
        super().__init__(message)
        self.http_status = http_status


class UpstreamContainerExpired(UpstreamRejected):
    """Upstream refused to act on a container because it has expired (HTTP 400 "Container is
    expired."). Services record the expiry; anywhere else it is the refusal it is."""

    reason = "CONTAINER_EXPIRED"


class UpstreamNotFound(DomainError):
    """The Containers API does not know the object (HTTP 404). Services decide what it means."""

    reason = "UPSTREAM_NOT_FOUND"


class Unauthenticated(DomainError):
    """The caller's identity is missing or malformed."""

    reason = "IDENTITY_MISSING"
