"""The examples (README's Python quickstart, tool resolution in Python and Node) run against a
real server.

The Node example needs `node` and the gRPC libraries in tools/node (`make pytest` installs them);
without them its tests are skipped with the reason, or fail when `CI` is set.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from agentcontainers.v1 import binding_service_pb2

from tests.support.service import RunningService, identity

ROOT = Path(__file__).resolve().parents[2]
AUTO_TOOL = {"type": "code_interpreter", "container": {"type": "auto", "memory_limit": "1g"}}


@dataclass(frozen=True)
class Completed:
    returncode: int | None
    stdout: str
    stderr: str


async def run(*command: str) -> Completed:
    """Runs an example with no OpenAI key in its environment: nothing can reach OpenAI."""
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    process = await asyncio.create_subprocess_exec(
        *command,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    return Completed(process.returncode, stdout.decode(), stderr.decode())


def same_bytes(first: Path, second: Path) -> bool:
    return first.read_bytes() == second.read_bytes()


async def bound_container_id(service: RunningService, agent: str) -> str:
    binding = await service.bindings.GetAgentBinding(
        binding_service_pb2.GetAgentBindingRequest(agent_key=agent), metadata=identity("acme")
    )
    return binding.container_id


async def test_python_quickstart(service: RunningService) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "examples" / "containers_quickstart.py"),
        "--address",
        f"127.0.0.1:{service.server.port}",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, stderr.decode()
    lines = stdout.decode().splitlines()
    assert lines[0].startswith("created ")
    assert lines[0].endswith("CONTAINER_STATE_RUNNING")
    assert lines[-1] == "deleted: CONTAINER_STATE_DELETED"
    assert service.emulator.state.calls["containers.create"] == 1
    assert service.emulator.state.containers == {}


async def test_python_resolve_tool_binds_and_builds_explicit_tool(service: RunningService) -> None:
    container = await service.create("resolve-example")

    result = await run(
        sys.executable,
        str(ROOT / "examples" / "resolve_tool.py"),
        *("--address", f"127.0.0.1:{service.server.port}"),
        *("--tenant", "acme", "--user", "alice", "--agent", "analyst"),
        *("--container", container.id),
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [
        {"type": "code_interpreter", "container": container.openai_container_id}
    ]
    assert "TOOL_MODE_EXPLICIT from TOOL_SOURCE_BINDING" in result.stderr
    assert await bound_container_id(service, "analyst") == container.id


async def test_python_resolve_tool_without_binding_is_auto(service: RunningService) -> None:
    result = await run(
        sys.executable,
        str(ROOT / "examples" / "resolve_tool.py"),
        *("--address", f"127.0.0.1:{service.server.port}"),
        *("--tenant", "acme", "--user", "alice", "--agent", "analyst"),
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [AUTO_TOOL]
    assert "TOOL_MODE_AUTO from TOOL_SOURCE_AUTO" in result.stderr


async def test_python_resolve_tool_call_needs_an_api_key() -> None:
    result = await run(sys.executable, str(ROOT / "examples" / "resolve_tool.py"), "--call")

    assert result.returncode == 2
    assert "--call needs OPENAI_API_KEY" in result.stderr
    assert result.stdout == ""


async def test_node_resolve_tool_binds_and_prints_the_call(
    node: str, service: RunningService
) -> None:
    container = await service.create("resolve-example")

    result = await run(
        node,
        str(ROOT / "examples" / "node" / "resolve_tool.mjs"),
        *("--address", f"127.0.0.1:{service.server.port}"),
        *("--tenant", "acme", "--user", "alice", "--agent", "analyst"),
        *("--container", container.id),
    )

    assert result.returncode == 0, result.stderr
    tools, end = json.JSONDecoder().raw_decode(result.stdout)
    expected = [{"type": "code_interpreter", "container": container.openai_container_id}]
    assert tools == expected
    call = result.stdout[end:]
    opening = "await client.responses.create("
    assert opening in call
    request = json.loads(call[call.index(opening) + len(opening) : call.index("});") + 1])
    assert request["tools"] == expected
    assert set(request) == {"model", "input", "tools"}
    assert "TOOL_MODE_EXPLICIT from TOOL_SOURCE_BINDING" in result.stderr
    assert await bound_container_id(service, "analyst") == container.id


async def test_node_resolve_tool_without_binding_is_auto(
    node: str, service: RunningService
) -> None:
    result = await run(
        node,
        str(ROOT / "examples" / "node" / "resolve_tool.mjs"),
        *("--address", f"127.0.0.1:{service.server.port}"),
        *("--tenant", "acme", "--user", "alice", "--agent", "analyst"),
    )

    assert result.returncode == 0, result.stderr
    tools, _ = json.JSONDecoder().raw_decode(result.stdout)
    assert tools == [AUTO_TOOL]
    assert "TOOL_MODE_AUTO from TOOL_SOURCE_AUTO" in result.stderr


async def test_python_files_upload_then_download_a_cited_file(
    service: RunningService, tmp_path: Path
) -> None:
    container = await service.create("files-example")
    source = tmp_path / "data.csv"
    source.write_bytes(b"a,b\n1,2\n" * 100_000)  # several pieces
    address = ("--address", f"127.0.0.1:{service.server.port}")

    uploaded = await run(
        sys.executable, str(ROOT / "examples" / "files.py"), *address,
        "upload", "--container", container.id, str(source),
    )  # fmt: skip
    assert uploaded.returncode == 0, uploaded.stderr
    described = json.loads(uploaded.stdout)
    assert described["path"] == "/mnt/data/data.csv"

    # After a run, the citation names the file by upstream ids.
    saved = await run(
        sys.executable, str(ROOT / "examples" / "files.py"), *address,
        "download", "--container", container.openai_container_id,
        "--file", described["id"], "--out", str(tmp_path / "out"),
    )  # fmt: skip
    assert saved.returncode == 0, saved.stderr
    assert same_bytes(Path(saved.stdout.strip()), source)


async def test_node_files_upload_then_download_a_cited_file(
    node: str, service: RunningService, tmp_path: Path
) -> None:
    container = await service.create("node-files-example")
    source = tmp_path / "data.csv"
    source.write_bytes(b"x,y\n3,4\n" * 100_000)
    address = ("--address", f"127.0.0.1:{service.server.port}")
    script = str(ROOT / "examples" / "node" / "files.mjs")

    uploaded = await run(node, script, *address, "upload", "--container", container.id, str(source))
    assert uploaded.returncode == 0, uploaded.stderr
    described = json.loads(uploaded.stdout)
    assert described["path"] == "/mnt/data/data.csv"

    saved = await run(
        node, script, *address, "download", "--container", container.openai_container_id,
        "--file", described["id"], "--out", str(tmp_path / "out"),
    )  # fmt: skip
    assert saved.returncode == 0, saved.stderr
    assert same_bytes(Path(saved.stdout.strip()), source)
