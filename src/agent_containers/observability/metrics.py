"""Prometheus metrics: every metric the service exports, and what records into each.

One `Metrics` per server instance, with its own registry: the parts of the service that record
get the piece they need (the gRPC observer, the upstream's, the reconciler's, the cache's...).
Nothing here is computed at scrape time: every value is recorded as it happens, which is what
multi-process mode needs (each process writes its values to files that the scrape reads).

Label values are always drawn from small fixed sets (methods, codes, operations, outcomes,
states, tiers, sources, reasons): never a tenant, a container, an agent or a file.

Several processes on one host (`PROMETHEUS_MULTIPROC_DIR` set before the process starts):
prometheus-client then keeps every value in memory-mapped files in that directory, one set per
process; whichever process answers a scrape reads all of them (MultiProcessCollector), so every
process serves the same, host-wide answer on one shared address (docs/runbook.md, Metrics).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import grpc
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    multiprocess,
)

from agent_containers.domain.containers import LIVE_STATUSES, MEMORY_TIERS
from agent_containers.domain.tools import FallbackReason, ToolSource
from agent_containers.observability.calls import CallKind, FinishedCall

MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"

# No `_created` series beside every counter and histogram: the text format would carry each as
# a gauge of its own, and go-grpc-prometheus has none (a process-wide switch of the library).
disable_created_metrics()  # type: ignore[no-untyped-call]

GO_DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""client_golang's DefBuckets, which go-grpc-prometheus's handling-time histogram uses."""

UPSTREAM_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
"""An upstream operation takes from tens of milliseconds to its whole budget (30 s by default,
the SDK's retries included)."""

PASS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)

NO_FALLBACK = "NONE"
"""The `fallback_reason` of a resolution that did not fall back."""

# Go's names of the status codes (codes.Code.String()), which go-grpc-prometheus puts in
# `grpc_code` and dashboards select on.
GO_CODE_NAMES: Mapping[grpc.StatusCode, str] = {
    grpc.StatusCode.OK: "OK",
    grpc.StatusCode.CANCELLED: "Canceled",
    grpc.StatusCode.UNKNOWN: "Unknown",
    grpc.StatusCode.INVALID_ARGUMENT: "InvalidArgument",
    grpc.StatusCode.DEADLINE_EXCEEDED: "DeadlineExceeded",
    grpc.StatusCode.NOT_FOUND: "NotFound",
    grpc.StatusCode.ALREADY_EXISTS: "AlreadyExists",
    grpc.StatusCode.PERMISSION_DENIED: "PermissionDenied",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "ResourceExhausted",
    grpc.StatusCode.FAILED_PRECONDITION: "FailedPrecondition",
    grpc.StatusCode.ABORTED: "Aborted",
    grpc.StatusCode.OUT_OF_RANGE: "OutOfRange",
    grpc.StatusCode.UNIMPLEMENTED: "Unimplemented",
    grpc.StatusCode.INTERNAL: "Internal",
    grpc.StatusCode.UNAVAILABLE: "Unavailable",
    grpc.StatusCode.DATA_LOSS: "DataLoss",
    grpc.StatusCode.UNAUTHENTICATED: "Unauthenticated",
}


def multiprocess_dir() -> str | None:
    """The multi-process directory, when the process was started with one.

    prometheus-client reads the variable once, when it is first imported: it must be in the
    environment the process starts with, not set later.
    """
    return os.environ.get(MULTIPROCESS_DIR_ENV) or None


# --- gRPC server ------------------------------------------------------------------------------


@dataclass(slots=True)
class _MethodSeries:
    """One method's children of the gRPC metrics, looked up once per call, not per metric."""

    started: Counter
    handling: Histogram
    received: Counter
    sent: Counter
    handled: dict[grpc.StatusCode, Counter] = field(default_factory=dict)


def split_method(method: str) -> tuple[str, str]:
    """`/pkg.Service/Method` -> (`pkg.Service`, `Method`), as go-grpc-prometheus splits it."""
    service, _, name = method.lstrip("/").partition("/")
    return (service, name) if name else ("unknown", method)


