"""Agent bindings and tool resolution: in the contract, implemented by a later issue.

Until then every RPC of these services answers UNIMPLEMENTED (and a test holds it to that).
"""

from __future__ import annotations

from typing import Any

import grpc

Context = grpc.aio.ServicerContext[Any, Any]


async def _unimplemented(context: Context, what: str) -> None:
    await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{what} is not implemented yet")


class PendingAgentBindingServicer:
    """AgentBindingService, not implemented yet."""

    async def BindContainer(self, request: Any, context: Context) -> Any:
        await _unimplemented(context, "BindContainer")

    async def UnbindContainer(self, request: Any, context: Context) -> Any:
        await _unimplemented(context, "UnbindContainer")

    async def GetAgentBinding(self, request: Any, context: Context) -> Any:
        await _unimplemented(context, "GetAgentBinding")

    async def ListAgentBindings(self, request: Any, context: Context) -> Any:
        await _unimplemented(context, "ListAgentBindings")


class PendingToolResolutionServicer:
    """ToolResolutionService, not implemented yet."""

    async def ResolveTool(self, request: Any, context: Context) -> Any:
        await _unimplemented(context, "ResolveTool")

    async def BatchResolveTools(self, request: Any, context: Context) -> Any:
        await _unimplemented(context, "BatchResolveTools")

    async def ValidateAgentSpec(self, request: Any, context: Context) -> Any:
        await _unimplemented(context, "ValidateAgentSpec")

    async def ListTools(self, request: Any, context: Context) -> Any:
        await _unimplemented(context, "ListTools")
