"""What the service interceptor reports of every call it serves, for metrics and access logs.

One place computes a call's outcome (its status code, its error reason, how long it took); the
observers turn that into metric samples and a log line. Health checks and reflection are not
service calls and are not reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

import grpc


class CallKind(StrEnum):
    """The RPC's shape, spelt as go-grpc-prometheus spells its `grpc_type` label."""

    UNARY = "unary"
    CLIENT_STREAM = "client_stream"
    SERVER_STREAM = "server_stream"
    BIDI_STREAM = "bidi_stream"


@dataclass(slots=True)
class FinishedCall:
    """One served call, once its status is known (not frozen: a frozen dataclass costs a
    call to object.__setattr__ a field, on every call served)."""

    method: str
    """The full method name: `/agentcontainers.v1.ContainerService/GetContainer`."""
    kind: CallKind
    code: grpc.StatusCode
    seconds: float
    reason: str | None
    """The ErrorInfo reason of a domain error; None for OK and for errors gRPC itself raised."""
    context: grpc.aio.ServicerContext[Any, Any]
    received: int = 0
    """Request messages the method read (1 for a unary request, unless it was unreadable)."""
    sent: int = 0
    """Response messages sent (a unary response counts once it is returned, not on error)."""
    peer: str | None = None
    """The caller's address, read when the call arrived: grpc.aio may crash the process when
    asked for the peer of a call that was cancelled."""


class CallObserver(Protocol):
    """Told of every service call: when it starts and when it has its status."""

    def call_started(self, method: str, kind: CallKind) -> None: ...

    def call_finished(self, call: FinishedCall) -> None: ...
