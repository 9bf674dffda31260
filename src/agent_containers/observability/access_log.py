"""The access log: one line for every service call, once its status is known."""

from __future__ import annotations

import asyncio
import logging

import grpc

from agent_containers.api.identity import current_identity
from agent_containers.observability.call_context import current_call, trace_ids
from agent_containers.observability.calls import CallKind, FinishedCall
from agent_containers.observability.logging import CallLines

ACCESS_LOGGER = "agent_containers.access"
FLUSH_AFTER_SECONDS = 0.5
"""The longest an access line waits in stderr's buffer (other lines flush it sooner)."""


# StatusCode.name is a descriptor call; this is a dictionary lookup.
_CODE_NAMES = {code: code.name for code in grpc.StatusCode}


class AccessLog:
    """A CallObserver writing `call` at INFO as logger `agent_containers.access`: method, kind,
    code, reason, duration, tenant, user, request id, trace and span ids, peer.

    Nothing of the request or its metadata beyond those: no body, no credentials. With the
    logger above INFO (AGENT_CONTAINERS_LOG_LEVEL) a call costs one level check. Lines are written
    by observability/logging.CallLines and flushed within FLUSH_AFTER_SECONDS, and at close().
    """

    def __init__(self, logger: logging.Logger | None = None, *, traced: bool = True) -> None:
        """`traced`: tracing is on, so the call may have a span of its own; without, the only
        trace id to log is the caller's."""
        self._level_of = logger or logging.getLogger(ACCESS_LOGGER)
        self._traced = traced
        self._lines = CallLines(ACCESS_LOGGER)
        self._flush_pending: asyncio.TimerHandle | None = None

    def call_started(self, method: str, kind: CallKind) -> None:
        pass

    def call_finished(self, call: FinishedCall) -> None:
        if not self._level_of.isEnabledFor(logging.INFO):
            return
        try:
            identity = current_identity()
            tenant_id: str | None = identity.tenant_id
            user_id: str | None = identity.user_id
        except LookupError:  # refused before the identity was read
            tenant_id = user_id = None
        context = current_call()
        if self._traced:
            trace_id, span_id = trace_ids()
        else:
            trace_id = context.caller_trace_id() if context is not None else None
            span_id = None
        self._lines.write(
            {
                "time": None,
                "level": "INFO",
                "logger": ACCESS_LOGGER,
                "message": "call",
                "method": call.method,
                "kind": call.kind,  # a str
                "code": _CODE_NAMES[call.code],
                "reason": call.reason,
                "duration_ms": round(call.seconds * 1000, 3),
                "tenant_id": tenant_id,
                "user_id": user_id,
                "request_id": context.request_id if context is not None else None,
                "trace_id": trace_id,
                "span_id": span_id,
                "peer": call.peer,
            }
        )
        if self._flush_pending is None:
            self._flush_pending = asyncio.get_running_loop().call_later(
                FLUSH_AFTER_SECONDS, self._flush_now
            )

    def _flush_now(self) -> None:
        self._flush_pending = None
        self._lines.flush()

    def close(self) -> None:
        """Flushes what is written (at stop)."""
        if self._flush_pending is not None:
            self._flush_pending.cancel()
        self._flush_now()