class GrpcServerMetrics:
    """The gRPC server metrics of go-grpc-prometheus, fed by the service interceptor.

    Every service method is registered at start with zeros (as its InitializeMetrics does), so
    rates and ratios exist before a method's first call.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ("grpc_type", "grpc_service", "grpc_method")
        self._started = Counter(
            "grpc_server_started_total",
            "Total number of RPCs started on the server.",
            labels,
            registry=registry,
        )
        self._handled = Counter(
            "grpc_server_handled_total",
            "Total number of RPCs completed on the server, regardless of success or failure.",
            (*labels, "grpc_code"),
            registry=registry,
        )
        self._received = Counter(
            "grpc_server_msg_received_total",
            "Total number of RPC stream messages received on the server.",
            labels,
            registry=registry,
        )
        self._sent = Counter(
            "grpc_server_msg_sent_total",
            "Total number of gRPC stream messages sent by the server.",
            labels,
            registry=registry,
        )
        self._handling = Histogram(
            "grpc_server_handling_seconds",
            "Histogram of response latency (seconds) of gRPC that had been application-level "
            "handled by the server.",
            labels,
            buckets=GO_DEFAULT_BUCKETS,
            registry=registry,
        )
        self._series: dict[str, _MethodSeries] = {}

    def register(self, methods: Iterable[tuple[str, CallKind]]) -> None:
        """Creates every method's series, every code of `grpc_server_handled_total` included."""
        for method, kind in methods:
            series = self._method(method, kind)
            for code in GO_CODE_NAMES:
                self._code(series, method, kind, code)

    def _method(self, method: str, kind: CallKind) -> _MethodSeries:
        series = self._series.get(method)
        if series is None:
            labels = (kind.value, *split_method(method))
            series = self._series[method] = _MethodSeries(
                started=self._started.labels(*labels),
                handling=self._handling.labels(*labels),
                received=self._received.labels(*labels),
                sent=self._sent.labels(*labels),
            )
        return series

    def _code(
        self, series: _MethodSeries, method: str, kind: CallKind, code: grpc.StatusCode
    ) -> Counter:
        counter = series.handled.get(code)
        if counter is None:
            labels = (kind.value, *split_method(method), GO_CODE_NAMES.get(code, "Unknown"))
            counter = series.handled[code] = self._handled.labels(*labels)
        return counter

    # CallObserver

    def call_started(self, method: str, kind: CallKind) -> None:
        self._method(method, kind).started.inc()

    def call_finished(self, call: FinishedCall) -> None:
        series = self._method(call.method, call.kind)
        self._code(series, call.method, call.kind, call.code).inc()
        series.handling.observe(call.seconds)
        if call.received:
            series.received.inc(call.received)
        if call.sent:
            series.sent.inc(call.sent)


# --- upstream ---------------------------------------------------------------------------------


class UpstreamMetrics:
    """Operations on the OpenAI Containers API, the HTTP requests they took, and file bytes."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._requests = Counter(
            "agent_containers_upstream_requests_total",
            "Operations on the OpenAI Containers API by outcome, each counted once whatever "
            "retries the SDK made.",
            ("operation", "outcome"),
            registry=registry,
        )
        self._duration = Histogram(
            "agent_containers_upstream_request_duration_seconds",
            "Time an upstream operation took, the SDK's retries included (for download_file, "
            "until the content starts).",
            ("operation",),
            buckets=UPSTREAM_BUCKETS,
            registry=registry,
        )
        self._retries = Counter(
            "agent_containers_upstream_retries_total",
            "HTTP requests the SDK sent again after a 429, a 5xx or a connection error.",
            ("operation",),
            registry=registry,
        )
        self._rate_limited = Counter(
            "agent_containers_upstream_rate_limited_total",
            "HTTP 429 answers from upstream, whether the SDK retried them or not.",
            ("operation",),
            registry=registry,
        )
        file_bytes = Counter(
            "agent_containers_file_bytes_total",
            "File content streamed to upstream (upload) and from upstream (download).",
            ("direction",),
            registry=registry,
        )
        self._uploaded = file_bytes.labels("upload")
        self._downloaded = file_bytes.labels("download")

    def register(self, operations: Iterable[str]) -> None:
        """Creates every operation's series at zero (its successes, retries and 429s)."""
        for operation in operations:
            self._requests.labels(operation, "ok")
            self._duration.labels(operation)
            self._retries.labels(operation)
            self._rate_limited.labels(operation)

    def finished(self, operation: str, outcome: str, seconds: float) -> None:
        self._requests.labels(operation, outcome).inc()
        self._duration.labels(operation).observe(seconds)

    def retried(self, operation: str) -> None:
        self._retries.labels(operation).inc()

    def rate_limited(self, operation: str) -> None:
        self._rate_limited.labels(operation).inc()

    def uploaded(self, size: int) -> None:
        self._uploaded.inc(size)

    def downloaded(self, size: int) -> None:
        self._downloaded.inc(size)


# --- the reconciler ---------------------------------------------------------------------------

