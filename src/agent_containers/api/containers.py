"""ContainerService over gRPC: proto <-> domain translation only."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from itertools import islice
from typing import TYPE_CHECKING, Any

import grpc
from agentcontainers.v1 import container_pb2, container_service_pb2
from google.api import httpbody_pb2
from google.protobuf import timestamp_pb2

from agent_containers.api.identity import current_identity
from agent_containers.domain.containers import (
    MAX_FILE_IDS,
    MAX_METADATA_PAIRS,
    Container,
    ContainerDraft,
    ContainerStatus,
    parse_container_id,
)
from agent_containers.domain.create_options import (
    DISABLED,
    MAX_ALLOWED_DOMAINS,
    MAX_DOMAIN_SECRETS,
    MAX_SKILLS,
    DomainSecret,
    InlineSkill,
    NetworkAccess,
    NetworkPolicy,
    Skill,
    SkillReference,
)
from agent_containers.domain.errors import FieldViolation, InvalidArgument
from agent_containers.services.containers import ContainerService

if TYPE_CHECKING:  # api/files.py builds on this module's translations
    from agent_containers.api.files import ContainerFileServicer

Context = grpc.aio.ServicerContext[Any, Any]

_TIER_TO_PROTO = {
    "1g": container_pb2.MEMORY_TIER_1G,
    "4g": container_pb2.MEMORY_TIER_4G,
    "16g": container_pb2.MEMORY_TIER_16G,
    "64g": container_pb2.MEMORY_TIER_64G,
}
_TIER_FROM_PROTO: dict[int, str] = {number: tier for tier, number in _TIER_TO_PROTO.items()}
_STATUS_TO_PROTO = {
    ContainerStatus.CREATING: container_pb2.CONTAINER_STATE_CREATING,
    ContainerStatus.RUNNING: container_pb2.CONTAINER_STATE_RUNNING,
    ContainerStatus.EXPIRED: container_pb2.CONTAINER_STATE_EXPIRED,
    ContainerStatus.DELETED: container_pb2.CONTAINER_STATE_DELETED,
    ContainerStatus.FAILED: container_pb2.CONTAINER_STATE_FAILED,
}
_STATUS_FROM_PROTO: dict[int, ContainerStatus] = {
    number: status for status, number in _STATUS_TO_PROTO.items()
}


def timestamp(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    message = timestamp_pb2.Timestamp()
    message.FromDatetime(value)
    return message


_ACCESS_FROM_PROTO = {
    container_pb2.NETWORK_ACCESS_UNSPECIFIED: NetworkAccess.DISABLED,
    container_pb2.NETWORK_ACCESS_DISABLED: NetworkAccess.DISABLED,
    container_pb2.NETWORK_ACCESS_ALLOWLIST: NetworkAccess.ALLOWLIST,
}
_ACCESS_TO_PROTO = {
    NetworkAccess.DISABLED: container_pb2.NETWORK_ACCESS_DISABLED,
    NetworkAccess.ALLOWLIST: container_pb2.NETWORK_ACCESS_ALLOWLIST,
}


def network_policy_from_proto(
    message: container_pb2.NetworkPolicy, field: str, unknown: list[FieldViolation]
) -> NetworkPolicy:
    """The requested policy; too many domains or secrets are reported, only the first read."""
    access = _ACCESS_FROM_PROTO.get(message.access)
    if access is None:
        unknown.append(FieldViolation(f"{field}.access", f"unknown access {message.access}"))
        access = NetworkAccess.ALLOWLIST if message.allowed_domains else NetworkAccess.DISABLED
    return NetworkPolicy(
        access,
        leading(message.allowed_domains, MAX_ALLOWED_DOMAINS),
        tuple(
            DomainSecret(secret.domain, secret.name, secret.value)
            for secret in islice(message.domain_secrets, MAX_DOMAIN_SECRETS + 1)
        ),
    )


def skills_from_proto(
    messages: Sequence[container_pb2.Skill], field: str, unknown: list[FieldViolation]
) -> tuple[Skill, ...]:
    skills: list[Skill] = []
    for index, message in enumerate(islice(messages, MAX_SKILLS + 1)):
        match message.WhichOneof("source"):
            case "reference":
                skills.append(SkillReference(message.reference.skill_id, message.reference.version))
            case "inline":
                inline = message.inline
                skills.append(InlineSkill.sent(inline.name, inline.description, inline.zip))
            case _:
                unknown.append(
                    FieldViolation(f"{field}[{index}]", "a reference or an inline skill")
                )
    return tuple(skills)


def network_policy_to_proto(policy: NetworkPolicy) -> container_pb2.NetworkPolicy | None:
    """The recorded policy: secret names only (the values were never kept)."""
    if policy == DISABLED:
        return None
    return container_pb2.NetworkPolicy(
        access=_ACCESS_TO_PROTO[policy.access],
        allowed_domains=policy.allowed_domains,
        domain_secrets=[
            container_pb2.DomainSecret(domain=secret.domain, name=secret.name)
            for secret in policy.secrets
        ],
    )


def skill_to_proto(skill: Skill) -> container_pb2.Skill:
    if isinstance(skill, SkillReference):
        return container_pb2.Skill(
            reference=container_pb2.SkillReference(skill_id=skill.skill_id, version=skill.version)
        )
    return container_pb2.Skill(
        inline=container_pb2.InlineSkill(
            name=skill.name,
            description=skill.description,
            zip_size_bytes=skill.size_bytes,
            zip_sha256=skill.sha256,
        )
    )


def leading(values: Sequence[str], limit: int) -> tuple[str, ...]:
    """The first `limit` + 1 values: enough for validation to see that there are too many,
    without converting the millions a request at the size limit can hold."""
    return tuple(values[: limit + 1])


def memory_tier_from_proto(number: int, field: str, unknown: list[FieldViolation]) -> str:
    """The tier name for an enum number; unspecified is '' (the default applies).

    A number this server does not know (from a newer client) is read as unspecified and added to
    `unknown`, to be reported with every other violation of the request.
    """
    if number == container_pb2.MEMORY_TIER_UNSPECIFIED:
        return ""
    tier = _TIER_FROM_PROTO.get(number)
    if tier is None:
        unknown.append(FieldViolation(field, f"unknown memory tier {number}"))
        return ""
    return tier


def container_state_to_proto(status: ContainerStatus) -> container_pb2.ContainerState:
    return _STATUS_TO_PROTO[status]


def container_to_proto(container: Container) -> container_pb2.Container:
    """The API's view of a container."""
    return container_pb2.Container(
        id=str(container.id),
        openai_container_id=container.openai_id or "",
        name=container.name,
        memory_tier=_TIER_TO_PROTO.get(
            container.memory_tier, container_pb2.MEMORY_TIER_UNSPECIFIED
        ),
        expires_after_minutes=container.expiry_minutes,
        state=_STATUS_TO_PROTO[container.status],
        metadata=dict(container.metadata),
        owner_user_id=container.owner_user_id,
        last_active_time=timestamp(container.last_active_at),
        expire_time=timestamp(container.expire_time),
        refresh_time=timestamp(container.refreshed_at),
        create_time=timestamp(container.created_at),
        update_time=timestamp(container.updated_at),
        delete_time=timestamp(container.deleted_at),
        failure_reason=container.failure_reason or "",
        initial_file_ids=container.initial_file_ids,
        network_policy=network_policy_to_proto(container.network_policy),
        skills=[skill_to_proto(skill) for skill in container.skills],
    )


