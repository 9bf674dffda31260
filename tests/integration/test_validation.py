"""Malformed input on every field of every implemented RPC: INVALID_ARGUMENT, field named."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from agentcontainers.v1 import container_pb2, container_service_pb2
from google.rpc import error_details_pb2

from agent_containers.domain import pagination
from tests.support.service import RunningService, error_info, identity, unpack

pb = container_service_pb2
Container = container_pb2.Container

CREATE_CASES: list[tuple[str, dict[str, Any], str, str]] = [
    # (case id, CreateContainerRequest fields, field named in the violation, ErrorInfo reason)
    ("name-missing", {"container": Container()}, "container.name", "INVALID_FIELD"),
    ("name-too-long", {"container": Container(name="n" * 129)}, "container.name", "INVALID_FIELD"),
    ("name-slash", {"container": Container(name="a/b")}, "container.name", "INVALID_FIELD"),
    ("name-leading-space", {"container": Container(name=" a")}, "container.name", "INVALID_FIELD"),
    (
        "tier-unknown-enum",
        {"container": Container(name="a", memory_tier=99)},  # type: ignore[arg-type]
        "container.memory_tier",
        "INVALID_FIELD",
    ),
    (
        "tier-not-allowed",
        {"container": Container(name="a", memory_tier=container_pb2.MEMORY_TIER_64G)},
        "container.memory_tier",
        "MEMORY_TIER_NOT_ALLOWED",
    ),
    (
        "expiry-negative",
        {"container": Container(name="a", expires_after_minutes=-1)},
        "container.expires_after_minutes",
        "INVALID_FIELD",
    ),
    (
        "expiry-above-max",
        {"container": Container(name="a", expires_after_minutes=1441)},
        "container.expires_after_minutes",
        "INVALID_FIELD",
    ),
    (
        "metadata-too-many",
        {"container": Container(name="a", metadata={f"k{i}": "v" for i in range(17)})},
        "container.metadata",
        "INVALID_FIELD",
    ),
    (
        "metadata-key-too-long",
        {"container": Container(name="a", metadata={"k" * 65: "v"})},
        "container.metadata",
        "INVALID_FIELD",
    ),
    (
        "metadata-empty-key",
        {"container": Container(name="a", metadata={"": "v"})},
        "container.metadata",
        "INVALID_FIELD",
    ),
    (
        "metadata-value-too-long",
        {"container": Container(name="a", metadata={"k": "v" * 513})},
        "container.metadata",
        "INVALID_FIELD",
    ),
    (
        "file-ids-too-many",
        {"container": Container(name="a"), "file_ids": [f"file-{i}" for i in range(51)]},
        "file_ids",
        "INVALID_FIELD",
    ),
    (
        "file-id-malformed",
        {"container": Container(name="a"), "file_ids": ["cntr_123"]},
        "file_ids[0]",
        "INVALID_FIELD",
    ),
    (
        "request-id-not-uuid",
        {"container": Container(name="a"), "request_id": "retry-1"},
        "request_id",
        "INVALID_FIELD",
    ),
]


def violations(error: grpc.aio.AioRpcError) -> list[str]:
    return [v.field for v in unpack(error, error_details_pb2.BadRequest).field_violations]


@pytest.mark.parametrize(
    ("fields", "field", "reason"),
    [case[1:] for case in CREATE_CASES],
    ids=[case[0] for case in CREATE_CASES],
)
async def test_create_rejects_malformed_field(
    service: RunningService, fields: dict[str, Any], field: str, reason: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await service.containers.CreateContainer(
            pb.CreateContainerRequest(**fields), metadata=identity()
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(refused.value).reason == reason
    assert error_info(refused.value).domain == "agent-containers"
    assert any(v.startswith(field) for v in violations(refused.value)), violations(refused.value)
    # Nothing was written and nothing was created upstream.
    assert service.emulator.state.calls["containers.create"] == 0
    listed = await service.containers.ListContainers(
        pb.ListContainersRequest(show_deleted=True), metadata=identity()
    )
    assert list(listed.containers) == []


async def test_create_reports_every_violation_at_once(service: RunningService) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await service.containers.CreateContainer(
            pb.CreateContainerRequest(
                container=Container(name="", expires_after_minutes=-5),
                request_id="nope",
            ),
            metadata=identity(),
        )
    assert sorted(violations(refused.value)) == [
        "container.expires_after_minutes",
        "container.name",
        "request_id",
    ]


@pytest.mark.parametrize("bad_id", ["", "not-a-uuid", "cntr_abc"])
@pytest.mark.parametrize("rpc", ["GetContainer", "DeleteContainer"])
async def test_container_id_must_be_a_uuid(service: RunningService, rpc: str, bad_id: str) -> None:
    request_type = getattr(pb, f"{rpc}Request")
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await getattr(service.containers, rpc)(request_type(id=bad_id), metadata=identity())
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(refused.value) == ["id"]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"page_size": -1}, "page_size"),
        ({"page_token": "garbage!"}, "page_token"),
        ({"page_token": "eyJxIjoiYSIsImsiOlsiYiIsImMiXX0"}, "page_token"),  # a forged token
        ({"state": 42}, "state"),
    ],
    ids=["page-size-negative", "page-token-garbage", "page-token-forged", "state-unknown"],
)
async def test_list_rejects_malformed_field(
    service: RunningService, fields: dict[str, Any], field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await service.containers.ListContainers(
            pb.ListContainersRequest(**fields), metadata=identity()
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(refused.value) == [field]


async def test_missing_container_is_not_found(service: RunningService) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await service.containers.GetContainer(
            pb.GetContainerRequest(id="6f1c1d9e-8d0e-4c1e-9a57-1f3a0c9e2b11"), metadata=identity()
        )
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    info = unpack(missing.value, error_details_pb2.ResourceInfo)
    assert info.resource_type == "container"


@pytest.mark.parametrize(
    "forged_key",
    [
        ["2026-01-01T00:00:00", "6f1c1d9e-8d0e-4c1e-9a57-1f3a0c9e2b11"],  # no time zone
        ["0001-01-01T00:00:00+05:00", "6f1c1d9e-8d0e-4c1e-9a57-1f3a0c9e2b11"],  # overflows
        ["2026-01-01T00:00:00+00:00", "not-a-uuid"],
    ],
)
async def test_forged_page_tokens_are_invalid_argument(
    service: RunningService, forged_key: list[str]
) -> None:
    """The fingerprint is no secret: a token built by hand must still be refused cleanly."""
    fingerprint = pagination.query_fingerprint("containers", "acme", None, False)
    token = pagination.encode_page_token(fingerprint, forged_key)
    for page_token in (token, "W" * 100_000):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await service.containers.ListContainers(
                pb.ListContainersRequest(page_token=page_token), metadata=identity()
            )
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert violations(refused.value) == ["page_token"]


async def test_control_characters_in_metadata_are_refused(service: RunningService) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await service.containers.CreateContainer(
            pb.CreateContainerRequest(container=Container(name="a", metadata={"k": "a\x00b"})),
            metadata=identity(),
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(refused.value) == ["container.metadata['k']"]
