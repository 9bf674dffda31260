"""ToolResolutionService end to end: sources, fallbacks, margin, policies, tenancy, caching."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import jsonschema
import pytest
from agentcontainers.v1 import (
    binding_service_pb2,
    container_pb2,
    container_service_pb2,
    tool_service_pb2,
)
from agents import CodeInterpreterTool
from agents.models.openai_responses import Converter
from google.protobuf import json_format
from google.rpc import error_details_pb2
from sqlalchemy import event, text

from agent_containers.store.database import create_engine
from tests.integration.conftest import StartService
from tests.support.service import RunningService, error_info, identity, unpack

pb = tool_service_pb2
Mode = pb.ToolMode
Source = pb.ToolSource
Reason = pb.FallbackReason
SPEC = json.loads(
    (Path(__file__).parents[1] / "contract" / "openai-containers-openapi.json").read_text()
)


async def bind(
    service: RunningService, agent: str, container_id: str, tenant: str = "acme"
) -> None:
    await service.bindings.BindContainer(
        binding_service_pb2.BindContainerRequest(agent_key=agent, container_id=container_id),
        metadata=identity(tenant),
    )


async def resolve(
    service: RunningService,
    agent: str = "agent",
    *,
    tenant: str = "acme",
    tool: str = "code_interpreter",
    override: str = "",
    **config: Any,
) -> tool_service_pb2.ResolvedTool:
    resolved: tool_service_pb2.ResolvedTool = await service.tools.ResolveTool(
        pb.ResolveToolRequest(
            agent_key=agent,
            tool=tool,
            config=pb.CodeInterpreterConfig(**config),
            container_override=override,
        ),
        metadata=identity(tenant),
    )
    return resolved


def assert_valid_tool(resolved: tool_service_pb2.ResolvedTool) -> dict[str, Any]:
    """The tool is exactly what the Responses API and openai-agents take."""
    tool: dict[str, Any] = json.loads(resolved.tool_json)
    assert json_format.MessageToDict(resolved.tool_struct) == tool
    schema = {"$ref": "#/components/schemas/CodeInterpreterTool", **SPEC}
    jsonschema.validate(tool, schema)
    converted = Converter.convert_tools([CodeInterpreterTool(tool_config=tool)], handoffs=[])  # type: ignore[arg-type]
    assert converted.tools == [tool]
    return tool


async def test_no_binding_resolves_to_auto(service: RunningService) -> None:
    resolved = await resolve(service)
    assert resolved.mode == Mode.TOOL_MODE_AUTO
    assert resolved.source == Source.TOOL_SOURCE_AUTO
    assert resolved.fallback_reason == Reason.FALLBACK_REASON_UNSPECIFIED
    assert resolved.container_id == ""
    tool = assert_valid_tool(resolved)
    assert tool == {"type": "code_interpreter", "container": {"type": "auto", "memory_limit": "1g"}}


async def test_auto_takes_tier_and_files_from_the_config(start_service: StartService) -> None:
    service = await start_service(auto_memory_tier="4g")
    assert json.loads((await resolve(service)).tool_json)["container"]["memory_limit"] == "4g"
    resolved = await resolve(
        service,
        mode=Mode.TOOL_MODE_AUTO,
        memory_tier=container_pb2.MEMORY_TIER_1G,
        file_ids=["file-a", "file-b"],
    )
    tool = assert_valid_tool(resolved)
    assert tool["container"] == {
        "type": "auto",
        "memory_limit": "1g",
        "file_ids": ["file-a", "file-b"],
    }


async def test_binding_resolves_to_its_container(service: RunningService) -> None:
    container = await service.create("bound")
    await bind(service, "agent", container.id)
    resolved = await resolve(service)
    assert resolved.mode == Mode.TOOL_MODE_EXPLICIT
    assert resolved.source == Source.TOOL_SOURCE_BINDING
    assert resolved.container_id == container.id
    assert resolved.openai_container_id == container.openai_container_id
    assert resolved.container_expire_time == container.expire_time
    assert assert_valid_tool(resolved) == {
        "type": "code_interpreter",
        "container": container.openai_container_id,
    }


async def test_order_is_override_then_spec_then_binding(service: RunningService) -> None:
    bound = await service.create("bound")
    named = await service.create("named")
    chosen = await service.create("chosen")
    await bind(service, "agent", bound.id)
    assert (await resolve(service)).container_id == bound.id
    via_spec = await resolve(service, container_id=named.id)
    assert (via_spec.source, via_spec.container_id) == (Source.TOOL_SOURCE_SPEC, named.id)
    via_override = await resolve(service, container_id=named.id, override=chosen.id)
    assert (via_override.source, via_override.container_id) == (
        Source.TOOL_SOURCE_OVERRIDE,
        chosen.id,
    )
    # AUTO mode ignores the spec's container and the binding; an override still wins.
    assert (await resolve(service, mode=Mode.TOOL_MODE_AUTO)).source == Source.TOOL_SOURCE_AUTO
    forced_auto = await resolve(service, mode=Mode.TOOL_MODE_AUTO, override=chosen.id)
    assert forced_auto.source == Source.TOOL_SOURCE_OVERRIDE


async def test_an_expired_bound_container_is_never_returned(service: RunningService) -> None:
    container = await service.create("short", expires_after_minutes=5)
    await bind(service, "agent", container.id)
    assert (await resolve(service)).mode == Mode.TOOL_MODE_EXPLICIT  # cached now
    service.clock.advance(minutes=6)
    resolved = await resolve(service)
    assert resolved.mode == Mode.TOOL_MODE_AUTO
    assert resolved.fallback_reason == Reason.FALLBACK_REASON_CONTAINER_EXPIRED
    assert container.id in resolved.fallback_detail
    fetched = await service.containers.GetContainer(
        container_service_pb2.GetContainerRequest(id=container.id), metadata=identity()
    )
    assert fetched.state == container_pb2.CONTAINER_STATE_EXPIRED


async def test_expired_locally_and_upstream_down_is_still_not_returned(
    service: RunningService,
) -> None:
    container = await service.create("short", expires_after_minutes=5)
    await bind(service, "agent", container.id)
    await resolve(service)
    service.clock.advance(minutes=6)
    service.emulator.state.fail_next(503, count=5, operations="containers.retrieve")
    resolved = await resolve(service)
    assert resolved.mode == Mode.TOOL_MODE_AUTO
    assert resolved.fallback_reason == Reason.FALLBACK_REASON_CONTAINER_EXPIRED


async def test_activity_seen_upstream_keeps_an_overdue_container(service: RunningService) -> None:
    container = await service.create("busy", expires_after_minutes=5)
    await bind(service, "agent", container.id)
    service.clock.advance(minutes=4)
    upstream = service.emulator.state.containers[container.openai_container_id]
    service.emulator.state.touch(upstream)  # an agent run used it through OpenAI
    service.clock.advance(minutes=2)  # past our expiry time, not upstream's
    resolved = await resolve(service)
    assert resolved.mode == Mode.TOOL_MODE_EXPLICIT
    assert resolved.container_expire_time.ToSeconds() > container.expire_time.ToSeconds()


async def test_the_expiry_margin(start_service: StartService) -> None:
    service = await start_service(expiry_safety_margin_seconds=120, refresh_staleness_seconds=600)
    container = await service.create("edge", expires_after_minutes=5)
    await bind(service, "agent", container.id)
    service.clock.advance(minutes=2, seconds=59)  # 121 s left: outside the margin
    assert (await resolve(service)).mode == Mode.TOOL_MODE_EXPLICIT
    service.clock.advance(seconds=2)  # 119 s left: inside it
    resolved = await resolve(service)
    assert resolved.mode == Mode.TOOL_MODE_AUTO
    assert resolved.fallback_reason == Reason.FALLBACK_REASON_CONTAINER_EXPIRING


async def test_deleting_the_container_ends_the_binding_at_once(service: RunningService) -> None:
    container = await service.create("doomed")
    await bind(service, "agent", container.id)
    assert (await resolve(service)).mode == Mode.TOOL_MODE_EXPLICIT
    await service.containers.DeleteContainer(
        container_service_pb2.DeleteContainerRequest(id=container.id), metadata=identity()
    )
    resolved = await resolve(service, mode=Mode.TOOL_MODE_EXPLICIT)
    assert resolved.mode == Mode.TOOL_MODE_AUTO
    assert resolved.fallback_reason == Reason.FALLBACK_REASON_NO_BINDING
    named = await resolve(service, container_id=container.id)
    assert named.fallback_reason == Reason.FALLBACK_REASON_CONTAINER_NOT_RUNNING


async def test_unbind_and_rebind_are_seen_at_once(service: RunningService) -> None:
    first = await service.create("first")
    second = await service.create("second")
    await bind(service, "agent", first.id)
    assert (await resolve(service)).container_id == first.id
    await bind(service, "agent", second.id)
    assert (await resolve(service)).container_id == second.id
    await service.bindings.UnbindContainer(
        binding_service_pb2.UnbindContainerRequest(agent_key="agent"), metadata=identity()
    )
    assert (await resolve(service)).source == Source.TOOL_SOURCE_AUTO


@pytest.mark.parametrize("policy", ["auto", "error"])
async def test_forced_explicit_without_a_binding(start_service: StartService, policy: str) -> None:
    service = await start_service(fallback_policy=policy)
    if policy == "auto":
        resolved = await resolve(service, mode=Mode.TOOL_MODE_EXPLICIT)
        assert resolved.mode == Mode.TOOL_MODE_AUTO
        assert resolved.fallback_reason == Reason.FALLBACK_REASON_NO_BINDING
        assert resolved.fallback_detail
        return
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await resolve(service, mode=Mode.TOOL_MODE_EXPLICIT)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_info(refused.value).reason == "BINDING_REQUIRED"
    violation = unpack(refused.value, error_details_pb2.PreconditionFailure).violations[0]
    assert violation.subject == "agents/agent"
    # Not forced: auto without complaint, whatever the policy.
    assert (await resolve(service)).source == Source.TOOL_SOURCE_AUTO


@pytest.mark.parametrize("policy", ["auto", "error"])
async def test_forced_explicit_with_an_expired_container(
    start_service: StartService, policy: str
) -> None:
    service = await start_service(fallback_policy=policy)
    container = await service.create("short", expires_after_minutes=1)
    await bind(service, "agent", container.id)
    service.clock.advance(minutes=2)
    if policy == "auto":
        resolved = await resolve(service, mode=Mode.TOOL_MODE_EXPLICIT)
        assert resolved.fallback_reason == Reason.FALLBACK_REASON_CONTAINER_EXPIRED
        return
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await resolve(service, mode=Mode.TOOL_MODE_EXPLICIT)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_info(refused.value).reason == "CONTAINER_EXPIRED"


async def test_another_tenants_container_is_never_resolved(service: RunningService) -> None:
    theirs = await service.create("theirs", tenant="globex")
    with pytest.raises(grpc.aio.AioRpcError) as cannot_bind:
        await bind(service, "agent", theirs.id, tenant="acme")
    assert cannot_bind.value.code() == grpc.StatusCode.NOT_FOUND
    for config in ({"container_id": theirs.id}, {}):
        resolved = await resolve(service, override=theirs.id if not config else "", **config)
        assert resolved.mode == Mode.TOOL_MODE_AUTO
        assert resolved.fallback_reason == Reason.FALLBACK_REASON_CONTAINER_NOT_FOUND
        assert theirs.openai_container_id not in resolved.tool_json
    # The same agent key in the other tenant has its own binding.
    await bind(service, "agent", theirs.id, tenant="globex")
    assert (await resolve(service, tenant="globex")).container_id == theirs.id
    assert (await resolve(service, tenant="acme")).source == Source.TOOL_SOURCE_AUTO


async def test_a_hit_costs_no_sql_and_no_upstream_call(service: RunningService) -> None:
    container = await service.create("hot")
    await bind(service, "agent", container.id)
    await resolve(service)  # the miss that fills the cache
    statements: list[str] = []
    engine = service.server._engine.sync_engine

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", count)
    calls_before = sum(service.emulator.state.calls.values())
    try:
        for _ in range(5):
            assert (await resolve(service)).container_id == container.id
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert statements == []
    assert sum(service.emulator.state.calls.values()) == calls_before
    assert service.server.cache.hits >= 10  # a binding and a container lookup per call


async def test_unknown_tool_is_not_found(service: RunningService) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await resolve(service, tool="web_search")
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    assert error_info(missing.value).reason == "TOOL_NOT_FOUND"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"agent": ""}, "agent_key"),
        ({"agent": "a b"}, "agent_key"),
        ({"file_ids": [f"file-{i}" for i in range(51)]}, "config.file_ids"),
        ({"file_ids": ["nope"]}, "config.file_ids[0]"),
        ({"memory_tier": container_pb2.MEMORY_TIER_64G}, "config.memory_tier"),
        ({"memory_tier": 42}, "config.memory_tier"),
        ({"mode": 9}, "config.mode"),
        ({"container_id": "x"}, "config.container_id"),
        ({"override": "x"}, "container_override"),
    ],
)
async def test_malformed_resolution_input(
    service: RunningService, fields: dict[str, Any], field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await resolve(service, **fields)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = unpack(refused.value, error_details_pb2.BadRequest).field_violations
    assert field in [v.field for v in violations]


async def test_batch_resolves_a_whole_spec(service: RunningService) -> None:
    container = await service.create("bound")
    await bind(service, "agent", container.id)
    reply = await service.tools.BatchResolveTools(
        pb.BatchResolveToolsRequest(
            agent_key="agent",
            spec=pb.AgentSpec(
                tools=[
                    pb.AgentToolSpec(tool="code_interpreter"),
                    pb.AgentToolSpec(
                        tool="code_interpreter",
                        code_interpreter=pb.CodeInterpreterConfig(mode=Mode.TOOL_MODE_AUTO),
                    ),
                ]
            ),
        ),
        metadata=identity(),
    )
    assert [t.source for t in reply.tools] == [Source.TOOL_SOURCE_BINDING, Source.TOOL_SOURCE_AUTO]
    for tool in reply.tools:
        assert_valid_tool(tool)


async def test_validation_reports_every_violation_at_once(service: RunningService) -> None:
    bad_spec = pb.AgentSpec(
        tools=[
            pb.AgentToolSpec(tool="web_search"),
            pb.AgentToolSpec(
                tool="code_interpreter",
                code_interpreter=pb.CodeInterpreterConfig(
                    memory_tier=container_pb2.MEMORY_TIER_64G, file_ids=["bad"]
                ),
            ),
        ]
    )
    for rpc, request_type in (
        (service.tools.ValidateAgentSpec, pb.ValidateAgentSpecRequest),
        (service.tools.BatchResolveTools, pb.BatchResolveToolsRequest),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await rpc(request_type(agent_key="agent", spec=bad_spec), metadata=identity())
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        fields = [
            v.field for v in unpack(refused.value, error_details_pb2.BadRequest).field_violations
        ]
        assert fields == [
            "spec.tools[0].tool",
            "spec.tools[1].code_interpreter.memory_tier",
            "spec.tools[1].code_interpreter.file_ids[0]",
        ]


async def test_validation_refuses_a_missing_forced_binding_under_any_policy(
    service: RunningService,
) -> None:
    forced = pb.AgentToolSpec(
        tool="code_interpreter",
        code_interpreter=pb.CodeInterpreterConfig(mode=Mode.TOOL_MODE_EXPLICIT),
    )
    expired = await service.create("old", expires_after_minutes=1)
    service.clock.advance(minutes=2)
    named = pb.AgentToolSpec(
        tool="code_interpreter",
        code_interpreter=pb.CodeInterpreterConfig(
            mode=Mode.TOOL_MODE_EXPLICIT, container_id=expired.id
        ),
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await service.tools.ValidateAgentSpec(
            pb.ValidateAgentSpecRequest(
                agent_key="agent", spec=pb.AgentSpec(tools=[forced, named])
            ),
            metadata=identity(),
        )
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    violations = unpack(refused.value, error_details_pb2.PreconditionFailure).violations
    assert [v.type for v in violations] == ["BINDING_REQUIRED", "CONTAINER_EXPIRED"]
    # The service's policy is AUTO: the batch form falls back instead.
    reply = await service.tools.BatchResolveTools(
        pb.BatchResolveToolsRequest(agent_key="agent", spec=pb.AgentSpec(tools=[forced, named])),
        metadata=identity(),
    )
    assert [t.fallback_reason for t in reply.tools] == [
        Reason.FALLBACK_REASON_NO_BINDING,
        Reason.FALLBACK_REASON_CONTAINER_EXPIRED,
    ]
    # A valid spec returns how each tool would resolve.
    live = await service.create("live")
    await bind(service, "agent", live.id)
    ok = await service.tools.ValidateAgentSpec(
        pb.ValidateAgentSpecRequest(agent_key="agent", spec=pb.AgentSpec(tools=[forced])),
        metadata=identity(),
    )
    assert [t.container_id for t in ok.tools] == [live.id]


async def test_catalog_lists_the_tool_and_the_binding(service: RunningService) -> None:
    empty = await service.tools.ListTools(
        pb.ListToolsRequest(agent_key="agent"), metadata=identity()
    )
    [tool] = empty.tools
    assert tool.name == "code_interpreter"
    assert tool.available  # an upstream is configured (the emulator stands in for OpenAI here)
    assert list(tool.modes) == [Mode.TOOL_MODE_AUTO, Mode.TOOL_MODE_EXPLICIT]
    assert not tool.HasField("binding")
    assert not tool.binding_live

    container = await service.create("bound", expires_after_minutes=5)
    await bind(service, "agent", container.id)
    [bound] = (
        await service.tools.ListTools(pb.ListToolsRequest(agent_key="agent"), metadata=identity())
    ).tools
    assert bound.binding.container_id == container.id
    assert bound.binding_live
    service.clock.advance(minutes=4, seconds=30)  # 30 s left: inside the default 60 s margin
    [expiring] = (
        await service.tools.ListTools(pb.ListToolsRequest(agent_key="agent"), metadata=identity())
    ).tools
    assert not expiring.binding_live


async def test_catalog_says_unavailable_without_a_real_upstream(
    start_service: StartService,
) -> None:
    service = await start_service(upstream="emulator")
    [tool] = (
        await service.tools.ListTools(pb.ListToolsRequest(agent_key="agent"), metadata=identity())
    ).tools
    assert not tool.available


@pytest.mark.parametrize("database_backend", ["postgresql"], indirect=True)
async def test_losing_the_notification_channel_stops_the_cache_until_it_is_back(
    service: RunningService, migrated_database_url: str
) -> None:
    cache = service.server.cache

    async def until(condition: Callable[[], bool]) -> None:
        for _ in range(500):
            if condition():
                return
            await asyncio.sleep(0.01)
        raise AssertionError("condition not reached within 5 s")

    await until(lambda: cache.serving)
    container = await service.create("bound")
    await bind(service, "agent", container.id)
    await resolve(service)
    engine = create_engine(migrated_database_url)
    try:
        async with engine.begin() as connection:
            ended = await connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE query LIKE 'LISTEN%' AND datname = current_database()"
                )
            )
            assert ended.scalars().all() == [True]
    finally:
        await engine.dispose()
    await until(lambda: not cache.serving)
    misses = cache.misses
    assert (await resolve(service)).container_id == container.id  # read from SQL meanwhile
    assert cache.misses > misses
    await until(lambda: cache.serving)  # reconnected
    assert (await resolve(service)).container_id == container.id


async def test_an_interrupted_delete_still_ends_the_binding(service: RunningService) -> None:
    container = await service.create("doomed")
    await bind(service, "agent", container.id)
    assert (await resolve(service)).mode == Mode.TOOL_MODE_EXPLICIT
    service.emulator.state.latency = 0.4
    with pytest.raises(grpc.aio.AioRpcError) as hung_up:
        await service.containers.DeleteContainer(
            container_service_pb2.DeleteContainerRequest(id=container.id),
            metadata=identity(),
            timeout=0.1,
        )
    assert hung_up.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    await service.server.wait_detached()
    service.emulator.state.latency = 0
    assert (await resolve(service)).source == Source.TOOL_SOURCE_AUTO
    assert container.openai_container_id not in service.emulator.state.containers


async def test_a_delete_that_failed_after_reaching_upstream_completes(
    service: RunningService,
) -> None:
    container = await service.create("gone")
    del service.emulator.state.containers[container.openai_container_id]  # deleted upstream...
    service.emulator.state.fail_next(502, operations="containers.delete")  # ...answer lost
    deleted = await service.containers.DeleteContainer(
        container_service_pb2.DeleteContainerRequest(id=container.id), metadata=identity()
    )
    assert deleted.state == container_pb2.CONTAINER_STATE_DELETED


async def test_a_container_resolves_as_soon_as_its_create_settles(service: RunningService) -> None:
    service.emulator.state.latency = 0.3
    creating = asyncio.create_task(service.create("soon"))
    await asyncio.sleep(0.1)
    listed = await service.containers.ListContainers(
        container_service_pb2.ListContainersRequest(), metadata=identity()
    )
    [pending] = listed.containers
    assert pending.state == container_pb2.CONTAINER_STATE_CREATING
    early = await resolve(service, override=pending.id)  # caches the CREATING snapshot
    assert early.fallback_reason == Reason.FALLBACK_REASON_CONTAINER_NOT_RUNNING
    await creating
    service.emulator.state.latency = 0
    assert (await resolve(service, override=pending.id)).mode == Mode.TOOL_MODE_EXPLICIT


async def test_huge_names_are_echoed_bounded(service: RunningService) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await resolve(service, tool="x" * 200_000)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    assert len(missing.value.details() or "") < 200
    too_many = pb.AgentSpec(tools=[pb.AgentToolSpec(tool="code_interpreter")] * 65)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await service.tools.BatchResolveTools(
            pb.BatchResolveToolsRequest(agent_key="agent", spec=too_many), metadata=identity()
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
