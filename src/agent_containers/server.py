"""Assembly: settings -> database, upstream, services, servicers, and one grpc.aio server."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import time
from datetime import timedelta

import grpc
from agentcontainers.v1 import (
    binding_service_pb2,
    binding_service_pb2_grpc,
    container_service_pb2,
    container_service_pb2_grpc,
    tool_service_pb2,
    tool_service_pb2_grpc,
)
from grpc_health.v1 import _async as health_aio
from grpc_health.v1 import health, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from agent_containers.api.bindings import AgentBindingServicer
from agent_containers.api.containers import ContainerServicer
from agent_containers.api.draining import ShutdownGate
from agent_containers.api.files import ContainerFileServicer
from agent_containers.api.health import HealthReporter
from agent_containers.api.interceptor import ServiceInterceptor
from agent_containers.api.tools import ToolResolutionServicer
from agent_containers.config import OrphanPolicy, Settings
from agent_containers.detached import Detached
from agent_containers.domain.clock import Clock, SystemClock
from agent_containers.domain.containers import ContainerPolicy
from agent_containers.domain.tools import ResolutionPolicy
from agent_containers.observability.access_log import AccessLog
from agent_containers.observability.calls import CallKind, CallObserver
from agent_containers.observability.endpoint import MetricsEndpoint
from agent_containers.observability.metrics import Metrics
from agent_containers.observability.tracing import Tracing, TracingConfig
from agent_containers.services.bindings import BindingService
from agent_containers.services.container_creation import ContainerCreation
from agent_containers.services.container_refresh import ContainerRefresh
from agent_containers.services.containers import ContainerService
from agent_containers.services.files import ContainerFileService
from agent_containers.services.readiness import Readiness
from agent_containers.services.reconciler import Reconciler
from agent_containers.services.resolution_cache import ResolutionCache
from agent_containers.services.tools import ToolResolutionService
from agent_containers.store.database import create_engine, create_session_factory, is_postgresql
from agent_containers.store.leadership import Leadership
from agent_containers.store.migrations import upgrade_to_head
from agent_containers.store.notifications import InvalidationListener
from agent_containers.store.unit_of_work import UnitOfWork
from agent_containers.upstream.emulator import EmulatorServer
from agent_containers.upstream.gateway import ContainersGateway

log = logging.getLogger(__name__)

QUIET_SECONDS = 0.1
"""At shutdown, the gRPC server stops once no call has arrived (to be refused) for this long."""

HOLD_SECONDS = 0.1
"""Before and after the gRPC server's own stop() starts, new calls are held this long (see
ShutdownGate.hold): time for the last refusals' answers to reach their clients, and then for the
server's GOAWAY to reach every client, before the held calls are refused."""

STOP_SECONDS = 1.0
"""What the gRPC server's own stop() waits for the calls still open when it is called (held
refusals, health watches, reflection streams, calls past the grace) before it cancels them."""

READINESS_PERIOD_SECONDS = 2.0
"""How often readiness probes the database (and the bound on one probe); the cache channel is
followed at once. A Kubernetes readiness probe every 5 to 10 s sees a change within one."""

SERVICES = (
    container_service_pb2.DESCRIPTOR.services_by_name["ContainerService"],
    binding_service_pb2.DESCRIPTOR.services_by_name["AgentBindingService"],
    tool_service_pb2.DESCRIPTOR.services_by_name["ToolResolutionService"],
)
SERVICE_NAMES = tuple(service.full_name for service in SERVICES)


def service_methods() -> list[tuple[str, CallKind]]:
    """Every service method's full name and shape."""
    kinds = {
        (False, False): CallKind.UNARY,
        (True, False): CallKind.CLIENT_STREAM,
        (False, True): CallKind.SERVER_STREAM,
        (True, True): CallKind.BIDI_STREAM,
    }
    return [
        (
            f"/{service.full_name}/{method.name}",
            kinds[method.client_streaming, method.server_streaming],
        )
        for service in SERVICES
        for method in service.methods
    ]


