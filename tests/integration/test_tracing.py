"""OpenTelemetry traces, as a collector receives them: `serve` configured by the standard OTEL_*
environment exports over OTLP (gRPC and HTTP) to a receiver the test runs, on both databases.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import grpc
import pytest
from agentcontainers.v1 import container_pb2, container_service_pb2, container_service_pb2_grpc
from aiohttp import web
from sqlalchemy import text

from agent_containers.domain.containers import upstream_name
from agent_containers.observability.tracing import Tracing
from agent_containers.store.database import create_engine
from agent_containers.upstream.emulator import EmulatorServer
from tests.integration.conftest import StartService
from tests.integration.test_files import download, upload
from tests.support.databases import sqlite_url
from tests.support.otlp import (
    CLIENT,
    INTERNAL,
    SERVER,
    STATUS_ERROR,
    OtlpGrpcReceiver,
    OtlpHttpReceiver,
    ReceivedSpan,
    SpanSink,
    descends_from,
)
from tests.support.processes import CLI, clean_env, free_port, spawned, wait_serving
from tests.support.service import RunningService, error_info, identity

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"
CALLER_BAGGAGE = "user.email=alice%40example.com"
CREATE = "/agentcontainers.v1.ContainerService/CreateContainer"
LIST = "/agentcontainers.v1.ContainerService/ListContainers"
UPLOAD = "/agentcontainers.v1.ContainerService/UploadContainerFile"
DOWNLOAD = "/agentcontainers.v1.ContainerService/DownloadContainerFile"
CONTENT = "openai containers.files.content"
RECEIVERS: dict[str, type[OtlpGrpcReceiver] | type[OtlpHttpReceiver]] = {
    "grpc": OtlpGrpcReceiver,
    "http/protobuf": OtlpHttpReceiver,
}


def traced_call() -> tuple[tuple[str, str], ...]:
    """A caller's metadata: identity, and its trace context as W3C headers."""
    return (*identity(), ("traceparent", TRACEPARENT), ("baggage", CALLER_BAGGAGE))


@contextlib.asynccontextmanager
async def recording_emulator() -> AsyncIterator[tuple[EmulatorServer, list[web.Request]]]:
    """An emulator that keeps every request it answered (for their headers)."""
    emulator = EmulatorServer()
    requests: list[web.Request] = []

    async def seen(request: web.Request, response: web.StreamResponse) -> None:
        requests.append(request)

    emulator.app.on_response_prepare.append(seen)
    async with emulator:
        yield emulator, requests


def serve_env(
    address: str, database_url: str, emulator: EmulatorServer, **otel: str
) -> dict[str, str]:
    return clean_env(
        AGENT_CONTAINERS_LISTEN_ADDRESS=address,
        AGENT_CONTAINERS_DATABASE_URL=database_url,
        AGENT_CONTAINERS_UPSTREAM="openai",
        AGENT_CONTAINERS_OPENAI_API_KEY="test-key",
        AGENT_CONTAINERS_OPENAI_BASE_URL=emulator.base_url,
        AGENT_CONTAINERS_RECONCILER_PERIOD_SECONDS="3600",
        AGENT_CONTAINERS_SHUTDOWN_DRAIN_SECONDS="0",
        **otel,
    )


async def create_traced(address: str, name: str) -> container_pb2.Container:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = container_service_pb2_grpc.ContainerServiceStub(channel)
        created: container_pb2.Container = await stub.CreateContainer(
            container_service_pb2.CreateContainerRequest(
                container=container_pb2.Container(name=name)
            ),
            metadata=traced_call(),
        )
    return created


def has(name: str) -> Callable[[list[ReceivedSpan]], bool]:
    return lambda spans: any(span.name == name for span in spans)


