"""ToolResolutionService over gRPC: proto <-> domain translation only."""

from __future__ import annotations

import json
from typing import Any

import grpc
from agentcontainers.v1 import tool_service_pb2
from google.protobuf import struct_pb2

from agent_containers.api.bindings import binding_to_proto
from agent_containers.api.containers import leading, memory_tier_from_proto, timestamp
from agent_containers.api.identity import current_identity
from agent_containers.domain.containers import MAX_FILE_IDS
from agent_containers.domain.errors import FieldViolation, InvalidArgument
from agent_containers.domain.tools import (
    FallbackReason,
    Resolution,
    ToolConfig,
    ToolMode,
    ToolRequest,
    ToolSource,
)
from agent_containers.services.tools import MAX_SPEC_TOOLS, PLAIN_CONFIG, ToolResolutionService

Context = grpc.aio.ServicerContext[Any, Any]

_MODE_FROM_PROTO: dict[tool_service_pb2.ToolMode, ToolMode] = {
    tool_service_pb2.TOOL_MODE_UNSPECIFIED: ToolMode.UNSPECIFIED,
    tool_service_pb2.TOOL_MODE_AUTO: ToolMode.AUTO,
    tool_service_pb2.TOOL_MODE_EXPLICIT: ToolMode.EXPLICIT,
}
_MODE_TO_PROTO = {mode: number for number, mode in _MODE_FROM_PROTO.items()}
_SOURCE_TO_PROTO = {
    ToolSource.OVERRIDE: tool_service_pb2.TOOL_SOURCE_OVERRIDE,
    ToolSource.SPEC: tool_service_pb2.TOOL_SOURCE_SPEC,
    ToolSource.BINDING: tool_service_pb2.TOOL_SOURCE_BINDING,
    ToolSource.AUTO: tool_service_pb2.TOOL_SOURCE_AUTO,
}
_REASON_TO_PROTO = {
    FallbackReason.NO_BINDING: tool_service_pb2.FALLBACK_REASON_NO_BINDING,
    FallbackReason.CONTAINER_NOT_FOUND: tool_service_pb2.FALLBACK_REASON_CONTAINER_NOT_FOUND,
    FallbackReason.CONTAINER_EXPIRED: tool_service_pb2.FALLBACK_REASON_CONTAINER_EXPIRED,
    FallbackReason.CONTAINER_EXPIRING: tool_service_pb2.FALLBACK_REASON_CONTAINER_EXPIRING,
    FallbackReason.CONTAINER_NOT_RUNNING: tool_service_pb2.FALLBACK_REASON_CONTAINER_NOT_RUNNING,
}


def _config(message: tool_service_pb2.CodeInterpreterConfig, field: str) -> ToolConfig:
    unknown: list[FieldViolation] = []
    mode = _MODE_FROM_PROTO.get(message.mode)
    if mode is None:  # a number from a newer client: reported with every other violation
        unknown.append(FieldViolation(f"{field}.mode", f"unknown mode {message.mode}"))
    return ToolConfig(
        mode=ToolMode.UNSPECIFIED if mode is None else mode,
        memory_tier=memory_tier_from_proto(message.memory_tier, f"{field}.memory_tier", unknown),
        file_ids=leading(message.file_ids, MAX_FILE_IDS),
        container_id=message.container_id,
        read_violations=tuple(unknown),
    )


def resolution_to_proto(resolution: Resolution) -> tool_service_pb2.ResolvedTool:
    container = resolution.container
    tool_struct = struct_pb2.Struct()
    tool_struct.update(resolution.tool_definition)
    return tool_service_pb2.ResolvedTool(
        tool=resolution.tool,
        mode=_MODE_TO_PROTO[resolution.mode],
        source=_SOURCE_TO_PROTO[resolution.source],
        container_id=str(container.container_id) if container else "",
        openai_container_id=(container.openai_id or "") if container else "",
        container_expire_time=timestamp(container.expire_time) if container else None,
        fallback_reason=(
            _REASON_TO_PROTO[resolution.fallback_reason]
            if resolution.fallback_reason
            else tool_service_pb2.FALLBACK_REASON_UNSPECIFIED
        ),
        fallback_detail=resolution.fallback_detail,
        tool_json=json.dumps(resolution.tool_definition, separators=(",", ":")),
        tool_struct=tool_struct,
    )