def _channel_options(settings: Settings) -> list[tuple[str, int]]:
    return [
        ("grpc.max_send_message_length", settings.max_message_bytes),
        (
            "grpc.max_receive_message_length",
            min(settings.max_request_bytes, settings.max_message_bytes),
        ),
        # Ping idle connections so dead peers (and dropped NAT entries) are found in ~80 s.
        ("grpc.keepalive_time_ms", 60_000),
        ("grpc.keepalive_timeout_ms", 20_000),
        ("grpc.keepalive_permit_without_calls", 1),
        # Accept client pings as often as every 10 s instead of answering with GOAWAY.
        ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
        ("grpc.http2.max_pings_without_data", 0),
        # Recycle connections now and then so clients rebalance across replicas.
        ("grpc.max_connection_age_ms", 30 * 60_000),
        ("grpc.max_connection_age_grace_ms", 60_000),
    ]


class AgentContainersServer:
    """The service in one process: start() binds and serves, stop() drains and releases.

    With `tracing`, its calls, SQL statements and upstream operations are traced (see
    observability/tracing.py); stop() flushes and shuts it down. Without, nothing is installed.
    """

    def __init__(
        self, settings: Settings, *, clock: Clock | None = None, tracing: Tracing | None = None
    ) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.tracing = tracing
        self.port = 0
        self.emulator: EmulatorServer | None = None
        self.health = health_aio.HealthServicer()
        self.gate = ShutdownGate()
        self._engine = create_engine(settings.database_url)
        if tracing is not None:
            tracing.instrument(self._engine)
        self._gateway: ContainersGateway | None = None
        self.containers: ContainerService | None = None
        self.reconciler: Reconciler | None = None
        self._uow: UnitOfWork | None = None
        # Creates and deletes that go on after their callers hung up.
        self._detached = Detached()
        self._server: grpc.aio.Server | None = None
        self.metrics = Metrics(per_call=settings.metrics_endpoint is not None)
        self._metrics_endpoint: MetricsEndpoint | None = None
        self.metrics_port: int | None = None
        # Several processes can share PostgreSQL: they keep each other's caches coherent.
        shared = is_postgresql(self._engine)
        self.cache = ResolutionCache(
            max_age_seconds=settings.resolution_cache_max_age_seconds,
            shared=shared,
            metrics=self.metrics.cache,
        )
        self._listener = (
            InvalidationListener(
                settings.database_url, self.cache.on_notification, self._on_cache_channel
            )
            if shared
            else None
        )
        self._health_reporter: HealthReporter | None = None
        self._access_log: AccessLog | None = None

    async def start(self, *, migrate: bool = True) -> int:
        """Migrates the database (unless told not to), binds and serves; returns the port."""
        settings = self.settings
        if migrate:
            await upgrade_to_head(settings.database_url)
        self._gateway = await self._connect_upstream()
        if self._listener is not None:
            self._listener.start()
        uow = self._uow = UnitOfWork(create_session_factory(self._engine), self.cache.evict)
        budgets = settings.budgets
        refresh = ContainerRefresh(uow, self._gateway, self.clock)
        creation = ContainerCreation(
            uow,
            self._gateway,
            ContainerPolicy(
                default_memory_tier=settings.default_memory_tier,
                allowed_memory_tiers=tuple(settings.allowed_memory_tiers),
                default_expiry_minutes=settings.default_expiry_minutes,
                max_expiry_minutes=settings.max_expiry_minutes,
                max_containers=settings.max_containers_per_tenant,
                allowed_network_domains=tuple(settings.allowed_network_domains),
            ),
            self.clock,
            budgets,
            self._detached,
            quota_refusals=self.metrics.quota_refusals,
        )
        self.containers = ContainerService(
            uow,
            self._gateway,
            creation,
            refresh,
            self.clock,
            self._detached,
            refresh_staleness=timedelta(seconds=settings.refresh_staleness_seconds),
        )
        bindings = BindingService(uow, self.containers, self.clock)
        tools = ToolResolutionService(
            uow,
            self.containers,
            bindings,
            refresh,
            self.cache,
            ResolutionPolicy(
                auto_memory_tier=settings.auto_memory_tier,
                allowed_memory_tiers=tuple(settings.allowed_memory_tiers),
                fallback_policy=settings.fallback_policy,
                expiry_margin=timedelta(seconds=settings.expiry_safety_margin_seconds),
            ),
            self.clock,
            liveness_max_age=timedelta(seconds=settings.liveness_max_age_seconds),
            upstream_available=not settings.uses_emulator,
            metrics=self.metrics.resolutions,
        )
        self.reconciler = Reconciler(
            uow,
            self._gateway,
            creation,
            refresh,
            Leadership(settings.database_url),
            self.clock,
            budgets,
            period_seconds=settings.reconciler_period_seconds,
            outcome_window=timedelta(seconds=settings.create_outcome_window_seconds),
            delete_orphans=settings.reconciler_orphans is OrphanPolicy.DELETE,
            tenant_quota=settings.max_containers_per_tenant,
            metrics=self.metrics.reconciler,
            tracer=self.tracing.tracer if self.tracing is not None else None,
        )
        self.metrics.grpc.register(service_methods())
        observers: list[CallObserver] = [self.metrics.grpc] if self.metrics.per_call else []
        if settings.access_log:
            self._access_log = AccessLog(traced=self.tracing is not None)
            observers.append(self._access_log)
        # Tracing's interceptor outermost: its span is the current one in the gate, in the
        # service interceptor and in the servicers (refused calls are traced too).
        tracing_interceptors = [self.tracing.server_interceptor()] if self.tracing else []
        server = grpc.aio.server(
            interceptors=[*tracing_interceptors, self.gate, ServiceInterceptor(observers)],
            options=_channel_options(settings),
        )
        files = ContainerFileService(
            uow,
            self._gateway,
            refresh,
            self.clock,
            self._detached,
            max_upload_bytes=settings.max_upload_bytes,
        )
        container_service_pb2_grpc.add_ContainerServiceServicer_to_server(
            ContainerServicer(self.containers, ContainerFileServicer(files)), server
        )
        binding_service_pb2_grpc.add_AgentBindingServiceServicer_to_server(
            AgentBindingServicer(bindings), server
        )
        tool_service_pb2_grpc.add_ToolResolutionServiceServicer_to_server(
            ToolResolutionServicer(tools), server
        )
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        reflection.enable_server_reflection(
            (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server
        )
        await self._start_metrics()
        self.port = server.add_insecure_port(settings.listen_address)  # raises when it cannot
        await server.start()
        self._server = server
        if self._listener is not None:  # ready once the channel is: give it a moment
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._listener.connected.wait(), READINESS_PERIOD_SECONDS)
        self._health_reporter = HealthReporter(
            self.health,
            Readiness(
                uow,
                lambda: self.cache.serving,
                probe_timeout_seconds=READINESS_PERIOD_SECONDS,
            ),
            ("", *SERVICE_NAMES),
            period_seconds=READINESS_PERIOD_SECONDS,
        )
        await self._health_reporter.start()
        self.reconciler.start()
        log.info(
            "serving",
            extra={
                "address": settings.listen_address,
                "port": self.port,
                "metrics_address": settings.metrics_listen_address,
                "metrics_port": self.metrics_port,
            },
        )
        return self.port

    def _on_cache_channel(self, connected: bool) -> None:
        self.cache.on_listener(connected)
        if self._health_reporter is not None:
            self._health_reporter.poke()  # readiness follows the channel at once

    async def _start_metrics(self) -> None:
        """The /metrics endpoint, unless the setting is empty; raises when it cannot bind."""
        endpoint = self.settings.metrics_endpoint
        if endpoint is None:
            return
        host, port = endpoint
        self._metrics_endpoint = MetricsEndpoint(
            host,
            port,
            self.metrics.exposition(),
            # Processes sharing a multi-process directory give the same answer: they may share
            # the address too. Otherwise a second process there would answer with its own.
            share_port=self.metrics.multiprocess_dir is not None,
        )
        self.metrics_port = await self._metrics_endpoint.start()

    async def wait_detached(self) -> None:
        """Waits for creates and deletes whose callers hung up."""
        await self._detached.wait()

    async def _connect_upstream(self) -> ContainersGateway:
        settings = self.settings
        tracer = self.tracing.tracer if self.tracing is not None else None
        if settings.uses_emulator:
            self.emulator = EmulatorServer(clock=self.clock)
            await self.emulator.start()
            log.warning(
                "No OPENAI_API_KEY: using the in-process emulator of the OpenAI Containers API. "
                "No real containers are created.",
                extra={"emulator_url": self.emulator.base_url},
            )
            return ContainersGateway.connect(
                api_key="emulator",
                base_url=self.emulator.base_url,
                timeout_seconds=settings.openai_timeout_seconds,
                max_retries=settings.openai_max_retries,
                metrics=self.metrics.upstream,
                tracer=tracer,
            )
        assert settings.openai_api_key is not None
        return ContainersGateway.connect(
            api_key=settings.openai_api_key.get_secret_value(),
            base_url=settings.openai_base_url,
            timeout_seconds=settings.openai_timeout_seconds,
            max_retries=settings.openai_max_retries,
            metrics=self.metrics.upstream,
            tracer=tracer,
        )

    async def stop(self, *, drain_seconds: float = 0.0) -> None:
        """Stops without dropping a call, then releases everything.

        Health goes NOT_SERVING at once; calls are served as usual for `drain_seconds` (serve()
        gives the setting, so balancers move away; tests and embedders have none to wait for);
        then the gate refuses new calls with UNAVAILABLE while the calls in flight get the grace
        to finish. Only then, or when the grace runs out, is the gRPC server stopped: its own
        stop() would cancel calls it had accepted but not yet dispatched.
        """
        began = time.monotonic()
        grace = self.settings.grace_seconds
        log.info("shutting down", extra={"drain_seconds": drain_seconds, "grace_seconds": grace})
        await self.health.enter_graceful_shutdown()
        if self._health_reporter is not None:
            await self._health_reporter.stop()
        cut_off = 0
        if self._server is not None:
            await asyncio.sleep(drain_seconds)
            self.gate.close()
            log.info("refusing new calls", extra={"in_flight": self.gate.in_flight})
            await self.gate.settled(quiet=QUIET_SECONDS, within=grace)
            cut_off = self.gate.in_flight  # still running when the grace ran out: cancelled
            self.gate.hold()
            await asyncio.sleep(HOLD_SECONDS)
            stopping = asyncio.create_task(self._server.stop(STOP_SECONDS))
            await asyncio.sleep(HOLD_SECONDS)
            self.gate.release()
            await stopping
        if self.reconciler is not None:
            await self.reconciler.stop()
        await self.wait_detached()  # creates and deletes whose callers hung up
        if self._uow is not None:
            await self._uow.wait_idle()
        if self._listener is not None:
            await self._listener.stop()
        if self._gateway is not None:
            await self._gateway.aclose()
        if self.emulator is not None:
            await self.emulator.stop()
        await self._engine.dispose()
        if self.tracing is not None:
            await self.tracing.shutdown()  # what is still queued goes out, within a bound
        if self._metrics_endpoint is not None:  # last: scrapes see the shutdown through
            await self._metrics_endpoint.stop()
        self.metrics.process_stopped()
        if self._access_log is not None:
            self._access_log.close()
        log.info(
            "stopped",
            extra={
                "refused_calls": self.gate.refused,
                "cut_off_calls": cut_off,
                "seconds": round(time.monotonic() - began, 3),
            },
        )


def freeze_startup_objects() -> None:
    """What start-up loaded (modules, stubs, settings) lives as long as the process: moved out
    of the collector's sight, a full collection no longer pauses every call for tens of
    milliseconds to scan it (`make stall` measures it)."""
    gc.collect()
    gc.freeze()


async def serve(settings: Settings, tracing: TracingConfig | None = None) -> None:
    """Runs the service until SIGTERM or SIGINT, then shuts down gracefully (see stop()).
    Traced when `tracing` (read from the OTEL_* environment) is given."""
    if tracing is not None:
        log.info(
            "tracing on",
            extra={"exporters": ",".join(tracing.exporters), "protocol": tracing.protocol},
        )
    server = AgentContainersServer(
        settings, tracing=Tracing.from_config(tracing) if tracing is not None else None
    )
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    try:
        await server.start()
        freeze_startup_objects()
        await stopping.wait()
    finally:
        await server.stop(drain_seconds=settings.shutdown_drain_seconds)
