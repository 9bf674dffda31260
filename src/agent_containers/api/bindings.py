"""AgentBindingService over gRPC: proto <-> domain translation only."""

from __future__ import annotations

from typing import Any

import grpc
from agentcontainers.v1 import binding_service_pb2

from agent_containers.api.containers import container_state_to_proto, timestamp
from agent_containers.api.identity import current_identity
from agent_containers.domain.bindings import AgentBinding
from agent_containers.services.bindings import BindingService

Context = grpc.aio.ServicerContext[Any, Any]


def binding_to_proto(binding: AgentBinding) -> binding_service_pb2.AgentBinding:
    container = binding.container
    return binding_service_pb2.AgentBinding(
        agent_key=binding.agent_key,
        container_id=str(container.id),
        openai_container_id=container.openai_id or "",
        container_state=container_state_to_proto(container.status),
        container_expire_time=timestamp(container.expire_time),
        create_time=timestamp(binding.created_at),
        update_time=timestamp(binding.updated_at),
    )


class AgentBindingServicer:
    """Thin shell over BindingService."""

    def __init__(self, bindings: BindingService) -> None:
        self._bindings = bindings

    async def BindContainer(
        self, request: binding_service_pb2.BindContainerRequest, context: Context
    ) -> binding_service_pb2.AgentBinding:
        binding = await self._bindings.bind(
            current_identity(), request.agent_key, request.container_id
        )
        return binding_to_proto(binding)

    async def UnbindContainer(
        self, request: binding_service_pb2.UnbindContainerRequest, context: Context
    ) -> binding_service_pb2.AgentBinding:
        return binding_to_proto(await self._bindings.unbind(current_identity(), request.agent_key))

    async def GetAgentBinding(
        self, request: binding_service_pb2.GetAgentBindingRequest, context: Context
    ) -> binding_service_pb2.AgentBinding:
        return binding_to_proto(await self._bindings.get(current_identity(), request.agent_key))

    async def ListAgentBindings(
        self, request: binding_service_pb2.ListAgentBindingsRequest, context: Context
    ) -> binding_service_pb2.ListAgentBindingsResponse:
        page = await self._bindings.list(
            current_identity(),
            page_size=request.page_size,
            page_token=request.page_token,
            container_id=request.container_id,
        )
        return binding_service_pb2.ListAgentBindingsResponse(
            bindings=[binding_to_proto(binding) for binding in page.bindings],
            next_page_token=page.next_page_token,
        )
