"""Request ids: every service call has one, the caller's `x-request-id` when it sent a sane one,
else a new one. It is bound for the call's log lines (with the caller's `traceparent`) and
returned to the caller in the trailing metadata, whatever the call's status."""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterable
from typing import Any

import grpc

from agent_containers.observability.call_context import bind_call, current_call

REQUEST_ID_KEY = "x-request-id"
TRACEPARENT_KEY = "traceparent"

# Printable ASCII without spaces, bounded: it is logged and sent back as it came.
_SANE = re.compile(r"[\x21-\x7e]{1,128}")


Metadata = Iterable[tuple[str, str | bytes]]


def _new_process() -> None:
    """A random prefix for this process's request ids, and a counter for the rest: unique
    without a system call a call (a forked child draws a prefix of its own)."""
    global _prefix, _counter
    _prefix = os.urandom(8).hex()
    _counter = itertools.count()


_prefix = ""
_counter = itertools.count()
_new_process()
os.register_at_fork(after_in_child=_new_process)


def new_request_id() -> str:
    """32 hex digits, never the same twice."""
    return f"{_prefix}{next(_counter) & 0xFFFF_FFFF_FFFF_FFFF:016x}"


def bind_request(metadata: Metadata) -> None:
    """Binds the call's request id (the first sane `x-request-id`, else a new one) and the
    caller's first `traceparent`, from the call's invocation metadata."""
    request_id = traceparent = None
    for key, value in metadata:
        if not isinstance(value, str):
            continue  # a binary (-bin) value
        if key == REQUEST_ID_KEY and request_id is None and _SANE.fullmatch(value):
            request_id = value
        elif key == TRACEPARENT_KEY and traceparent is None:
            traceparent = value
    bind_call(request_id or new_request_id(), traceparent)


def return_request_id(context: grpc.aio.ServicerContext[Any, Any]) -> None:
    """Adds the call's request id to the trailing metadata it is answered with (call it once the
    status, and with it any other trailing metadata, is set)."""
    call = current_call()
    if call is not None:
        trailing = tuple(context.trailing_metadata() or ())
        context.set_trailing_metadata((*trailing, (REQUEST_ID_KEY, call.request_id)))
