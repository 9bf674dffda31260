"""Hostile input gets a clear, cheap answer, from a real server on a real port."""

from __future__ import annotations

import asyncio
import gc
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from agentcontainers.v1 import container_pb2, container_service_pb2, tool_service_pb2
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from agent_containers.api import tools as tools_api
from agent_containers.api.interceptor import ServiceInterceptor
from tests.integration.conftest import StartService
from tests.support.service import RunningService, error_info, identity, unpack

Container = container_pb2.Container
tools_pb = tool_service_pb2


def field_violations(error: grpc.aio.AioRpcError) -> list[Any]:
    return list(unpack(error, error_details_pb2.BadRequest).field_violations)


# --- identity headers ---------------------------------------------------------------------


@pytest.mark.parametrize("header", ["x-tenant-id", "x-user-id"])
async def test_a_repeated_identity_header_is_refused(service: RunningService, header: str) -> None:
    """A gateway that appends instead of replacing must not leave the caller in control."""
    own = await service.create("mine", tenant="acme")
    values = {"x-tenant-id": "acme", "x-user-id": "alice"}
    for order in (("acme-not", "acme"), ("acme", "acme")):  # the last, or the same, twice
        metadata = [(key, value) for key, value in values.items() if key != header]
        metadata += [(header, value) for value in order]
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await service.containers.GetContainer(
                container_service_pb2.GetContainerRequest(id=own.id), metadata=metadata
            )
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert header in (refused.value.details() or "")
        info = error_info(refused.value)
        assert (info.domain, info.reason) == ("agent-containers", "IDENTITY_MALFORMED")
    # One value of each is still the normal case.
    again = await service.containers.GetContainer(
        container_service_pb2.GetContainerRequest(id=own.id), metadata=identity()
    )
    assert again.id == own.id


# --- unreadable bodies --------------------------------------------------------------------

SERVING = health_pb2.HealthCheckResponse.SERVING
CREATE = "/agentcontainers.v1.ContainerService/CreateContainer"
NOT_A_MESSAGE = b"\xff\xff\xff"  # field 0 / a truncated varint: no protobuf parser reads it


def raw_unary(channel: grpc.aio.Channel, method: str) -> Any:
    """A unary method that sends its bytes as they are, whatever they parse as."""
    return channel.unary_unary(
        method, request_serializer=lambda body: body, response_deserializer=lambda data: data
    )


async def test_a_malformed_body_is_invalid_argument_without_internals(
    service: RunningService,
) -> None:
    create = raw_unary(service.channel, CREATE)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await create(NOT_A_MESSAGE, metadata=identity())
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = refused.value.details() or ""
    for internal in ("class", "Error", "google.protobuf", "Traceback", "agentcontainers.v1"):
        assert internal not in details, details
    info = error_info(refused.value)
    assert (info.domain, info.reason) == ("agent-containers", "MALFORMED_REQUEST")
    assert [v.field for v in field_violations(refused.value)] == [""]
    assert service.emulator.state.calls["containers.create"] == 0


async def test_identity_is_checked_before_the_body_is_judged(service: RunningService) -> None:
    """Without identity a caller learns nothing, not even that its body is unreadable."""
    create = raw_unary(service.channel, CREATE)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await create(NOT_A_MESSAGE, metadata=())
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_info(refused.value).reason == "IDENTITY_MISSING"


async def test_every_kind_of_rpc_survives_a_malformed_body(service: RunningService) -> None:
    """Streaming requests and streaming responses too; the server keeps serving."""
    upload = service.channel.stream_unary(
        "/agentcontainers.v1.ContainerService/UploadContainerFile",
        request_serializer=lambda body: body,
        response_deserializer=lambda data: data,
    )
    with pytest.raises(grpc.aio.AioRpcError) as upload_refused:
        await upload(iter([NOT_A_MESSAGE]), metadata=identity())
    assert upload_refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(upload_refused.value).reason == "MALFORMED_REQUEST"
    download = service.channel.unary_stream(
        "/agentcontainers.v1.ContainerService/DownloadContainerFile",
        request_serializer=lambda body: body,
        response_deserializer=lambda data: data,
    )
    with pytest.raises(grpc.aio.AioRpcError) as download_refused:
        async for _ in download(NOT_A_MESSAGE, metadata=identity()):
            pass
    assert download_refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(download_refused.value).reason == "MALFORMED_REQUEST"
    health = health_pb2_grpc.HealthStub(service.channel)
    assert (await health.Check(health_pb2.HealthCheckRequest())).status == SERVING