RECONCILER_COUNTS = {
    "settled": "CREATING rows settled RUNNING because their container was found upstream "
    "(adopted orphans included).",
    "failed": "CREATING rows marked FAILED because upstream never made their container.",
    "refreshed": "RUNNING rows whose activity or expiry was brought in line with upstream.",
    "expired": "RUNNING rows marked EXPIRED because upstream says so or no longer has them.",
    "adopted": "Orphans upstream whose row was still CREATING, adopted by it.",
    "orphans_deleted": "Containers of ours upstream that no live row accounts for, deleted.",
    "orphans_reported": "Containers of ours upstream that no live row accounts for, only "
    "reported (AGENT_CONTAINERS_RECONCILER_ORPHANS=report).",
    "errors": "Failures during reconciliation passes (a row, a listing, a whole pass).",
}


class ReconcilerMetrics:
    """What the reconciler did, and the container counts its leader takes after each pass.

    The gauges of counts are written only by the process that runs the reconciler (the
    leader): select them with `and on(instance) agent_containers_reconciler_leader == 1`.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self._counts = {
            name: Counter(f"agent_containers_reconciler_{name}_total", help_text, registry=registry)
            for name, help_text in RECONCILER_COUNTS.items()
        }
        self._passes = Histogram(
            "agent_containers_reconciler_pass_duration_seconds",
            "Time a reconciliation pass took.",
            buckets=PASS_BUCKETS,
            registry=registry,
        )
        self._last_success = Gauge(
            "agent_containers_reconciler_last_success_timestamp_seconds",
            "When the last pass without an error ended (Unix time); 0 before the first.",
            multiprocess_mode="livemax",
            registry=registry,
        )
        self._leader = Gauge(
            "agent_containers_reconciler_leader",
            "1 while this process runs the reconciler (one process across replicas), else 0.",
            multiprocess_mode="livesum",
            registry=registry,
        )
        self._unsettled = Gauge(
            "agent_containers_reconciler_unsettled_creating",
            "CREATING rows whose create outcome was still unknown at the last pass.",
            multiprocess_mode="livemostrecent",
            registry=registry,
        )
        self._containers = Gauge(
            "agent_containers_containers",
            "Live containers (CREATING, RUNNING) by state and memory tier, counted by the "
            "reconciler's leader after each pass.",
            ("state", "memory_tier"),
            multiprocess_mode="livemostrecent",
            registry=registry,
        )
        self._tenants_at_quota = Gauge(
            "agent_containers_tenants_at_quota",
            "Tenants holding their whole quota of live containers, counted by the "
            "reconciler's leader after each pass.",
            multiprocess_mode="livemostrecent",
            registry=registry,
        )

    def leading(self, leads: bool) -> None:
        self._leader.set(1 if leads else 0)

    def failed(self) -> None:
        """A pass that failed as a whole."""
        self._counts["errors"].inc()

    def pass_finished(
        self, counts: Mapping[str, int], seconds: float, succeeded_at: float | None
    ) -> None:
        """`counts`: the pass's report; `succeeded_at`: when it ended, if without an error."""
        for name, value in counts.items():
            if name == "unknown":
                self._unsettled.set(value)
            elif value:
                self._counts[name].inc(value)
        self._passes.observe(seconds)
        if succeeded_at is not None:
            self._last_success.set(succeeded_at)

    def counted(self, live: Mapping[tuple[str, str], int], tenants_at_quota: int) -> None:
        """Live containers by (state, tier): every pair is set, zeros included."""
        zeros = {(state.value, tier): 0 for state in LIVE_STATUSES for tier in MEMORY_TIERS}
        for (state, tier), value in (zeros | dict(live)).items():
            self._containers.labels(state, tier).set(value)
        self._tenants_at_quota.set(tenants_at_quota)


# --- tool resolution --------------------------------------------------------------------------


class Countable(Protocol):
    def inc(self, amount: float = 1) -> None: ...


class _Uncounted:
    """Stands for a per-call counter that nothing would ever read (Metrics(per_call=False))."""

    def inc(self, amount: float = 1) -> None:
        pass


UNCOUNTED: Countable = _Uncounted()


class CacheSeries:
    """The counters of one map of the resolution cache."""

    __slots__ = ("evicted", "hit", "missed")

    def __init__(self, cache: CacheMetrics, name: str) -> None:
        per_call = cache.per_call
        self.hit: Countable = cache._hits.labels(name) if per_call else UNCOUNTED
        self.missed: Countable = cache._misses.labels(name) if per_call else UNCOUNTED
        self.evicted = {reason: cache._evictions.labels(name, reason) for reason in EVICTIONS}


EVICTIONS = ("invalidated", "reset", "full")
"""Why entries leave the cache: a write changed them (here or, by notification, elsewhere);
the notification channel connected or dropped (everything goes); the cache was full."""


