"""Domain errors as gRPC statuses with google.rpc details (the service interceptor applies it).

Every error carries an ErrorInfo (stable reason, the service's domain) and the detail its kind
calls for. Anything unexpected becomes INTERNAL with a trace id and no internals. Violations are
capped (see domain/errors.py): the first ones that fit, then one entry with an empty field (or
type) that says how many were left out.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status
from opentelemetry import trace

from agent_containers.domain import errors
from agent_containers.domain.errors import (
    MAX_DESCRIPTION_CHARS,
    MAX_FIELD_CHARS,
    MAX_MESSAGE_CHARS,
    MAX_REPORTED_VIOLATIONS,
    bounded,
)
from agent_containers.observability.call_context import UNSAMPLED_TRACE_ID

ERROR_DOMAIN = "agent-containers"
# The reported violations of one error, serialized: the trailers carry them base64-encoded next
# to the message (twice: in the details and in grpc-message), all well below a client's 8 KiB.
MAX_VIOLATION_BYTES = 3072
log = logging.getLogger(__name__)

Violation = TypeVar("Violation")
Entry = TypeVar("Entry", bound=Message)


def _retry_info(seconds: float) -> error_details_pb2.RetryInfo:
    delay = duration_pb2.Duration()
    delay.FromNanoseconds(int(seconds * 1e9))
    return error_details_pb2.RetryInfo(retry_delay=delay)


def _capped(
    violations: Sequence[Violation],
    entry: Callable[[Violation], Entry],
    more: Callable[[str], Entry],
) -> list[Entry]:
    """The entries of the first violations that fit one error, then one saying how many more."""
    entries: list[Entry] = []
    room = MAX_VIOLATION_BYTES
    for violation in violations[:MAX_REPORTED_VIOLATIONS]:
        built = entry(violation)
        room -= built.ByteSize()
        if room < 0:
            break
        entries.append(built)
    hidden = len(violations) - len(entries)
    if hidden:
        entries.append(more(f"{hidden} more violation{'s' if hidden > 1 else ''} not shown"))
    return entries


def _field_violation(field: str, description: str) -> error_details_pb2.BadRequest.FieldViolation:
    return error_details_pb2.BadRequest.FieldViolation(
        field=bounded(field, MAX_FIELD_CHARS),
        description=bounded(description, MAX_DESCRIPTION_CHARS),
    )


def _bad_request(violations: list[errors.FieldViolation]) -> error_details_pb2.BadRequest:
    return error_details_pb2.BadRequest(
        field_violations=_capped(
            violations,
            lambda v: _field_violation(v.field, v.description),
            lambda summary: _field_violation("", summary),
        )
    )


def _precondition_violation(
    kind: str, subject: str, description: str
) -> error_details_pb2.PreconditionFailure.Violation:
    return error_details_pb2.PreconditionFailure.Violation(
        type=kind,
        subject=bounded(subject, MAX_FIELD_CHARS),
        description=bounded(description, MAX_DESCRIPTION_CHARS),
    )


def _precondition_failure(
    violations: list[errors.PreconditionViolation],
) -> error_details_pb2.PreconditionFailure:
    return error_details_pb2.PreconditionFailure(
        violations=_capped(
            violations,
            lambda v: _precondition_violation(v.type, v.subject, v.description),
            lambda summary: _precondition_violation("", "", summary),
        )
    )


def _code_and_detail(error: errors.DomainError) -> tuple[int, Message | None]:
    """The status code and the detail message of one domain error."""
    match error:
        case errors.InvalidArgument():
            return code_pb2.INVALID_ARGUMENT, _bad_request(error.violations)
        case errors.NotFound():
            return code_pb2.NOT_FOUND, error_details_pb2.ResourceInfo(
                resource_type=error.resource_type,
                resource_name=error.resource_name,
                description=error.message,
            )
        case errors.AlreadyExists():
            return code_pb2.ALREADY_EXISTS, error_details_pb2.ResourceInfo(
                resource_type=error.resource_type,
                resource_name=error.resource_name,
                description=error.message,
            )
        case errors.QuotaExceeded():
            return code_pb2.RESOURCE_EXHAUSTED, error_details_pb2.QuotaFailure(
                violations=[
                    error_details_pb2.QuotaFailure.Violation(
                        subject=error.subject, description=error.description
                    )
                ]
            )
        case errors.RateLimited():
            return code_pb2.RESOURCE_EXHAUSTED, _retry_info(error.retry_after_seconds)
        case errors.FailedPrecondition():
            return code_pb2.FAILED_PRECONDITION, _precondition_failure(error.violations)
        case errors.UpstreamUnavailable() | errors.DatabaseUnavailable() | errors.ShuttingDown():
            return code_pb2.UNAVAILABLE, _retry_info(error.retry_after_seconds)
        case errors.UpstreamRejected():
            return code_pb2.FAILED_PRECONDITION, _precondition_failure(
                [errors.PreconditionViolation("UPSTREAM", "openai", error.message)]
            )
        case errors.Unauthenticated():
            return code_pb2.UNAUTHENTICATED, None
        case _:
            # UpstreamNotFound must be interpreted by a service; reaching here is a bug.
            return code_pb2.INTERNAL, None


def to_status(error: errors.DomainError) -> grpc.Status:
    """The grpc.Status (with rich details in the trailers) for a domain error."""
    code, detail = _code_and_detail(error)
    message = (
        bounded(error.message, MAX_MESSAGE_CHARS) if code != code_pb2.INTERNAL else "internal error"
    )
    info = error_details_pb2.ErrorInfo(reason=error.reason, domain=ERROR_DOMAIN)
    status = status_pb2.Status(code=code, message=message)
    for part in (info, detail):
        if part is not None:
            packed = any_pb2.Any()
            packed.Pack(part)
            status.details.append(packed)
    return rpc_status.to_status(status)


def _set_status(context: grpc.aio.ServicerContext[Any, Any], status: grpc.Status) -> None:
    # Set for the behaviour to return with, not raised with context.abort(): grpc.aio keeps the
    # AbortError on the call's state, and its traceback holds every frame of the call, so each
    # refused request (a 4 MiB one parses to about 100 MiB) would live on in a reference cycle
    # until the garbage collector ran. Set, the request is freed as soon as the call returns.
    context.set_code(status.code)
    context.set_details(status.details)
    context.set_trailing_metadata(status.trailing_metadata)


def set_unexpected_status(
    method: str, error: Exception, context: grpc.aio.ServicerContext[Any, Any]
) -> None:
    """INTERNAL with a trace id (logged with the error) and no internals.

    The trace id is the call's own when tracing is on (the caller's, when it sent one), and the
    span records the error; otherwise (or when the call's trace is nobody's: UNSAMPLED) a random
    one, found only in the log."""
    span = trace.get_current_span()
    span_context = span.get_span_context()
    if span_context.is_valid and span_context.trace_id != UNSAMPLED_TRACE_ID:
        trace_id = trace.format_trace_id(span_context.trace_id)
        span.record_exception(error)
    else:
        trace_id = uuid.uuid4().hex
    log.exception("unexpected error", extra={"method": method, "trace_id": trace_id})
    info = error_details_pb2.ErrorInfo(
        reason="INTERNAL", domain=ERROR_DOMAIN, metadata={"trace_id": trace_id}
    )
    packed = any_pb2.Any()
    packed.Pack(info)
    status = status_pb2.Status(
        code=code_pb2.INTERNAL,
        message=f"internal error (trace id {trace_id})",
        details=[packed],
    )
    _set_status(context, rpc_status.to_status(status))


def set_domain_status(
    method: str, error: errors.DomainError, context: grpc.aio.ServicerContext[Any, Any]
) -> None:
    """The status of a domain error; the behaviour then returns without a response."""
    code, _ = _code_and_detail(error)
    if code == code_pb2.INTERNAL:  # a domain error no RPC should let out: a bug, so a trace id
        set_unexpected_status(method, error, context)
    else:
        _set_status(context, to_status(error))
