"""OTLP trace receivers the tests run themselves: what a collector would be sent, decoded.

`OtlpGrpcReceiver` implements the collector's TraceService (OTLP/gRPC); `OtlpHttpReceiver`
accepts `POST /v1/traces` (OTLP/HTTP, protobuf). Both keep every span they were sent, with its
resource, as a `ReceivedSpan`, and answer as a collector does.
"""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import grpc
from aiohttp import web
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

SERVER = trace_pb2.Span.SPAN_KIND_SERVER
CLIENT = trace_pb2.Span.SPAN_KIND_CLIENT
INTERNAL = trace_pb2.Span.SPAN_KIND_INTERNAL
STATUS_ERROR = trace_pb2.Status.STATUS_CODE_ERROR


def _value(value: common_pb2.AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {item.key: _value(item.value) for item in value.kvlist_value.values}
    return getattr(value, kind) if kind else None


def _attributes(attributes: Iterable[common_pb2.KeyValue]) -> dict[str, Any]:
    return {item.key: _value(item.value) for item in attributes}


@dataclass(frozen=True)
class ReceivedSpan:
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_span_id: str
    """Empty for a root span."""
    attributes: dict[str, Any]
    status_code: int
    events: list[str]
    resource: dict[str, Any]


@dataclass
class SpanSink:
    """Every span received, in the order received."""

    spans: list[ReceivedSpan] = field(default_factory=list)
    requests: int = 0
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, request: trace_service_pb2.ExportTraceServiceRequest) -> None:
        self.requests += 1
        for resource_spans in request.resource_spans:
            resource = _attributes(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.spans.append(
                        ReceivedSpan(
                            name=span.name,
                            kind=span.kind,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_span_id=span.parent_span_id.hex(),
                            attributes=_attributes(span.attributes),
                            status_code=span.status.code,
                            events=[event.name for event in span.events],
                            resource=resource,
                        )
                    )
        self._arrived.set()

    async def wait_for(
        self, found: Callable[[list[ReceivedSpan]], bool], *, within: float = 30.0
    ) -> list[ReceivedSpan]:
        """Waits until `found(spans)` holds (at most `within` seconds); the spans then."""
        async with asyncio.timeout(within):
            while not found(self.spans):
                self._arrived.clear()
                await self._arrived.wait()
        return self.spans

    def named(self, name: str) -> list[ReceivedSpan]:
        return [span for span in self.spans if span.name == name]


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, sink: SpanSink) -> None:
        self._sink = sink

    async def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        self._sink.add(request)
        return trace_service_pb2.ExportTraceServiceResponse()


class OtlpGrpcReceiver(SpanSink):
    """An OTLP/gRPC trace receiver on a free loopback port."""

    def __init__(self) -> None:
        super().__init__()
        self._server: grpc.aio.Server | None = None
        self.port = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> OtlpGrpcReceiver:
        self._server = grpc.aio.server()
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_TraceService(self), self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        await self._server.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            await self._server.stop(None)


class OtlpHttpReceiver(SpanSink):
    """An OTLP/HTTP (protobuf) trace receiver on a free loopback port: `POST /v1/traces`."""

    def __init__(self) -> None:
        super().__init__()
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.content_types: list[str] = []

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _traces(self, request: web.Request) -> web.Response:
        body = await request.read()
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self.content_types.append(request.content_type)
        self.add(trace_service_pb2.ExportTraceServiceRequest.FromString(body))
        return web.Response(
            body=trace_service_pb2.ExportTraceServiceResponse().SerializeToString(),
            content_type="application/x-protobuf",
        )

    async def __aenter__(self) -> OtlpHttpReceiver:
        app = web.Application()
        app.router.add_post("/v1/traces", self._traces)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def descends_from(span: ReceivedSpan, ancestor: ReceivedSpan, spans: list[ReceivedSpan]) -> bool:
    """Whether `ancestor` is on the span's parent chain (within the received spans)."""
    by_id = {s.span_id: s for s in spans}
    parent = span.parent_span_id
    while parent:
        if parent == ancestor.span_id:
            return True
        above = by_id.get(parent)
        parent = above.parent_span_id if above is not None else ""
    return False