async def _echo_count(requests: AsyncIterator[Any], context: Any) -> bytes:
    count = 0
    async for _ in requests:
        count += 1
    return str(count).encode()


async def test_a_malformed_message_in_a_request_stream_is_invalid_argument() -> None:
    """The service interceptor over a client-streaming method that reads its requests."""
    handler = grpc.method_handlers_generic_handler(
        "test.Echo",
        {
            "Count": grpc.stream_unary_rpc_method_handler(
                _echo_count,
                request_deserializer=health_pb2.HealthCheckRequest.FromString,
                response_serializer=lambda body: body,
            )
        },
    )
    server = grpc.aio.server(interceptors=[ServiceInterceptor()])
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            count = channel.stream_unary(
                "/test.Echo/Count",
                request_serializer=lambda body: body,
                response_deserializer=lambda data: data,
            )
            good = health_pb2.HealthCheckRequest(service="x").SerializeToString()
            assert await count(iter([good, good]), metadata=identity()) == b"2"
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await count(iter([good, NOT_A_MESSAGE, good]), metadata=identity())
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert error_info(refused.value).reason == "MALFORMED_REQUEST"
            assert "class" not in (refused.value.details() or "")
    finally:
        await server.stop(None)


# --- floods of violations -----------------------------------------------------------------


def trailer_bytes(error: grpc.aio.AioRpcError) -> int:
    """What the error's trailers weigh (the message percent-encoded, as on the wire at worst)."""
    metadata = sum(len(key) + len(value) for key, value in error.trailing_metadata() or ())
    return metadata + 3 * len((error.details() or "").encode())


