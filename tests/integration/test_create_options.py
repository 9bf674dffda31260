"""Create options: initial files, a network policy with secrets, and skills."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import zipfile

import grpc
import pytest
import sqlalchemy as sa
from agentcontainers.v1 import (
    binding_service_pb2,
    container_pb2,
    container_service_pb2,
    tool_service_pb2,
)
from google.rpc import error_details_pb2

from agent_containers.store.database import create_engine
from tests.integration.conftest import StartService
from tests.support.service import RunningService, error_info, identity, unpack

SECRET = "s3cr3t-value-that-must-never-leave-upstream"


def skill_zip() -> bytes:
    bundle = io.BytesIO()
    with zipfile.ZipFile(bundle, "w") as archive:
        archive.writestr("SKILL.md", "# csv tools\n")
    return bundle.getvalue()


def full_request() -> container_service_pb2.CreateContainerRequest:
    return container_service_pb2.CreateContainerRequest(
        container=container_pb2.Container(
            name="equipped",
            network_policy=container_pb2.NetworkPolicy(
                access=container_pb2.NETWORK_ACCESS_ALLOWLIST,
                allowed_domains=["api.example.com", "pypi.org"],
                domain_secrets=[
                    container_pb2.DomainSecret(
                        domain="api.example.com", name="API_TOKEN", value=SECRET
                    )
                ],
            ),
            skills=[
                container_pb2.Skill(
                    reference=container_pb2.SkillReference(skill_id="skill_abc", version="2")
                ),
                container_pb2.Skill(
                    inline=container_pb2.InlineSkill(
                        name="csv-tools", description="Reads CSV files", zip=skill_zip()
                    )
                ),
            ],
        ),
        file_ids=["file-abc123"],
    )


@pytest.fixture
async def equipped(start_service: StartService) -> RunningService:
    return await start_service(allowed_network_domains=["*.example.com", "pypi.org"])


async def test_every_option_reaches_upstream_and_is_shown_without_secrets(
    equipped: RunningService, migrated_database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    created = await equipped.containers.CreateContainer(full_request(), metadata=identity())
    assert created.state == container_pb2.CONTAINER_STATE_RUNNING

    upstream = equipped.emulator.state.containers[created.openai_container_id]
    assert upstream.network_policy == {
        "type": "allowlist",
        "allowed_domains": ["api.example.com", "pypi.org"],
        "domain_secrets": [{"domain": "api.example.com", "name": "API_TOKEN", "value": SECRET}],
    }
    assert [skill["type"] for skill in upstream.skills] == ["skill_reference", "inline"]
    assert upstream.skills[0] == {
        "type": "skill_reference",
        "skill_id": "skill_abc",
        "version": "2",
    }
    assert upstream.skills[1]["source"]["media_type"] == "application/zip"
    assert "/mnt/data/file-abc123" in [file.path for file in upstream.files.values()]

    fetched = await equipped.containers.GetContainer(
        container_service_pb2.GetContainerRequest(id=created.id), metadata=identity()
    )
    listed = await equipped.containers.ListContainers(
        container_service_pb2.ListContainersRequest(), metadata=identity()
    )
    for shown in (created, fetched, listed.containers[0]):
        assert list(shown.initial_file_ids) == ["file-abc123"]
        policy = shown.network_policy
        assert policy.access == container_pb2.NETWORK_ACCESS_ALLOWLIST
        assert list(policy.allowed_domains) == ["api.example.com", "pypi.org"]
        assert [(s.domain, s.name, s.value) for s in policy.domain_secrets] == [
            ("api.example.com", "API_TOKEN", "")
        ]
        reference, inline = shown.skills
        assert (reference.reference.skill_id, reference.reference.version) == ("skill_abc", "2")
        assert inline.inline.name == "csv-tools"
        assert inline.inline.zip == b""  # never returned
        assert inline.inline.zip_size_bytes == len(skill_zip())
        assert inline.inline.zip_sha256 == hashlib.sha256(skill_zip()).hexdigest()
        assert SECRET.encode() not in shown.SerializeToString()

    # Sent upstream and nowhere else: not in the database, not in any log line.
    engine = create_engine(migrated_database_url)
    try:
        async with engine.connect() as connection:
            rows = (await connection.execute(sa.text("SELECT * FROM containers"))).all()
    finally:
        await engine.dispose()
    assert rows
    assert SECRET not in repr(rows)
    assert SECRET not in caplog.text
    assert all(SECRET not in repr(record.__dict__) for record in caplog.records)


async def test_a_disabled_policy_is_the_default(service: RunningService) -> None:
    created = await service.create("plain")
    assert not created.HasField("network_policy")
    upstream = service.emulator.state.containers[created.openai_container_id]
    assert upstream.network_policy == {"type": "disabled"}
    assert list(created.skills) == []


async def test_every_problem_with_the_options_is_reported_at_once(
    equipped: RunningService,
) -> None:
    request = container_service_pb2.CreateContainerRequest(
        container=container_pb2.Container(
            name="bad",
            network_policy=container_pb2.NetworkPolicy(
                access=container_pb2.NETWORK_ACCESS_ALLOWLIST,
                allowed_domains=["evil.org", "Not A Domain"],
                domain_secrets=[
                    container_pb2.DomainSecret(domain="other.example.com", name="1bad", value="")
                ],
            ),
            skills=[
                container_pb2.Skill(
                    reference=container_pb2.SkillReference(skill_id="", version="x")
                ),
                container_pb2.Skill(
                    inline=container_pb2.InlineSkill(name="", description="", zip=b"not a zip")
                ),
                container_pb2.Skill(),
            ],
        )
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await equipped.containers.CreateContainer(request, metadata=identity())
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(refused.value).reason == "INVALID_FIELD"
    fields = {v.field for v in unpack(refused.value, error_details_pb2.BadRequest).field_violations}
    assert fields == {
        "container.network_policy.allowed_domains[0]",  # outside the server's bound
        "container.network_policy.allowed_domains[1]",  # not a host name
        "container.network_policy.domain_secrets[0].domain",
        "container.network_policy.domain_secrets[0].name",
        "container.network_policy.domain_secrets[0].value",
        "container.skills[0].reference.skill_id",
        "container.skills[0].reference.version",
        "container.skills[1].inline.name",
        "container.skills[1].inline.description",
        "container.skills[1].inline.zip",
        "container.skills[2]",
    }
    assert equipped.emulator.state.calls["containers.create"] == 0


async def test_without_allowed_domains_no_container_reaches_the_network(
    service: RunningService,
) -> None:
    request = full_request()
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await service.containers.CreateContainer(request, metadata=identity())
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert SECRET not in (refused.value.details() or "")
    assert SECRET.encode() not in b"".join(
        value if isinstance(value, bytes) else value.encode()
        for _, value in refused.value.trailing_metadata() or ()
    )


async def test_domains_and_secrets_need_an_allowlist(equipped: RunningService) -> None:
    request = container_service_pb2.CreateContainerRequest(
        container=container_pb2.Container(
            name="confused",
            network_policy=container_pb2.NetworkPolicy(
                access=container_pb2.NETWORK_ACCESS_DISABLED, allowed_domains=["pypi.org"]
            ),
        )
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await equipped.containers.CreateContainer(request, metadata=identity())
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields = [v.field for v in unpack(refused.value, error_details_pb2.BadRequest).field_violations]
    assert fields == ["container.network_policy"]


async def test_a_container_created_with_files_resolves_like_any_other(
    service: RunningService,
) -> None:
    created = await service.create("with-files", file_ids=["file-abc123"])
    await service.bindings.BindContainer(
        binding_service_pb2.BindContainerRequest(agent_key="agent", container_id=created.id),
        metadata=identity(),
    )
    resolved = await service.tools.ResolveTool(
        tool_service_pb2.ResolveToolRequest(agent_key="agent", tool="code_interpreter"),
        metadata=identity(),
    )
    assert json.loads(resolved.tool_json) == {
        "type": "code_interpreter",
        "container": created.openai_container_id,
    }
    auto = await service.tools.ResolveTool(
        tool_service_pb2.ResolveToolRequest(
            agent_key="other",
            tool="code_interpreter",
            config=tool_service_pb2.CodeInterpreterConfig(
                mode=tool_service_pb2.TOOL_MODE_AUTO, file_ids=["file-abc123"]
            ),
        ),
        metadata=identity(),
    )
    assert json.loads(auto.tool_json)["container"]["file_ids"] == ["file-abc123"]