@pytest.mark.parametrize("protocol", RECEIVERS)
async def test_a_create_is_one_trace_in_the_callers_trace(
    protocol: str, database_url: str, database_backend: str, tmp_path: Path
) -> None:
    address = f"127.0.0.1:{free_port()}"
    async with RECEIVERS[protocol]() as receiver, recording_emulator() as (emulator, requests):
        env = serve_env(
            address,
            database_url,
            emulator,
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
            OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
            OTEL_BSP_SCHEDULE_DELAY="100",
        )
        async with spawned(
            *CLI, "serve", cwd=tmp_path, env=env, stderr=asyncio.subprocess.PIPE
        ) as child:
            await wait_serving(address, child)
            created = await create_traced(address, "traced")
            # The server span ends last, and batches arrive in order: its children are in.
            spans = await receiver.wait_for(has(CREATE))
        assert child.returncode == 0, child.stderr.decode()

        # Everything exported is the one trace, the caller's.
        assert {span.trace_id for span in spans} == {CALLER_TRACE}
        (server,) = receiver.named(CREATE)
        assert server.kind == SERVER
        assert server.parent_span_id == CALLER_SPAN
        assert server.attributes["rpc.system"] == "grpc"
        assert server.attributes["rpc.service"] == "agentcontainers.v1.ContainerService"
        assert server.attributes["rpc.method"] == "CreateContainer"
        assert server.attributes["rpc.grpc.status_code"] == grpc.StatusCode.OK.value[0]
        assert server.attributes["net.peer.ip"] == "127.0.0.1"
        assert server.attributes["rpc.user_agent"].startswith("grpc-python")
        assert server.status_code != STATUS_ERROR
        assert server.resource["service.name"] == "agent-containers"
        others = [span for span in spans if span is not server]
        assert all(descends_from(span, server, spans) for span in others), others

        sql = [span for span in others if "db.system" in span.attributes]
        assert sql
        assert all(span.kind == CLIENT for span in sql)
        assert {span.attributes["db.system"] for span in sql} == {database_backend}
        assert any(span.name.startswith("INSERT") for span in sql)

        (upstream,) = receiver.named("openai containers.create")
        assert upstream.kind == CLIENT
        assert upstream.attributes["http.request.method"] == "POST"
        assert upstream.attributes["server.address"] == "127.0.0.1"
        assert upstream.attributes["server.port"] == emulator.port
        name = upstream_name(uuid.UUID(created.id))
        assert upstream.attributes["openai.container.name"] == name
        assert not any(descends_from(span, upstream, spans) for span in sql)

        # Upstream got the trace context of that span, and none of the caller's baggage.
        (posted,) = [r for r in requests if r.method == "POST" and r.path == "/v1/containers"]
        assert posted.headers["traceparent"] == f"00-{CALLER_TRACE}-{upstream.span_id}-01"
        assert "baggage" not in posted.headers
        if protocol == "http/protobuf":
            assert isinstance(receiver, OtlpHttpReceiver)
            assert set(receiver.content_types) == {"application/x-protobuf"}
    log = child.stderr.decode()
    assert '"message": "tracing on"' in log
    assert f'"protocol": "{protocol}"' in log


async def test_spans_still_queued_at_sigterm_are_flushed(tmp_path: Path) -> None:
    address = f"127.0.0.1:{free_port()}"
    database_url = sqlite_url(tmp_path / "db" / "traced.db")
    async with OtlpGrpcReceiver() as receiver, recording_emulator() as (emulator, _):
        env = serve_env(
            address,
            database_url,
            emulator,
            OTEL_TRACES_EXPORTER="otlp",
            OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=receiver.endpoint,
            OTEL_BSP_SCHEDULE_DELAY="3600000",  # nothing is sent before the process stops
        )
        async with spawned(
            *CLI, "serve", cwd=tmp_path, env=env, stderr=asyncio.subprocess.PIPE
        ) as child:
            await wait_serving(address, child)
            await create_traced(address, "flushed")
        assert child.returncode == 0, child.stderr.decode()
        assert receiver.named(CREATE)
        assert receiver.named("openai containers.create")


@pytest.mark.parametrize(
    "off",
    [{"OTEL_TRACES_EXPORTER": "none"}, {"OTEL_SDK_DISABLED": "true"}, {}],
    ids=["exporter-none", "sdk-disabled", "nothing-set"],
)
async def test_tracing_off_exports_nothing(off: dict[str, str], tmp_path: Path) -> None:
    address = f"127.0.0.1:{free_port()}"
    database_url = sqlite_url(tmp_path / "db" / "untraced.db")
    async with OtlpGrpcReceiver() as receiver, recording_emulator() as (emulator, requests):
        # An endpoint is set, as a platform might set it for every process, except without one.
        endpoint = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint} if off else {}
        env = serve_env(address, database_url, emulator, **endpoint, **off)
        async with spawned(
            *CLI, "serve", cwd=tmp_path, env=env, stderr=asyncio.subprocess.PIPE
        ) as child:
            await wait_serving(address, child)
            await create_traced(address, "untraced")
        assert child.returncode == 0, child.stderr.decode()
    assert receiver.requests == 0  # not even at stop, when a provider would flush
    assert "traceparent" not in requests[-1].headers  # nothing injected upstream either
    assert "tracing on" not in child.stderr.decode()