@pytest.mark.parametrize("letter", ["k", "\N{GRINNING FACE}"], ids=["ascii", "four-byte"])
async def test_a_hundred_bad_metadata_pairs_still_get_their_bad_request(
    service: RunningService, letter: str
) -> None:
    """Every pair is wrong three ways: the detail must still reach a default client."""
    metadata = {f"{index:03d}\x01{letter * 70}": "v" * 600 for index in range(100)}
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await service.containers.CreateContainer(
            container_service_pb2.CreateContainerRequest(
                container=Container(name="a", metadata=metadata)
            ),
            metadata=identity(),
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(refused.value).reason == "INVALID_FIELD"
    *shown, summary = field_violations(refused.value)
    assert shown[0].field == "container.metadata"  # "at most 16 pairs" comes first
    assert all(v.field.startswith("container.metadata[") for v in shown[1:])
    assert len(shown) == 20 if letter == "k" else 5 <= len(shown) <= 20
    assert summary.field == ""
    # "At most 16 pairs", then the first 17 pairs are checked one by one (three violations each).
    assert summary.description == f"{1 + 3 * 17 - len(shown)} more violations not shown"
    for violation in shown:
        assert len(violation.field) <= 128
        assert len(violation.description) <= 256
    assert len(refused.value.details() or "") <= 200
    assert trailer_bytes(refused.value) < 8 * 1024


async def test_sixty_four_invalid_tools_still_get_their_bad_request(
    service: RunningService,
) -> None:
    bad_tool = tools_pb.AgentToolSpec(
        tool="x" * 1000,
        code_interpreter=tools_pb.CodeInterpreterConfig(
            file_ids=["nope"] * 50, container_id="y" * 1000
        ),
    )
    spec = tools_pb.AgentSpec(tools=[bad_tool] * 64)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await service.tools.ValidateAgentSpec(
            tools_pb.ValidateAgentSpecRequest(agent_key="agent", spec=spec), metadata=identity()
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = field_violations(refused.value)
    assert [v.field for v in violations[:3]] == [
        "spec.tools[0].tool",
        "spec.tools[0].code_interpreter.file_ids[0]",
        "spec.tools[0].code_interpreter.file_ids[1]",
    ]
    assert len(violations) == 21
    hidden = 64 * 52 - 20  # per tool: the name, 50 file ids, the container id
    assert violations[-1].description == f"{hidden} more violations not shown"
    assert trailer_bytes(refused.value) < 8 * 1024


async def test_sixty_four_unresolvable_tools_are_reported_within_the_cap(
    service: RunningService,
) -> None:
    missing = [str(uuid.UUID(int=index + 1)) for index in range(64)]
    spec = tools_pb.AgentSpec(
        tools=[
            tools_pb.AgentToolSpec(
                tool="code_interpreter",
                code_interpreter=tools_pb.CodeInterpreterConfig(
                    mode=tools_pb.TOOL_MODE_EXPLICIT, container_id=container_id
                ),
            )
            for container_id in missing
        ]
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await service.tools.ValidateAgentSpec(
            tools_pb.ValidateAgentSpecRequest(agent_key="a" * 64, spec=spec), metadata=identity()
        )
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    violations = unpack(refused.value, error_details_pb2.PreconditionFailure).violations
    *shown, summary = violations
    assert 10 <= len(shown) <= 20
    assert [v.type for v in shown] == ["BINDING_REQUIRED"] * len(shown)
    assert all(missing[index] in v.description for index, v in enumerate(shown))
    assert (summary.type, summary.subject) == ("", "")
    assert summary.description == f"{64 - len(shown)} more violations not shown"
    assert trailer_bytes(refused.value) < 8 * 1024


# --- oversize requests --------------------------------------------------------------------


RAISED_LIMIT = 4 * 1024 * 1024
"""A request limit an operator raised: what gets through must still be refused cheaply."""


def spec_of_size(size: int) -> tools_pb.AgentSpec:
    """A spec of many small tools, about `size` bytes on the wire."""
    tool = tools_pb.AgentToolSpec(tool="code_interpreter")
    per_tool = len(tools_pb.AgentSpec(tools=[tool]).SerializeToString())
    return tools_pb.AgentSpec(tools=[tool] * (size // per_tool))


async def test_a_request_above_the_request_limit_is_refused_by_grpc(
    start_service: StartService,
) -> None:
    service = await start_service(max_request_bytes=64 * 1024)
    for size, code in ((60_000, grpc.StatusCode.INVALID_ARGUMENT), (70_000, None)):
        request = tools_pb.ValidateAgentSpecRequest(agent_key="agent", spec=spec_of_size(size))
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await service.tools.ValidateAgentSpec(request, metadata=identity())
        # Below the limit the service reads it (and counts its tools); above, gRPC refuses it.
        assert refused.value.code() == (code or grpc.StatusCode.RESOURCE_EXHAUSTED)
    # Responses are held to AGENT_CONTAINERS_MAX_MESSAGE_BYTES only: a page above 64 KiB goes out.
    for index in range(8):
        await service.create(f"big-{index}", metadata={f"k{i}": "v" * 512 for i in range(16)})
    page = await service.containers.ListContainers(
        container_service_pb2.ListContainersRequest(), metadata=identity()
    )
    assert len(page.containers) == 8
    assert page.ByteSize() > 64 * 1024


async def test_the_default_request_limit_is_far_below_sixteen_mib(
    service: RunningService,
) -> None:
    assert service.server.settings.max_request_bytes == 1024 * 1024
    request = tools_pb.ValidateAgentSpecRequest(agent_key="agent", spec=spec_of_size(5_000_000))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await service.tools.ValidateAgentSpec(request, metadata=identity())
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


@pytest.mark.parametrize("rpc", ["ValidateAgentSpec", "BatchResolveTools"])
async def test_too_many_tools_are_refused_before_any_is_converted(
    start_service: StartService, monkeypatch: pytest.MonkeyPatch, rpc: str
) -> None:
    service = await start_service(max_request_bytes=RAISED_LIMIT)  # an operator raised it
    converted: list[str] = []
    convert = tools_api._config

    def counting(message: Any, field: str) -> Any:
        converted.append(field)
        return convert(message, field)

    monkeypatch.setattr(tools_api, "_config", counting)
    spec = spec_of_size(4_000_000)
    assert len(spec.tools) > 100_000
    request_type = getattr(tools_pb, f"{rpc}Request")
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await getattr(service.tools, rpc)(
            request_type(agent_key="agent", spec=spec), metadata=identity()
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in field_violations(refused.value)] == ["spec.tools"]
    assert converted == []


async def test_too_many_files_and_pairs_are_counted_not_each_checked(
    start_service: StartService,
) -> None:
    """A request at the size limit holds millions of entries: only the first are converted."""
    service = await start_service(max_request_bytes=RAISED_LIMIT)
    container = Container(name="a", metadata={f"\x01{index}": "" for index in range(100_000)})
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await service.containers.CreateContainer(
            container_service_pb2.CreateContainerRequest(
                container=container, file_ids=[""] * 1_000_000
            ),
            metadata=identity(),
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    *shown, summary = field_violations(refused.value)
    assert {"container.metadata", "file_ids"} <= {v.field for v in shown}
    # Each count, then the first 17 pairs and the first 51 files one by one.
    assert summary.description == f"{1 + 17 + 1 + 51 - len(shown)} more violations not shown"
    config = tools_pb.CodeInterpreterConfig(file_ids=[""] * 1_000_000)
    spec = tools_pb.AgentSpec(
        tools=[tools_pb.AgentToolSpec(tool="code_interpreter", code_interpreter=config)]
    )
    with pytest.raises(grpc.aio.AioRpcError) as spec_refused:
        await service.tools.ValidateAgentSpec(
            tools_pb.ValidateAgentSpecRequest(agent_key="agent", spec=spec), metadata=identity()
        )
    *shown, summary = field_violations(spec_refused.value)
    assert shown[0].field == "spec.tools[0].code_interpreter.file_ids"
    assert summary.description == f"{1 + 51 - len(shown)} more violations not shown"


# --- memory ---------------------------------------------------------------------------------


async def test_a_refused_request_is_freed_when_its_call_ends(service: RunningService) -> None:
    """Nothing holds it once the answer is sent (context.abort() left it reachable from the
    call's AbortError until the garbage collector ran): one at the size limit is ~100 MiB."""
    kinds = (tools_pb.ValidateAgentSpecRequest, container_service_pb2.CreateContainerRequest)
    calls = [
        (
            service.tools.ValidateAgentSpec,
            tools_pb.ValidateAgentSpecRequest(agent_key="agent", spec=spec_of_size(100_000)),
        ),
        (
            service.containers.CreateContainer,
            container_service_pb2.CreateContainerRequest(container=Container(name="a/b")),
        ),
    ]

    def alive() -> int:
        return sum(isinstance(thing, kinds) for thing in gc.get_objects())

    gc.collect()
    gc.disable()  # what is still there is held, not merely waiting for a collection
    try:
        before = alive()  # this test's own requests
        for rpc, request in calls:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await rpc(request, metadata=identity())
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        for _ in range(50):  # the server's side of a call ends just after the client's
            if alive() == before:
                break
            await asyncio.sleep(0.02)
        after = alive()
    finally:
        gc.enable()
    assert after == before


# --- enum numbers this server does not know -----------------------------------------------


async def test_an_unknown_tier_is_reported_with_the_other_violations(
    service: RunningService,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await service.containers.CreateContainer(
            container_service_pb2.CreateContainerRequest(
                container=Container(name="a/b", memory_tier=99)  # type: ignore[arg-type]
            ),
            metadata=identity(),
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = {v.field: v.description for v in field_violations(refused.value)}
    assert set(violations) == {"container.name", "container.memory_tier"}
    assert "99" in violations["container.memory_tier"]


async def test_unknown_mode_and_tier_are_reported_with_a_bad_agent_key(
    service: RunningService,
) -> None:
    config = tools_pb.CodeInterpreterConfig(mode=9, memory_tier=42)  # type: ignore[arg-type]
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await service.tools.ResolveTool(
            tools_pb.ResolveToolRequest(agent_key="a b", tool="code_interpreter", config=config),
            metadata=identity(),
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert sorted(v.field for v in field_violations(refused.value)) == [
        "agent_key",
        "config.memory_tier",
        "config.mode",
    ]
    spec = tools_pb.AgentSpec(
        tools=[
            tools_pb.AgentToolSpec(tool="code_interpreter"),
            tools_pb.AgentToolSpec(tool="code_interpreter", code_interpreter=config),
        ]
    )
    for rpc, request_type in (
        (service.tools.BatchResolveTools, tools_pb.BatchResolveToolsRequest),
        (service.tools.ValidateAgentSpec, tools_pb.ValidateAgentSpecRequest),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as batch_refused:
            await rpc(request_type(agent_key="a b", spec=spec), metadata=identity())
        assert batch_refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert [v.field for v in field_violations(batch_refused.value)] == [
            "agent_key",
            "spec.tools[1].code_interpreter.mode",
            "spec.tools[1].code_interpreter.memory_tier",
        ]
