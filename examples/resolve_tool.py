"""Resolve an agent's code_interpreter tool and build `tools=[...]` for the OpenAI Responses API.

Run the service first (`make run`), then:

    .venv/bin/python examples/resolve_tool.py --agent analyst
    .venv/bin/python examples/resolve_tool.py --agent analyst --container <container uuid>

The first prints the auto tool (OpenAI picks the container); the second binds the agent to one of
the tenant's RUNNING containers first, so the tool names that container. The `tools` list goes to
stdout as JSON, how it was resolved to stderr. With OPENAI_API_KEY set, `--call` also sends a
real `client.responses.create(model=..., input=..., tools=tools)` and prints the answer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from typing import Any

import grpc
from agentcontainers.v1 import (
    binding_service_pb2,
    binding_service_pb2_grpc,
    tool_service_pb2,
    tool_service_pb2_grpc,
)


async def resolve_tools(
    address: str, tenant: str, user: str, agent: str, container: str | None
) -> list[dict[str, Any]]:
    """The `tools` list for the agent's next Responses API call."""
    identity = (("x-tenant-id", tenant), ("x-user-id", user))
    async with grpc.aio.insecure_channel(address) as channel:
        if container:
            bindings = binding_service_pb2_grpc.AgentBindingServiceStub(channel)
            await bindings.BindContainer(
                binding_service_pb2.BindContainerRequest(agent_key=agent, container_id=container),
                metadata=identity,
            )
        tools = tool_service_pb2_grpc.ToolResolutionServiceStub(channel)
        resolved = await tools.ResolveTool(
            tool_service_pb2.ResolveToolRequest(
                agent_key=agent,
                tool="code_interpreter",
                # Mode unspecified: the bound container when it is live, else auto.
                config=tool_service_pb2.CodeInterpreterConfig(),
            ),
            metadata=identity,
        )
    mode = tool_service_pb2.ToolMode.Name(resolved.mode)
    source = tool_service_pb2.ToolSource.Name(resolved.source)
    print(f"{resolved.tool}: {mode} from {source} {resolved.openai_container_id}", file=sys.stderr)
    if resolved.fallback_reason:
        reason = tool_service_pb2.FallbackReason.Name(resolved.fallback_reason)
        print(f"fell back to auto: {reason}: {resolved.fallback_detail}", file=sys.stderr)
    # tool_json is the tool exactly as the Responses API takes it.
    return [json.loads(resolved.tool_json)]


def call_openai(model: str, prompt: str, tools: list[dict[str, Any]]) -> str:
    import openai  # the official SDK (a dependency of the service)

    client = openai.OpenAI()  # reads OPENAI_API_KEY
    response = client.responses.create(model=model, input=prompt, tools=tools)
    return response.output_text


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--address", default="127.0.0.1:50051")
    parser.add_argument("--tenant", default="acme")
    parser.add_argument("--user", default="alice")
    parser.add_argument("--agent", default="analyst", help="the agent's key within the tenant")
    parser.add_argument("--container", help="bind the agent to this container (a UUID) first")
    parser.add_argument("--call", action="store_true", help="call the Responses API for real")
    parser.add_argument("--model", default="gpt-4.1")
    parser.add_argument(
        "--input", default="Use Python to compute the 30th Fibonacci number.", dest="prompt"
    )
    args = parser.parse_args()
    if args.call and not os.environ.get("OPENAI_API_KEY"):
        parser.error("--call needs OPENAI_API_KEY in the environment")

    try:
        tools = asyncio.run(
            resolve_tools(args.address, args.tenant, args.user, args.agent, args.container)
        )
    except grpc.aio.AioRpcError as error:
        print(f"{error.code().name}: {error.details()}", file=sys.stderr)
        return 1
    print(json.dumps(tools, indent=2))

    if args.call:
        print(call_openai(args.model, args.prompt, tools))
    return 0


if __name__ == "__main__":
    sys.exit(main())