async def test_an_unknown_exporter_stops_serve_with_a_message(tmp_path: Path) -> None:
    env = clean_env(OTEL_TRACES_EXPORTER="zipkin")
    async with spawned(
        *CLI, "serve", cwd=tmp_path, env=env, stderr=asyncio.subprocess.PIPE
    ) as child:
        assert await child.exited(within=30) != 0
    assert "OTEL_TRACES_EXPORTER" in child.stderr.decode()


# --- in process: the same instrumentation, exporting to a receiver in the test ----------------


@pytest.fixture
async def receiver() -> AsyncIterator[OtlpGrpcReceiver]:
    """Set up before the service (so torn down after it: the service flushes at its stop)."""
    async with OtlpGrpcReceiver() as started:
        yield started


@pytest.fixture
async def traced(
    receiver: OtlpGrpcReceiver, start_service: StartService, monkeypatch: pytest.MonkeyPatch
) -> RunningService:
    """A server traced as `serve` would be with OTEL_EXPORTER_OTLP_ENDPOINT set."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    tracing = Tracing.from_env()
    assert tracing is not None
    return await start_service(tracing=tracing)


async def drop_tables(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("DROP TABLE agent_containers"))
            await connection.execute(text("DROP TABLE containers"))
    finally:
        await engine.dispose()


async def internal_error_trace_id(
    service: RunningService, database_url: str, metadata: tuple[tuple[str, str], ...]
) -> str:
    """The trace id of the INTERNAL error a call gets once the tables are gone."""
    await drop_tables(database_url)
    with pytest.raises(grpc.aio.AioRpcError) as broken:
        await service.containers.ListContainers(
            container_service_pb2.ListContainersRequest(), metadata=metadata
        )
    assert broken.value.code() == grpc.StatusCode.INTERNAL
    trace_id: str = error_info(broken.value).metadata["trace_id"]
    assert len(trace_id) == 32
    return trace_id


async def test_an_internal_error_names_the_callers_trace(
    traced: RunningService, receiver: SpanSink, migrated_database_url: str
) -> None:
    await drop_tables(migrated_database_url)
    with pytest.raises(grpc.aio.AioRpcError) as broken:
        await traced.containers.ListContainers(
            container_service_pb2.ListContainersRequest(), metadata=traced_call()
        )
    assert broken.value.code() == grpc.StatusCode.INTERNAL
    assert error_info(broken.value).metadata["trace_id"] == CALLER_TRACE
    assert CALLER_TRACE in (broken.value.details() or "")
    spans = await receiver.wait_for(has(LIST))
    (server,) = receiver.named(LIST)
    assert server.status_code == STATUS_ERROR
    assert server.attributes["rpc.grpc.status_code"] == grpc.StatusCode.INTERNAL.value[0]
    assert "exception" in server.events
    failed_sql = [s for s in spans if "db.system" in s.attributes and s.status_code == STATUS_ERROR]
    assert failed_sql
    assert all(descends_from(span, server, spans) for span in failed_sql)


async def test_untraced_an_internal_error_has_a_trace_id_of_its_own(
    service: RunningService, migrated_database_url: str
) -> None:
    """No tracing, no interceptor: the caller's traceparent is not even read."""
    assert service.server.tracing is None
    trace_id = await internal_error_trace_id(service, migrated_database_url, traced_call())
    assert trace_id != CALLER_TRACE


async def test_file_streams_are_traced_and_the_upstream_span_is_theirs_alone(
    traced: RunningService, receiver: SpanSink
) -> None:
    container = await traced.create("files")
    uploaded = await upload(traced, container.id, "input.bin", b"x" * 200_000)
    _, content, _ = await download(traced, container.id, uploaded.id)
    assert len(content) == 200_000
    spans = await receiver.wait_for(lambda spans: has(UPLOAD)(spans) and has(DOWNLOAD)(spans))

    (upload_span,) = receiver.named(UPLOAD)
    assert upload_span.parent_span_id == ""  # no traceparent: the call starts its own trace
    (created,) = receiver.named("openai containers.files.create")
    assert created.parent_span_id == upload_span.span_id
    assert created.attributes["openai.container.id"] == container.openai_container_id
    assert created.attributes["openai.file.id"] == uploaded.id

    (download_span,) = receiver.named(DOWNLOAD)
    (fetched,) = receiver.named("openai containers.files.content")
    (described,) = receiver.named("openai containers.files.retrieve")
    assert fetched.parent_span_id == download_span.span_id
    assert described.parent_span_id == download_span.span_id
    assert fetched.attributes["openai.file.id"] == uploaded.id
    upstream = [span for span in spans if span.name.startswith("openai ")]
    assert all(span.kind == CLIENT for span in upstream)
    # Nothing the service does is filed under an upstream call.
    assert not any(span.parent_span_id in {u.span_id for u in upstream} for span in spans)


