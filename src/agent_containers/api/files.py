"""The container-file RPCs over gRPC: proto <-> domain translation only.

Upload: the first message names the container and the file (or an OpenAI file to copy); every
later message carries only the next piece of content. Download: the first message carries the
file's ContainerFile (in `extensions`) and its media type, every later one only bytes.
"""

from __future__ import annotations

import mimetypes
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import grpc
from agentcontainers.v1 import container_pb2, container_service_pb2
from google.api import httpbody_pb2

from agent_containers.api.containers import timestamp
from agent_containers.api.identity import current_identity
from agent_containers.domain.errors import FieldViolation, InvalidArgument
from agent_containers.domain.files import ContainerFile, parse_container_reference
from agent_containers.services.files import ContainerFileService

Context = grpc.aio.ServicerContext[Any, Any]
UploadStream = AsyncIterator[container_service_pb2.UploadContainerFileRequest]

_SOURCE_TO_PROTO = {
    "user": container_pb2.CONTAINER_FILE_SOURCE_USER,
    "assistant": container_pb2.CONTAINER_FILE_SOURCE_ASSISTANT,
}


def file_to_proto(file: ContainerFile) -> container_pb2.ContainerFile:
    return container_pb2.ContainerFile(
        id=file.file_id,
        container_id=str(file.container_id),
        path=file.path,
        size_bytes=file.size_bytes,
        source=_SOURCE_TO_PROTO.get(file.source, container_pb2.CONTAINER_FILE_SOURCE_UNSPECIFIED),
        create_time=timestamp(file.created_at),
    )


def content_disposition(filename: str) -> str:
    """An attachment header value, ASCII-only as gRPC metadata must be (RFC 6266 / 5987)."""
    fallback = filename.encode("ascii", "replace").decode().replace('"', "_").replace("\\", "_")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _opening_only(field: str) -> InvalidArgument:
    return InvalidArgument(
        [FieldViolation(field, "only the first message names the container and the file")]
    )


class ContainerFileServicer:
    """The file half of ContainerService (ContainerServicer delegates to it)."""

    def __init__(self, files: ContainerFileService) -> None:
        self._files = files

    async def upload(self, requests: UploadStream) -> container_pb2.ContainerFile:
        first = await anext(requests, None)
        if first is None or not first.container_id:
            raise InvalidArgument(
                [FieldViolation("container_id", "the first message must name the container")]
            )
        reference = parse_container_reference(first.container_id, "container_id")
        identity = current_identity()
        if first.openai_file_id:
            if first.filename or first.content.data:
                raise InvalidArgument(
                    [FieldViolation("openai_file_id", "copies a file: send no filename or data")]
                )
            async for _ in requests:
                raise InvalidArgument(
                    [FieldViolation("content", "a copied file takes no further messages")]
                )
            copied = await self._files.copy(identity, reference, first.openai_file_id)
            return file_to_proto(copied)

        async def pieces() -> AsyncIterator[bytes]:
            if first.content.data:
                yield first.content.data
            async for message in requests:
                if message.container_id or message.filename or message.openai_file_id:
                    raise _opening_only("container_id")
                if message.content.data:
                    yield message.content.data

        uploaded = await self._files.upload(identity, reference, first.filename, pieces())
        return file_to_proto(uploaded)

    async def download(
        self, request: container_service_pb2.DownloadContainerFileRequest, context: Context
    ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        reference = parse_container_reference(request.container_id, "container_id")
        async with self._files.download(current_identity(), reference, request.file_id) as (
            file,
            content,
        ):
            await context.send_initial_metadata(
                (("content-disposition", content_disposition(file.filename)),)
            )
            opening = httpbody_pb2.HttpBody(
                content_type=mimetypes.guess_type(file.filename)[0] or "application/octet-stream"
            )
            opening.extensions.add().Pack(file_to_proto(file))
            yield opening
            async for piece in content:
                yield httpbody_pb2.HttpBody(data=piece)

    async def list(
        self, request: container_service_pb2.ListContainerFilesRequest
    ) -> container_service_pb2.ListContainerFilesResponse:
        page = await self._files.list(
            current_identity(),
            parse_container_reference(request.container_id, "container_id"),
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return container_service_pb2.ListContainerFilesResponse(
            files=[file_to_proto(file) for file in page.files],
            next_page_token=page.next_page_token,
        )

    async def get(
        self, request: container_service_pb2.GetContainerFileRequest
    ) -> container_pb2.ContainerFile:
        found = await self._files.get(
            current_identity(),
            parse_container_reference(request.container_id, "container_id"),
            request.file_id,
        )
        return file_to_proto(found)

    async def delete(
        self, request: container_service_pb2.DeleteContainerFileRequest
    ) -> container_service_pb2.DeleteContainerFileResponse:
        deleted = await self._files.delete(
            current_identity(),
            parse_container_reference(request.container_id, "container_id"),
            request.file_id,
        )
        return container_service_pb2.DeleteContainerFileResponse(file_id=deleted)
