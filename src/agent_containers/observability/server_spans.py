"""The SERVER span of every service call, as lean as a span can be: it sits on the hot path.

The span is what opentelemetry-instrumentation-grpc's aio server interceptor makes (same name,
kind, attributes and status rules, so its dashboards and queries apply), made here instead: that
interceptor builds a handler, a context proxy, two metadata dicts and the peer attributes on every
call, sampled or not, which costs a traced ResolveTool a quarter of its throughput with 1 % of
calls sampled (see docs/runbook.md#tracing). Here the wrapped handler is built once per method
(WrappingInterceptor), the parent context is read from the metadata as it is, and what only a
recorded span needs (status code, peer, user agent) is computed only for one.

A call that starts a trace (most calls: the caller sent no trace context) is sampled first, with
the trace id its span would have, and only a sampled one gets a span of its own: an unsampled
one runs under UNSAMPLED, one shared non-recording span, so that its SQL and upstream spans are
dropped as the children of an unsampled span are. That saves a call most of what tracing costs
it (docs/benchmarks.md). UNSAMPLED's ids are nobody's: they are never logged (see
call_context).

The caller's trace context is read with the global propagator (OTEL_PROPAGATORS; W3C
traceparent/tracestate and baggage by default). The span is the current one while the inner
interceptors (the shutdown gate, the service interceptor) and the servicer run: their SQL and
upstream spans are its children, and log lines can carry its ids.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import Any, cast

import grpc
from opentelemetry import trace
from opentelemetry.context import Context, attach, detach
from opentelemetry.propagate import get_global_textmap
from opentelemetry.propagators.textmap import Getter
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import Decision, Sampler
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from agent_containers.api.handlers import Behaviour, WrappingInterceptor
from agent_containers.observability.call_context import UNSAMPLED, UNSAMPLED_CONTEXT
from agent_containers.observability.calls import CallKind

ServicerContext = grpc.aio.ServicerContext[Any, Any]
Metadata = Sequence[tuple[str, str | bytes]]

# Server spans are errors only for the server's faults (OpenTelemetry's RPC conventions).
SERVER_FAULTS = frozenset(
    code.value[0]
    for code in (
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    )
)
_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}


class _MetadataGetter(Getter[Metadata]):
    """Reads text metadata (the pairs grpc.aio gives) for a propagator."""

    def get(self, carrier: Metadata, key: str) -> list[str] | None:
        values = [value for name, value in carrier if name == key and isinstance(value, str)]
        return values or None

    def keys(self, carrier: Metadata) -> list[str]:
        return [name for name, _ in carrier]


_GETTER = _MetadataGetter()


# The status code's number, from what context.code() gives: None (OK), a StatusCode, or an int.
_NUMBERS: dict[object, int] = {None: 0}
for _status in grpc.StatusCode:
    _NUMBERS[_status] = _NUMBERS[_status.value[0]] = _status.value[0]


def _code(context: ServicerContext, cancelled: bool) -> int:
    """The call's status code; a cancelled call's context is not asked anything."""
    if cancelled:
        return _NUMBERS[grpc.StatusCode.CANCELLED]
    return _NUMBERS.get(context.code(), _NUMBERS[grpc.StatusCode.UNKNOWN])


def _peer(context: ServicerContext) -> dict[str, str]:
    """`ipv4:127.0.0.1:5000`, `ipv6:[::1]:5000` as net.peer.ip and net.peer.port."""
    kind, _, address = context.peer().partition(":")
    if kind not in ("ipv4", "ipv6"):
        return {}
    ip, _, port = address.rpartition(":")
    return {"net.peer.ip": ip, "net.peer.port": port}


class CallIdGenerator(RandomIdGenerator):
    """Random ids, but for the trace id of a call's span, which ServerSpans chose (and sampled)
    before it asked for the span."""

    def __init__(self) -> None:
        self._chosen = threading.local()

    def generate_trace_id(self) -> int:
        chosen: int | None = getattr(self._chosen, "trace_id", None)
        if chosen is None:
            return super().generate_trace_id()
        self._chosen.trace_id = None
        return chosen

    def start_span_with(
        self, trace_id: int, tracer: Tracer, name: str, attributes: dict[str, str]
    ) -> Span:
        """A SERVER span, in a new trace of the given id."""
        self._chosen.trace_id = trace_id
        try:
            return tracer.start_span(name, None, SpanKind.SERVER, attributes)
        finally:
            self._chosen.trace_id = None


class ServerSpans(WrappingInterceptor):
    """One SERVER span per service call (not health checks, not reflection), current for it."""

    def __init__(self, tracer: Tracer, sampler: Sampler, ids: CallIdGenerator) -> None:
        super().__init__()
        self._tracer = tracer
        self._sampler = sampler
        self._ids = ids
        self._propagator = get_global_textmap()
        # The metadata keys the propagators read: a call that carries none of them (most calls)
        # starts a new trace without running the propagators at all.
        self._fields = frozenset(self._propagator.fields)

    def _start(
        self, method: str, attributes: dict[str, str], context: ServicerContext
    ) -> tuple[Span, Context]:
        """The call's span, started, and the OpenTelemetry context to run the call in."""
        metadata = cast(Metadata, context.invocation_metadata() or ())
        fields = self._fields
        if any(key in fields for key, _ in metadata):
            parent = self._propagator.extract(metadata, getter=_GETTER)
            span = self._tracer.start_span(method, parent, SpanKind.SERVER, attributes)
        else:  # a new trace: sampled first
            parent = None
            trace_id = self._ids.generate_trace_id()
            sampling = self._sampler.should_sample(
                None, trace_id, method, SpanKind.SERVER, attributes
            )
            if sampling.decision is Decision.DROP:
                return UNSAMPLED, UNSAMPLED_CONTEXT
            span = self._ids.start_span_with(trace_id, self._tracer, method, attributes)
        if span.is_recording():
            # Now, not at the end: the peer of a call that was cancelled is gone, and asking
            # grpc.aio for it then crashes the process.
            span.set_attributes(_peer(context))
            for name, value in metadata:
                if name == "user-agent" and isinstance(value, str):
                    span.set_attribute("rpc.user_agent", value)
        return span, trace.set_span_in_context(span, parent)

    @staticmethod
    def _end(
        span: Span,
        context: ServicerContext,
        cancelled: bool = False,
        error: BaseException | None = None,
    ) -> None:
        if span.is_recording():
            code = _code(context, cancelled)
            span.set_attribute("rpc.grpc.status_code", code)
            if error is not None:
                span.record_exception(error)
            if code in SERVER_FAULTS:
                span.set_status(Status(StatusCode.ERROR, _NAMES.get(code, str(code))))
        span.end()

    def wrap_unary(self, method: str, kind: CallKind, inner: Behaviour) -> Behaviour:
        attributes = _attributes(method)
        start, end = self._start, self._end

        async def unary(request: Any, context: ServicerContext) -> Any:
            span, current = start(method, attributes, context)
            token = attach(current)
            try:
                response = await inner(request, context)
            except asyncio.CancelledError:
                end(span, context, cancelled=True)
                raise
            except BaseException as error:  # AbortError, or a bug under the service interceptor
                end(span, context, error=error)
                raise
            finally:
                detach(token)
            end(span, context)
            return response

        return unary

    def wrap_stream(self, method: str, kind: CallKind, inner: Behaviour) -> Behaviour:
        """The span is current while each response is made, not across the yields: a stream
        can be closed from another task (a caller gone, the generator finalized), where the
        context it was entered in is not the current one."""
        attributes = _attributes(method)
        start, end = self._start, self._end

        async def stream(request: Any, context: ServicerContext) -> AsyncIterator[Any]:
            span, current = start(method, attributes, context)
            responses = cast(AsyncGenerator[Any, None], inner(request, context))
            try:
                while True:
                    token = attach(current)
                    try:
                        response = await anext(responses)
                    except StopAsyncIteration:
                        break
                    finally:
                        detach(token)
                    yield response
            except (asyncio.CancelledError, GeneratorExit):
                token = attach(current)
                try:
                    await responses.aclose()  # its own clean-up, under the call's span
                finally:
                    detach(token)
                end(span, context, cancelled=True)
                raise
            except BaseException as error:
                end(span, context, error=error)
                raise
            end(span, context)

        return stream


def _attributes(method: str) -> dict[str, str]:
    service, _, name = method.lstrip("/").partition("/")
    return {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}
