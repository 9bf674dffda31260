"""AgentBindingService end to end: a real server, both databases, the emulator behind it."""

from __future__ import annotations

import grpc
import pytest
from agentcontainers.v1 import binding_service_pb2, container_pb2, container_service_pb2
from google.rpc import error_details_pb2

from agent_containers.domain import pagination
from tests.support.service import RunningService, error_info, identity, unpack

pb = binding_service_pb2
State = container_pb2.ContainerState


async def bind(
    service: RunningService, agent: str, container_id: str, tenant: str = "acme"
) -> binding_service_pb2.AgentBinding:
    binding: binding_service_pb2.AgentBinding = await service.bindings.BindContainer(
        pb.BindContainerRequest(agent_key=agent, container_id=container_id),
        metadata=identity(tenant),
    )
    return binding


async def test_bind_get_rebind_unbind(service: RunningService) -> None:
    first = await service.create("first")
    second = await service.create("second")
    bound = await bind(service, "agent-1", first.id)
    assert bound.agent_key == "agent-1"
    assert bound.container_id == first.id
    assert bound.openai_container_id == first.openai_container_id
    assert bound.container_state == State.CONTAINER_STATE_RUNNING
    assert bound.container_expire_time == first.expire_time

    fetched = await service.bindings.GetAgentBinding(
        pb.GetAgentBindingRequest(agent_key="agent-1"), metadata=identity()
    )
    assert fetched == bound

    service.clock.advance(seconds=1)
    rebound = await bind(service, "agent-1", second.id)  # binding again replaces
    assert rebound.container_id == second.id
    assert rebound.create_time == bound.create_time
    assert rebound.update_time.ToSeconds() == bound.update_time.ToSeconds() + 1

    removed = await service.bindings.UnbindContainer(
        pb.UnbindContainerRequest(agent_key="agent-1"), metadata=identity()
    )
    assert removed.container_id == second.id
    for call, request in (
        (service.bindings.GetAgentBinding, pb.GetAgentBindingRequest(agent_key="agent-1")),
        (service.bindings.UnbindContainer, pb.UnbindContainerRequest(agent_key="agent-1")),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await call(request, metadata=identity())
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        assert error_info(missing.value).reason == "BINDING_NOT_FOUND"


async def test_only_a_running_container_of_the_tenant_can_be_bound(
    service: RunningService,
) -> None:
    mine = await service.create("mine")
    with pytest.raises(grpc.aio.AioRpcError) as foreign:
        await bind(service, "agent", mine.id, tenant="globex")
    assert foreign.value.code() == grpc.StatusCode.NOT_FOUND
    assert error_info(foreign.value).reason == "CONTAINER_NOT_FOUND"

    short = await service.create("short", expires_after_minutes=1)
    service.clock.advance(minutes=2)
    with pytest.raises(grpc.aio.AioRpcError) as expired:
        await bind(service, "agent", short.id)
    assert expired.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_info(expired.value).reason == "CONTAINER_EXPIRED"
    violation = unpack(expired.value, error_details_pb2.PreconditionFailure).violations[0]
    assert violation.subject == f"containers/{short.id}"

    await service.containers.DeleteContainer(
        container_service_pb2.DeleteContainerRequest(id=mine.id), metadata=identity()
    )
    with pytest.raises(grpc.aio.AioRpcError) as deleted:
        await bind(service, "agent", mine.id)
    assert deleted.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_info(deleted.value).reason == "CONTAINER_NOT_RUNNING"
    assert "DELETED" in (deleted.value.details() or "")


async def test_deleting_a_container_removes_its_bindings(service: RunningService) -> None:
    container = await service.create("shared")
    await bind(service, "a", container.id)
    await bind(service, "b", container.id)
    await service.containers.DeleteContainer(
        container_service_pb2.DeleteContainerRequest(id=container.id), metadata=identity()
    )
    listed = await service.bindings.ListAgentBindings(
        pb.ListAgentBindingsRequest(), metadata=identity()
    )
    assert list(listed.bindings) == []


async def test_list_pages_by_agent_key_and_filters_by_container(service: RunningService) -> None:
    one = await service.create("one")
    two = await service.create("two")
    for index in range(7):
        await bind(service, f"agent-{index}", (one if index % 2 else two).id)
    await bind(service, "agent-x", one.id, tenant="acme")
    other = await service.create("other", tenant="globex")
    await bind(service, "agent-0", other.id, tenant="globex")

    seen: list[str] = []
    token = ""
    while True:
        page = await service.bindings.ListAgentBindings(
            pb.ListAgentBindingsRequest(page_size=3, page_token=token), metadata=identity()
        )
        seen += [b.agent_key for b in page.bindings]
        token = page.next_page_token
        if not token:
            break
    assert seen == [*(f"agent-{i}" for i in range(7)), "agent-x"]

    filtered = await service.bindings.ListAgentBindings(
        pb.ListAgentBindingsRequest(container_id=one.id), metadata=identity()
    )
    assert [b.agent_key for b in filtered.bindings] == ["agent-1", "agent-3", "agent-5", "agent-x"]
    assert {b.container_id for b in filtered.bindings} == {one.id}


@pytest.mark.parametrize(
    ("rpc", "request_message", "field"),
    [
        ("BindContainer", pb.BindContainerRequest(agent_key="", container_id=""), "agent_key"),
        ("BindContainer", pb.BindContainerRequest(agent_key="a" * 65), "agent_key"),
        ("BindContainer", pb.BindContainerRequest(agent_key="a b"), "agent_key"),
        (
            "BindContainer",
            pb.BindContainerRequest(agent_key="ok", container_id="x"),
            "container_id",
        ),
        ("UnbindContainer", pb.UnbindContainerRequest(agent_key="a/b"), "agent_key"),
        ("GetAgentBinding", pb.GetAgentBindingRequest(agent_key=""), "agent_key"),
        ("ListAgentBindings", pb.ListAgentBindingsRequest(page_size=-1), "page_size"),
        ("ListAgentBindings", pb.ListAgentBindingsRequest(page_token="zz"), "page_token"),
        ("ListAgentBindings", pb.ListAgentBindingsRequest(container_id="x"), "container_id"),
    ],
)
async def test_malformed_input_is_invalid_argument(
    service: RunningService, rpc: str, request_message: object, field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await getattr(service.bindings, rpc)(request_message, metadata=identity())
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = unpack(refused.value, error_details_pb2.BadRequest).field_violations
    assert [v.field for v in violations][:1] == [field]


@pytest.mark.parametrize("forged_key", ["a\x00b", "\ud800", "a b"])
async def test_forged_page_tokens_are_invalid_argument(
    service: RunningService, forged_key: str
) -> None:
    fingerprint = pagination.query_fingerprint("bindings", "acme", "")
    token = pagination.encode_page_token(fingerprint, [forged_key])
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await service.bindings.ListAgentBindings(
            pb.ListAgentBindingsRequest(page_token=token), metadata=identity()
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
