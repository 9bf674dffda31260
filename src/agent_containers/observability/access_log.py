"""The access log: one line for every service call, once its status is known."""

from __future__ import annotations

import logging

from agent_containers.api.identity import current_identity
from agent_containers.observability.call_context import current_call, trace_ids
from agent_containers.observability.calls import CallKind, FinishedCall

ACCESS_LOGGER = "agent_containers.access"


class AccessLog:
    """A CallObserver writing `call` at INFO on logger `agent_containers.access`: method, kind,
    code, reason, duration, tenant, user, request id, trace and span ids, peer.

    Nothing of the request or its metadata beyond those: no body, no credentials. With the logger
    above INFO a call costs one level check.
    """

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._log = logger or logging.getLogger(ACCESS_LOGGER)

    def call_started(self, method: str, kind: CallKind) -> None:
        pass

    def call_finished(self, call: FinishedCall) -> None:
        if not self._log.isEnabledFor(logging.INFO):
            return
        try:
            identity = current_identity()
            tenant_id: str | None = identity.tenant_id
            user_id: str | None = identity.user_id
        except LookupError:  # refused before the identity was read
            tenant_id = user_id = None
        context = current_call()
        trace_id, span_id = trace_ids()
        self._log.info(
            "call",
            extra={
                "method": call.method,
                "kind": call.kind.value,
                "code": call.code.name,
                "reason": call.reason,
                "duration_ms": round(call.seconds * 1000, 3),
                "tenant_id": tenant_id,
                "user_id": user_id,
                "request_id": context.request_id if context is not None else None,
                "trace_id": trace_id,
                "span_id": span_id,
                "peer": call.context.peer(),
            },
        )