def _state_filter(number: int) -> ContainerStatus | None:
    if number == container_pb2.CONTAINER_STATE_UNSPECIFIED:
        return None
    try:
        return _STATUS_FROM_PROTO[number]
    except KeyError:
        raise InvalidArgument([FieldViolation("state", f"unknown state {number}")]) from None


class ContainerServicer:
    """Thin shell over ContainerService."""

    def __init__(self, containers: ContainerService, files: ContainerFileServicer) -> None:
        self._containers = containers
        self._files = files

    async def CreateContainer(
        self, request: container_service_pb2.CreateContainerRequest, context: Context
    ) -> container_pb2.Container:
        container = request.container
        unknown: list[FieldViolation] = []
        draft = ContainerDraft(
            name=container.name,
            memory_tier=memory_tier_from_proto(
                container.memory_tier, "container.memory_tier", unknown
            ),
            expiry_minutes=container.expires_after_minutes,
            # Too many pairs or files are reported as such; only the first are checked one by one.
            metadata=dict(islice(container.metadata.items(), MAX_METADATA_PAIRS + 1)),
            file_ids=leading(request.file_ids, MAX_FILE_IDS),
            request_id=request.request_id,
            network_policy=network_policy_from_proto(
                container.network_policy, "container.network_policy", unknown
            ),
            skills=skills_from_proto(container.skills, "container.skills", unknown),
            read_violations=tuple(unknown),
        )
        created = await self._containers.create(current_identity(), draft)
        return container_to_proto(created)

    async def GetContainer(
        self, request: container_service_pb2.GetContainerRequest, context: Context
    ) -> container_pb2.Container:
        container = await self._containers.get(current_identity(), parse_container_id(request.id))
        return container_to_proto(container)

    async def ListContainers(
        self, request: container_service_pb2.ListContainersRequest, context: Context
    ) -> container_service_pb2.ListContainersResponse:
        page = await self._containers.list(
            current_identity(),
            page_size=request.page_size,
            page_token=request.page_token,
            status=_state_filter(request.state),
            show_deleted=request.show_deleted,
        )
        return container_service_pb2.ListContainersResponse(
            containers=[container_to_proto(container) for container in page.containers],
            next_page_token=page.next_page_token,
        )

    async def DeleteContainer(
        self, request: container_service_pb2.DeleteContainerRequest, context: Context
    ) -> container_pb2.Container:
        container = await self._containers.delete(
            current_identity(), parse_container_id(request.id)
        )
        return container_to_proto(container)

    # Container files: translated by api/files.py.

    async def UploadContainerFile(
        self,
        request_iterator: AsyncIterator[container_service_pb2.UploadContainerFileRequest],
        context: Context,
    ) -> container_pb2.ContainerFile:
        return await self._files.upload(request_iterator)

    async def DownloadContainerFile(
        self, request: container_service_pb2.DownloadContainerFileRequest, context: Context
    ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        async for message in self._files.download(request, context):
            yield message

    async def ListContainerFiles(
        self, request: container_service_pb2.ListContainerFilesRequest, context: Context
    ) -> container_service_pb2.ListContainerFilesResponse:
        return await self._files.list(request)

    async def GetContainerFile(
        self, request: container_service_pb2.GetContainerFileRequest, context: Context
    ) -> container_pb2.ContainerFile:
        return await self._files.get(request)

    async def DeleteContainerFile(
        self, request: container_service_pb2.DeleteContainerFileRequest, context: Context
    ) -> container_service_pb2.DeleteContainerFileResponse:
        return await self._files.delete(request)
