"""What every log line written while a call is served says of that call: its request id, and the
trace it belongs to.

The service interceptor binds a CallContext for each call (each call runs in its own task, so it
is never reset); the log formatter reads it, and the current OpenTelemetry span, only for lines
that are written. The trace comes from the current span when tracing is on (the gRPC server
instrumentation makes the call's span current); when it is off, from the caller's W3C
`traceparent`, parsed the first time a line of the call needs it.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from structlog.typing import EventDict

_PROPAGATOR = TraceContextTextMapPropagator()
_NOT_PARSED: Any = object()

UNSAMPLED_TRACE_ID = (1 << 128) - 1
"""The trace id of UNSAMPLED: all ones, so that a trace-id-ratio sampler (parent-based or not)
drops its children at any ratio below 1 (it samples ids whose low 64 bits are under the ratio)."""
UNSAMPLED = trace.NonRecordingSpan(
    trace.SpanContext(
        UNSAMPLED_TRACE_ID,
        (1 << 64) - 1,
        is_remote=False,
        trace_flags=trace.TraceFlags(trace.TraceFlags.DEFAULT),
    )
)
"""The span of every call that starts a trace the sampler drops (observability/server_spans):
its ids are nobody's, so they are never logged (trace_ids()) nor sent upstream
(propagated_trace())."""
UNSAMPLED_CONTEXT = trace.set_span_in_context(UNSAMPLED)


def propagated_trace() -> bool:
    """Whether the current span's trace is one to send on with a request: any but UNSAMPLED's."""
    return trace.get_current_span().get_span_context().trace_id != UNSAMPLED_TRACE_ID


class CallContext:
    """The call being served: its request id, and the caller's `traceparent` if it sent one."""

    __slots__ = ("_caller_trace_id", "request_id", "traceparent")

    def __init__(self, request_id: str, traceparent: str | None) -> None:
        self.request_id = request_id
        self.traceparent = traceparent
        self._caller_trace_id: str | None = _NOT_PARSED

    def caller_trace_id(self) -> str | None:
        """The trace id of a valid `traceparent` the caller sent; else None."""
        if self._caller_trace_id is _NOT_PARSED:
            self._caller_trace_id = None
            if self.traceparent is not None:
                extracted = _PROPAGATOR.extract({"traceparent": self.traceparent})
                span = trace.get_current_span(extracted).get_span_context()
                if span.is_valid:
                    self._caller_trace_id = trace.format_trace_id(span.trace_id)
        return self._caller_trace_id


_current: ContextVar[CallContext | None] = ContextVar("call", default=None)


def bind_call(request_id: str, traceparent: str | None) -> None:
    """Binds the call being served (in its own task: nothing to reset)."""
    _current.set(CallContext(request_id, traceparent))


def current_call() -> CallContext | None:
    """The call being served, or None outside one."""
    return _current.get()


def trace_ids() -> tuple[str | None, str | None]:
    """(trace id, span id) to log: the current span's when it is sampled (a span that will be
    exported); else the trace id of the caller's `traceparent`, and no span id."""
    span = trace.get_current_span().get_span_context()
    if span.trace_flags.sampled and span.is_valid:
        return trace.format_trace_id(span.trace_id), trace.format_span_id(span.span_id)
    call = _current.get()
    return (call.caller_trace_id() if call is not None else None), None


def add_call_fields(_logger: Any, _name: str, event: EventDict) -> EventDict:
    """structlog processor: `request_id`, `trace_id`, `span_id` on a line written in a call, or
    in a span outside one (a field the call site set itself is kept)."""
    call = _current.get()
    if call is not None:
        event.setdefault("request_id", call.request_id)
    if "trace_id" not in event:
        trace_id, span_id = trace_ids()
        if trace_id is not None:
            event["trace_id"] = trace_id
        if span_id is not None:
            event.setdefault("span_id", span_id)
    return event
