"""Request ids: every service call has one, the caller's `x-request-id` when it sent a sane one,
else a new one. It is bound for the call's log lines (with the caller's `traceparent`) and
returned to the caller in the trailing metadata, whatever the call's status."""

from __future__ import annotations

import os
import re
from typing import Any

import grpc

from agent_containers.observability.call_context import bind_call, current_call

REQUEST_ID_KEY = "x-request-id"
TRACEPARENT_KEY = "traceparent"

# Printable ASCII without spaces, bounded: it is logged and sent back as it came.
_SANE = re.compile(r"[\x21-\x7e]{1,128}")


def bind_request(context: grpc.aio.ServicerContext[Any, Any]) -> None:
    """Binds the call's request id (the first sane `x-request-id`, else a new one) and the
    caller's first `traceparent`."""
    request_id = traceparent = None
    for key, value in context.invocation_metadata() or ():
        if not isinstance(value, str):
            continue  # a binary (-bin) value
        if key == REQUEST_ID_KEY and request_id is None and _SANE.fullmatch(value):
            request_id = value
        elif key == TRACEPARENT_KEY and traceparent is None:
            traceparent = value
    bind_call(request_id or os.urandom(16).hex(), traceparent)


def return_request_id(context: grpc.aio.ServicerContext[Any, Any]) -> None:
    """Adds the call's request id to the trailing metadata it is answered with (call it once the
    status, and with it any other trailing metadata, is set)."""
    call = current_call()
    if call is not None:
        trailing = tuple(context.trailing_metadata() or ())
        context.set_trailing_metadata((*trailing, (REQUEST_ID_KEY, call.request_id)))
