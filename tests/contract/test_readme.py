"""The README documents every setting and gives the two set-up commands that CI runs."""

from __future__ import annotations

import re
from pathlib import Path

from agent_containers.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_every_setting_is_in_the_readme_table() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [
        f"AGENT_CONTAINERS_{name.upper()}"
        for name in Settings.model_fields
        if f"| `AGENT_CONTAINERS_{name.upper()}` |" not in readme
    ]
    assert missing == []


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "make run " in readme
    assert "make test " in readme
    assert "\nmake test\n" in (ROOT / ".ci" / "run").read_text()


def _grpcurl_calls(text: str) -> list[tuple[str, str]]:
    """(method, JSON body) of every `grpcurl ... -d '...' ... pkg.Service/Method` in a text."""
    joined = re.sub(r"\\\n\s*", " ", text)
    calls = []
    # A command runs to the end of its line; a quoted body may span lines.
    for command in re.findall(r"grpcurl (?:[^'\n]|'[^']*')*", joined):
        body = re.search(r"-d '(.*?)'", command, re.S)
        method = re.search(r"\s([\w.]+\.\w+/\w+)\s*$", command)
        if " -d " in command:
            assert body, f"unreadable grpcurl body: {command[:80]}"
            assert method, f"no method in: {command[:80]}"
            calls.append((method.group(1), body.group(1)))
    return calls


def test_grpcurl_examples_name_real_methods_and_valid_bodies() -> None:
    """grpcurl is not on this machine: check each documented call against the contract."""
    from agentcontainers.v1 import binding_service_pb2, container_service_pb2, tool_service_pb2
    from google.protobuf import json_format, message_factory
    from grpc_health.v1 import health_pb2

    files = (binding_service_pb2, container_service_pb2, tool_service_pb2, health_pb2)
    services = {
        service.full_name: service
        for module in files
        for service in module.DESCRIPTOR.services_by_name.values()
    }
    checked = 0
    for document in ("README.md", "docs/api.md"):
        text = (ROOT / document).read_text().replace('"${ID[@]}"', "")
        for method, body in _grpcurl_calls(text):
            service_name, method_name = method.split("/")
            descriptor = services[service_name].methods_by_name[method_name].input_type
            request = message_factory.GetMessageClass(descriptor)()
            json_format.Parse(body, request)  # unknown fields or bad enum names raise
            checked += 1
    assert checked == 10
