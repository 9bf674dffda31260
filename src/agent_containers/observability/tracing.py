"""OpenTelemetry traces, configured by the standard `OTEL_*` environment variables.

Tracing is on when the environment asks for an exporter (`TracingConfig.from_env` says exactly
when); otherwise nothing is installed: no interceptor, no SQL event listener, no span anywhere.

When on, one `Tracing` holds an SDK TracerProvider (resource, sampler from `OTEL_TRACES_SAMPLER`,
a BatchSpanProcessor per exporter) and hands it to the instrumentation:

- the gRPC server: a SERVER span per service call, as opentelemetry-instrumentation-grpc makes
  it but for a fraction of its cost (observability/server_spans.py), from the outermost
  interceptor: named by the full method, in the caller's trace when the call carries a W3C
  `traceparent`, and the current span while the other interceptors and the servicers run;
- SQL: opentelemetry-instrumentation-sqlalchemy's engine tracer on the service's engine, one
  CLIENT span per statement, a child of whatever span is current;
- upstream: the gateway's own CLIENT spans (upstream/gateway.py); the SDK's HTTP client is
  httpx2 with an aiohttp transport, which no HTTP client instrumentation sees.

The provider is the server's own (never the process-global one), and the server flushes and shuts
it down when it stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

# The SDK, the exporters and the instrumentations are imported only when tracing is on.
if TYPE_CHECKING:
    import grpc
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Tracer
    from sqlalchemy.ext.asyncio import AsyncEngine

    from agent_containers.observability.server_spans import CallIdGenerator

log = logging.getLogger(__name__)

DEFAULT_SERVICE_NAME = "agent-containers"
"""`service.name` unless OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES name another."""

TRACER_NAME = "agent_containers"
SQL_INSTRUMENTATION = "opentelemetry.instrumentation.sqlalchemy"

EXPORTERS = ("otlp", "console")
PROTOCOLS = ("grpc", "http/protobuf")
DEFAULT_PROTOCOL = "grpc"
"""OTLP over gRPC unless OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL says otherwise, as the Python SDK's
own auto-configuration does."""

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")

FLUSH_SECONDS = 2.0
"""At stop, how long the spans still queued get to reach the collector. An unreachable collector
must not hold the process past its shutdown budget (the deploy files' margin is 5 s)."""


class TracingConfigError(ValueError):
    """The OTEL_* environment asks for something this service cannot do."""


@dataclass(frozen=True)
class TracingConfig:
    """What the OTEL_* environment asks for, when it asks for traces at all."""

    exporters: tuple[str, ...]
    """`otlp` and/or `console`."""
    protocol: str
    """The OTLP protocol: `grpc` or `http/protobuf`."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> TracingConfig | None:
        """The configuration, or None when tracing is off. Off unless one of these is set:

        - OTEL_TRACES_EXPORTER: a comma-separated list of `otlp`, `console` (`none`: off);
        - OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT, with
          OTEL_TRACES_EXPORTER unset: `otlp` to that endpoint.

        OTEL_SDK_DISABLED=true turns it off whatever else is set. An exporter or OTLP protocol
        this service does not have raises TracingConfigError.
        """
        if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
            return None
        named = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
        if named:
            exporters = tuple(dict.fromkeys(n.strip() for n in named.split(",") if n.strip()))
            if "none" in exporters:
                return None
            unknown = [name for name in exporters if name not in EXPORTERS]
            if unknown:
                raise TracingConfigError(
                    f"OTEL_TRACES_EXPORTER={named!r}: unsupported {', '.join(unknown)} "
                    f"(use {', '.join(EXPORTERS)} or none)"
                )
        elif any(environ.get(name, "").strip() for name in ENDPOINT_VARIABLES):
            exporters = ("otlp",)
        else:
            return None
        protocol = (
            environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "").strip()
            or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "").strip()
            or DEFAULT_PROTOCOL
        ).lower()
        if "otlp" in exporters and protocol not in PROTOCOLS:
            raise TracingConfigError(
                f"OTLP protocol {protocol!r} is not supported (use {' or '.join(PROTOCOLS)})"
            )
        return cls(exporters=exporters, protocol=protocol)


def _service_version() -> str:
    try:
        return version("agent-containers")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


def _resource() -> Resource:
    """service.name and service.version by default; OTEL_SERVICE_NAME and
    OTEL_RESOURCE_ATTRIBUTES override them (and add their own attributes)."""
    from opentelemetry.sdk.resources import (
        SERVICE_NAME,
        SERVICE_VERSION,
        OTELResourceDetector,
        Resource,
    )

    defaults = Resource.create(
        {SERVICE_NAME: DEFAULT_SERVICE_NAME, SERVICE_VERSION: _service_version()}
    )
    return defaults.merge(OTELResourceDetector().detect())


def _exporter(name: str, protocol: str) -> SpanExporter:
    """One exporter; the OTLP ones read their endpoint, headers, TLS, compression and timeout
    from the standard OTEL_EXPORTER_OTLP_* variables themselves."""
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcSpanExporter,
        )

        return GrpcSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HttpSpanExporter,
    )

    return HttpSpanExporter()


class Tracing:
    """A TracerProvider with its exporters, and the instrumentation that reports to it."""

    def __init__(self, provider: TracerProvider, ids: CallIdGenerator) -> None:
        self.provider = provider
        self.tracer: Tracer = provider.get_tracer(TRACER_NAME, _service_version())
        self._ids = ids

    @classmethod
    def from_config(cls, config: TracingConfig) -> Tracing:
        # The sampler comes from OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG (default
        # parentbased_always_on); the batch processors read OTEL_BSP_*. The server shuts the
        # provider down itself, within a bound: no second, unbounded one at exit.
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        from agent_containers.observability.server_spans import CallIdGenerator

        ids = CallIdGenerator()
        provider = TracerProvider(resource=_resource(), shutdown_on_exit=False, id_generator=ids)
        for name in config.exporters:
            provider.add_span_processor(BatchSpanProcessor(_exporter(name, config.protocol)))
        return cls(provider, ids)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Tracing | None:
        """Tracing as the environment configures it, or None when it is off."""
        config = TracingConfig.from_env(os.environ if environ is None else environ)
        return None if config is None else cls.from_config(config)

    def server_interceptor(self) -> grpc.aio.ServerInterceptor[Any, Any]:
        """The SERVER span of every service call (health checks and reflection are left out)."""
        from agent_containers.observability.server_spans import ServerSpans

        return ServerSpans(self.tracer, self.provider.sampler, self._ids)

    def instrument(self, engine: AsyncEngine) -> None:
        """A CLIENT span for every SQL statement the engine runs. The instrumentation's
        connection-usage metric goes nowhere: metrics are Prometheus's."""
        from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
        from opentelemetry.instrumentation.sqlalchemy.version import __version__
        from opentelemetry.metrics import NoOpMeterProvider

        tracer = self.provider.get_tracer(SQL_INSTRUMENTATION, __version__)
        usage = (
            NoOpMeterProvider()
            .get_meter(SQL_INSTRUMENTATION)
            .create_up_down_counter("db.client.connections.usage", unit="connections")
        )
        EngineTracer(tracer, engine.sync_engine, usage)

    async def shutdown(self, within: float = FLUSH_SECONDS) -> None:
        """Exports what is queued and stops the exporters, waiting at most `within` seconds.

        In a daemon thread: the SDK's shutdown blocks (up to the exporter's own timeout, with
        retries, when the collector is down); past the bound the process goes on without it."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def shut_down() -> None:
            try:
                self.provider.shutdown()
            except Exception:  # pragma: no cover - the SDK logs its own failures
                log.exception("tracing shutdown failed")
            finally:
                with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits
                    loop.call_soon_threadsafe(_resolve, done)

        threading.Thread(target=shut_down, name="tracing-shutdown", daemon=True).start()
        try:
            await asyncio.wait_for(asyncio.shield(done), within)
        except TimeoutError:
            log.warning("spans still queued were dropped at shutdown", extra={"seconds": within})


def _resolve(future: asyncio.Future[Any]) -> None:
    if not future.done():
        future.set_result(None)