def _spec_requests(
    agent_key: str, spec: tool_service_pb2.AgentSpec, container_override: str = ""
) -> list[ToolRequest]:
    # Counted before anything is converted: a request at the size limit holds millions of tools.
    if len(spec.tools) > MAX_SPEC_TOOLS:
        raise InvalidArgument([FieldViolation("spec.tools", f"at most {MAX_SPEC_TOOLS} tools")])
    return [
        ToolRequest(
            agent_key=agent_key,
            tool=tool.tool,
            config=_config(tool.code_interpreter, f"spec.tools[{index}].code_interpreter"),
            container_override=container_override,
        )
        for index, tool in enumerate(spec.tools)
    ]


MAX_CACHED_REPLIES = 10_000


class ToolResolutionServicer:
    """Thin shell over ToolResolutionService."""

    def __init__(self, tools: ToolResolutionService) -> None:
        self._tools = tools
        # ResolveTool answers the same agent the same thing run after run: building the reply
        # (a Struct, JSON, timestamps) costs more than resolving it, so equal answers share one.
        self._replies: dict[Resolution, tool_service_pb2.ResolvedTool] = {}

    def _reply(self, resolution: Resolution) -> tool_service_pb2.ResolvedTool:
        reply = self._replies.get(resolution)
        if reply is None:
            if len(self._replies) >= MAX_CACHED_REPLIES:
                self._replies.clear()
            reply = self._replies[resolution] = resolution_to_proto(resolution)
        return reply

    async def ResolveTool(
        self, request: tool_service_pb2.ResolveToolRequest, context: Context
    ) -> tool_service_pb2.ResolvedTool:
        resolution = await self._tools.resolve(
            current_identity(),
            ToolRequest(
                agent_key=request.agent_key,
                tool=request.tool,
                config=(
                    _config(request.config, "config")
                    if request.HasField("config")
                    else PLAIN_CONFIG
                ),
                container_override=request.container_override,
            ),
        )
        return self._reply(resolution)

    async def BatchResolveTools(
        self, request: tool_service_pb2.BatchResolveToolsRequest, context: Context
    ) -> tool_service_pb2.BatchResolveToolsResponse:
        resolutions = await self._tools.resolve_spec(
            current_identity(),
            request.agent_key,
            _spec_requests(request.agent_key, request.spec, request.container_override),
        )
        return tool_service_pb2.BatchResolveToolsResponse(
            tools=[resolution_to_proto(r) for r in resolutions]
        )

    async def ValidateAgentSpec(
        self, request: tool_service_pb2.ValidateAgentSpecRequest, context: Context
    ) -> tool_service_pb2.ValidateAgentSpecResponse:
        resolutions = await self._tools.validate_spec(
            current_identity(), request.agent_key, _spec_requests(request.agent_key, request.spec)
        )
        return tool_service_pb2.ValidateAgentSpecResponse(
            tools=[resolution_to_proto(r) for r in resolutions]
        )

    async def ListTools(
        self, request: tool_service_pb2.ListToolsRequest, context: Context
    ) -> tool_service_pb2.ListToolsResponse:
        entries = await self._tools.catalog(current_identity(), request.agent_key)
        return tool_service_pb2.ListToolsResponse(
            tools=[
                tool_service_pb2.ToolDescription(
                    name=entry.name,
                    available=entry.available,
                    modes=[_MODE_TO_PROTO[mode] for mode in entry.modes],
                    binding=binding_to_proto(entry.binding) if entry.binding else None,
                    binding_live=entry.binding_live,
                )
                for entry in entries
            ]
        )