async def test_an_upstream_failure_marks_its_span(
    traced: RunningService, receiver: SpanSink
) -> None:
    container = await traced.create("missing")
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await download(traced, container.id, "cfile_missing")
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    await receiver.wait_for(has(DOWNLOAD))
    (failed,) = receiver.named("openai containers.files.content")
    assert failed.status_code == STATUS_ERROR
    assert failed.attributes["http.response.status_code"] == 404
    assert failed.attributes["error.type"] == "UPSTREAM_NOT_FOUND"
    (server,) = receiver.named(DOWNLOAD)
    assert server.attributes["rpc.grpc.status_code"] == grpc.StatusCode.NOT_FOUND.value[0]
    assert server.status_code != STATUS_ERROR  # the caller's mistake, not the server's


async def test_a_reconciler_pass_is_one_trace(traced: RunningService, receiver: SpanSink) -> None:
    await traced.create("reconciled")
    await traced.reconcile()
    spans = await receiver.wait_for(has("reconcile"))
    (reconcile,) = receiver.named("reconcile")
    assert reconcile.kind == INTERNAL
    assert reconcile.parent_span_id == ""
    mine = [span for span in spans if span.trace_id == reconcile.trace_id and span is not reconcile]
    assert any(span.name == "openai containers.list" for span in mine)
    assert any("db.system" in span.attributes for span in mine)
    assert all(descends_from(span, reconcile, spans) for span in mine)


async def test_a_download_the_caller_walks_away_from_ends_its_spans_cancelled(
    traced: RunningService, receiver: SpanSink, caplog: pytest.LogCaptureFixture
) -> None:
    container = await traced.create("walked-away")
    uploaded = await upload(traced, container.id, "big.bin", b"y" * (8 * 1024 * 1024))
    call = traced.containers.DownloadContainerFile(
        container_service_pb2.DownloadContainerFileRequest(
            container_id=container.id, file_id=uploaded.id
        ),
        metadata=identity(),
    )
    async for _ in call:
        break
    call.cancel()
    await receiver.wait_for(lambda spans: has(DOWNLOAD)(spans) and has(CONTENT)(spans))
    (server,) = receiver.named(DOWNLOAD)
    assert server.attributes["rpc.grpc.status_code"] == grpc.StatusCode.CANCELLED.value[0]
    assert server.status_code != STATUS_ERROR
    (content,) = receiver.named(CONTENT)
    assert content.parent_span_id == server.span_id
    assert not [r for r in caplog.records if r.name.startswith("opentelemetry")]


@pytest.mark.parametrize("sampler", ["traceidratio", "parentbased_traceidratio"])
async def test_calls_the_sampler_drops_export_nothing_and_tell_upstream_nothing(
    sampler: str,
    receiver: OtlpGrpcReceiver,
    start_service: StartService,
    monkeypatch: pytest.MonkeyPatch,
    migrated_database_url: str,
) -> None:
    """A call that starts a trace the sampler drops gets no span: its SQL and upstream spans
    are dropped with it, upstream gets no traceparent, and an INTERNAL error has a trace id
    of its own (never the shared one of unsampled calls)."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", sampler)
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0")
    tracing = Tracing.from_env()
    assert tracing is not None
    async with recording_emulator() as (emulator, requests):
        service = await start_service(tracing=tracing, openai_base_url=emulator.base_url)
        created = await service.create("unsampled")
        await service.containers.GetContainer(
            container_service_pb2.GetContainerRequest(id=created.id), metadata=identity()
        )
        (posted,) = [r for r in requests if r.method == "POST" and r.path == "/v1/containers"]
        assert "traceparent" not in posted.headers

        trace_id = await internal_error_trace_id(service, migrated_database_url, identity())
        assert trace_id != "f" * 32

        assert tracing.provider.force_flush()
        assert receiver.spans == []
