"""Domain errors as gRPC statuses with google.rpc details (the service interceptor applies it).

Every error carries an ErrorInfo (stable reason, the service's domain) and the detail its kind
calls for. Anything unexpected becomes INTERNAL with a trace id and no internals.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from agent_containers.domain import errors

ERROR_DOMAIN = "agent-containers"
log = logging.getLogger(__name__)


def _retry_info(seconds: float) -> error_details_pb2.RetryInfo:
    delay = duration_pb2.Duration()
    delay.FromNanoseconds(int(seconds * 1e9))
    return error_details_pb2.RetryInfo(retry_delay=delay)


def _bad_request(violations: list[errors.FieldViolation]) -> error_details_pb2.BadRequest:
    return error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
            for v in violations
        ]
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
            return code_pb2.FAILED_PRECONDITION, error_details_pb2.PreconditionFailure(
                violations=[
                    error_details_pb2.PreconditionFailure.Violation(
                        type=v.type, subject=v.subject, description=v.description
                    )
                    for v in error.violations
                ]
            )
        case errors.UpstreamUnavailable() | errors.DatabaseUnavailable():
            return code_pb2.UNAVAILABLE, _retry_info(error.retry_after_seconds)
        case errors.UpstreamRejected():
            return code_pb2.FAILED_PRECONDITION, error_details_pb2.PreconditionFailure(
                violations=[
                    error_details_pb2.PreconditionFailure.Violation(
                        type="UPSTREAM", subject="openai", description=error.message
                    )
                ]
            )
        case errors.Unauthenticated():
            return code_pb2.UNAUTHENTICATED, None
        case _:
            # UpstreamNotFound must be interpreted by a service; reaching here is a bug.
            return code_pb2.INTERNAL, None


def to_status(error: errors.DomainError) -> grpc.Status:
    """The grpc.Status (with rich details in the trailers) for a domain error."""
    code, detail = _code_and_detail(error)
    message = error.message if code != code_pb2.INTERNAL else "internal error"
    info = error_details_pb2.ErrorInfo(reason=error.reason, domain=ERROR_DOMAIN)
    status = status_pb2.Status(code=code, message=message)
    for part in (info, detail):
        if part is not None:
            packed = any_pb2.Any()
            packed.Pack(part)
            status.details.append(packed)
    return rpc_status.to_status(status)


async def _abort(context: grpc.aio.ServicerContext[Any, Any], status: grpc.Status) -> None:
    # abort() with the status trailers is abort_with_status(), which grpc-stubs does not know.
    await context.abort(status.code, status.details, status.trailing_metadata)


async def abort_unexpected(
    method: str, error: Exception, context: grpc.aio.ServicerContext[Any, Any]
) -> None:
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
    await _abort(context, rpc_status.to_status(status))


async def abort_domain(
    method: str, error: errors.DomainError, context: grpc.aio.ServicerContext[Any, Any]
) -> None:
    code, _ = _code_and_detail(error)
    if code == code_pb2.INTERNAL:  # a domain error no RPC should let out: a bug, so a trace id
        await abort_unexpected(method, error, context)
    await _abort(context, to_status(error))