class CacheMetrics:
    """The resolution cache: hits, misses, evictions, and whether it serves at all (hits and
    misses only `per_call`)."""

    def __init__(self, registry: CollectorRegistry, *, per_call: bool = True) -> None:
        self.per_call = per_call
        self._hits = Counter(
            "agent_containers_resolution_cache_hits_total",
            "Resolution cache lookups answered from memory.",
            ("cache",),
            registry=registry,
        )
        self._misses = Counter(
            "agent_containers_resolution_cache_misses_total",
            "Resolution cache lookups that read the database.",
            ("cache",),
            registry=registry,
        )
        self._evictions = Counter(
            "agent_containers_resolution_cache_evictions_total",
            "Entries removed from the resolution cache, by reason.",
            ("cache", "reason"),
            registry=registry,
        )
        self._serving = Gauge(
            "agent_containers_resolution_cache_serving",
            "1 while the resolution cache serves; 0 while its PostgreSQL notification channel "
            "is down (every resolution then reads the database).",
            multiprocess_mode="livemin",
            registry=registry,
        )

    def series(self, name: str) -> CacheSeries:
        return CacheSeries(self, name)

    def serving(self, serves: bool) -> None:
        self._serving.set(1 if serves else 0)


class ResolutionMetrics:
    """Tool resolutions an agent runs with, by source and fallback reason (only `per_call`)."""

    def __init__(self, registry: CollectorRegistry, *, per_call: bool = True) -> None:
        self._per_call = per_call
        self._resolutions = Counter(
            "agent_containers_resolutions_total",
            "Tools resolved for agent runs (ResolveTool, BatchResolveTools), by where the "
            f"container came from and why it fell back to auto ({NO_FALLBACK}: it did not).",
            ("source", "fallback_reason"),
            registry=registry,
        )
        self._children: dict[tuple[ToolSource, FallbackReason | None], Counter] = {}
        for source in ToolSource:
            self._child(source, None)
        for reason in FallbackReason:
            self._child(ToolSource.AUTO, reason)

    def _child(self, source: ToolSource, reason: FallbackReason | None) -> Counter:
        child = self._children.get((source, reason))
        if child is None:
            label = NO_FALLBACK if reason is None else reason.value
            child = self._children[(source, reason)] = self._resolutions.labels(source.value, label)
        return child

    def resolved(self, source: ToolSource, reason: FallbackReason | None) -> None:
        if self._per_call:
            self._child(source, reason).inc()


# --- everything -------------------------------------------------------------------------------


class Metrics:
    """Every metric of one server instance, in a registry of its own.

    Without `per_call` (no endpoint serves them: AGENT_CONTAINERS_METRICS_LISTEN_ADDRESS is
    empty), what would be recorded on every call is not: the gRPC server metrics (the service
    interceptor is given no observer for them), resolutions, and cache hits and misses. The
    rest costs nothing on a call's path and is kept all the same.
    """

    def __init__(self, *, per_call: bool = True) -> None:
        self.per_call = per_call
        self.multiprocess_dir = multiprocess_dir()
        if self.multiprocess_dir is not None and not os.path.isdir(self.multiprocess_dir):
            raise ValueError(
                f"{MULTIPROCESS_DIR_ENV}={self.multiprocess_dir} is not a directory: create it "
                "(empty) before the processes start"
            )
        self.registry = CollectorRegistry()
        if self.multiprocess_dir is None:
            # Per-process facts; in multi-process mode prometheus-client cannot merge them.
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
            GCCollector(registry=self.registry)
        self.grpc = GrpcServerMetrics(self.registry)
        self.upstream = UpstreamMetrics(self.registry)
        self.reconciler = ReconcilerMetrics(self.registry)
        self.cache = CacheMetrics(self.registry, per_call=per_call)
        self.resolutions = ResolutionMetrics(self.registry, per_call=per_call)
        self.quota_refusals = Counter(
            "agent_containers_quota_refusals_total",
            "Container creates refused because the tenant held its quota of live containers.",
            registry=self.registry,
        )

    def exposition(self) -> CollectorRegistry:
        """What a scrape collects: this registry, or, in multi-process mode, every process's
        files in the directory."""
        if self.multiprocess_dir is None:
            return self.registry
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
        return registry

    def process_stopped(self) -> None:
        """In multi-process mode: this process's live gauges leave the scrape."""
        if self.multiprocess_dir is not None:
            multiprocess.mark_process_dead(os.getpid(), self.multiprocess_dir)  # type: ignore[no-untyped-call]
