"""A Node client, loading the contract straight from protos/, binds an agent and resolves its tool.

The script is tests/integration/node/bind_and_resolve.mjs; its gRPC libraries are dev
dependencies of tools/node (`make pytest` installs them). Without `node` or those libraries the
tests are skipped with the reason; with `CI` set they fail instead.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path

from agentcontainers.v1 import binding_service_pb2

from tests.support.service import RunningService, identity

ROOT = Path(__file__).parents[2]
SCRIPT = ROOT / "tests" / "integration" / "node" / "bind_and_resolve.mjs"


@dataclass(frozen=True)
class Completed:
    returncode: int | None
    stdout: str
    stderr: str


async def run_node(node: str, *args: str) -> Completed:
    process = await asyncio.create_subprocess_exec(
        node,
        str(SCRIPT),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    return Completed(process.returncode, stdout.decode(), stderr.decode())


async def test_node_client_binds_and_resolves(node: str, service: RunningService) -> None:
    container = await service.create("node-client")

    result = await run_node(
        node,
        *("--address", f"127.0.0.1:{service.server.port}"),
        *("--tenant", "acme", "--agent", "node-agent", "--container", container.id),
    )

    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    binding, resolved = answer["binding"], answer["resolved"]
    assert binding["agent_key"] == "node-agent"
    assert binding["container_id"] == container.id
    assert binding["openai_container_id"] == container.openai_container_id
    assert binding["container_state"] == "CONTAINER_STATE_RUNNING"
    assert resolved["tool"] == "code_interpreter"
    assert resolved["mode"] == "TOOL_MODE_EXPLICIT"
    assert resolved["source"] == "TOOL_SOURCE_BINDING"
    assert resolved["container_id"] == container.id
    assert resolved["openai_container_id"] == container.openai_container_id
    assert resolved["fallback_reason"] == "FALLBACK_REASON_UNSPECIFIED"
    assert json.loads(resolved["tool_json"]) == {
        "type": "code_interpreter",
        "container": container.openai_container_id,
    }
    # The Python stubs see the binding the Node client made.
    stored = await service.bindings.GetAgentBinding(
        binding_service_pb2.GetAgentBindingRequest(agent_key="node-agent"),
        metadata=identity("acme"),
    )
    assert stored.container_id == container.id


async def test_node_client_without_identity_is_unauthenticated(
    node: str, service: RunningService
) -> None:
    container = await service.create("node-client")

    result = await run_node(
        node,
        *("--address", f"127.0.0.1:{service.server.port}"),
        *("--tenant", "acme", "--agent", "node-agent", "--container", container.id),
        "--no-identity",
    )

    assert result.returncode == 1, result.stdout
    assert "UNAUTHENTICATED" in result.stderr
    assert result.stdout == ""
    page = await service.bindings.ListAgentBindings(
        binding_service_pb2.ListAgentBindingsRequest(), metadata=identity("acme")
    )
    assert list(page.bindings) == []
