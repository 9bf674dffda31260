"""Container files end to end: the real SDK against the emulator, on both databases."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator

import grpc
import pytest
from agentcontainers.v1 import container_pb2, container_service_pb2
from google.api import httpbody_pb2

from tests.integration.conftest import StartService
from tests.support.service import RunningService, error_info, identity

pb = container_service_pb2
CHUNK = 64 * 1024


async def upload_stream(
    container_id: str, filename: str, data: bytes, *, chunk: int = CHUNK
) -> AsyncIterator[pb.UploadContainerFileRequest]:
    yield pb.UploadContainerFileRequest(container_id=container_id, filename=filename)
    for start in range(0, len(data), chunk):
        yield pb.UploadContainerFileRequest(
            content=httpbody_pb2.HttpBody(data=data[start : start + chunk])
        )


async def upload(
    service: RunningService, container_id: str, filename: str, data: bytes, tenant: str = "acme"
) -> container_pb2.ContainerFile:
    uploaded: container_pb2.ContainerFile = await service.containers.UploadContainerFile(
        upload_stream(container_id, filename, data), metadata=identity(tenant)
    )
    return uploaded


async def download(
    service: RunningService, container_id: str, file_id: str, tenant: str = "acme"
) -> tuple[container_pb2.ContainerFile, bytes, str]:
    call = service.containers.DownloadContainerFile(
        pb.DownloadContainerFileRequest(container_id=container_id, file_id=file_id),
        metadata=identity(tenant),
    )
    described = container_pb2.ContainerFile()
    content = bytearray()
    first = True
    async for message in call:
        if first:
            assert message.data == b""
            assert len(message.extensions) == 1
            message.extensions[0].Unpack(described)
            first = False
        else:
            content += message.data
    disposition = dict(await call.initial_metadata()).get("content-disposition", "")
    return described, bytes(content), str(disposition)


@pytest.mark.parametrize(
    "size", [0, 1, 1024 * 1024, 50 * 1024 * 1024], ids=["0B", "1B", "1MiB", "50MiB"]
)
async def test_round_trips_keep_every_byte(service: RunningService, size: int) -> None:
    container = await service.create("data")
    data = os.urandom(size)
    uploaded = await upload(service, container.id, "input.bin", data)
    assert uploaded.path == "/mnt/data/input.bin"
    assert uploaded.size_bytes == size
    assert uploaded.container_id == container.id
    assert uploaded.source == container_pb2.CONTAINER_FILE_SOURCE_USER
    described, content, disposition = await download(service, container.id, uploaded.id)
    assert hashlib.sha256(content).hexdigest() == hashlib.sha256(data).hexdigest()
    assert described.id == uploaded.id
    assert 'filename="input.bin"' in disposition


async def test_names_are_sanitised_and_land_under_mnt_data(service: RunningService) -> None:
    container = await service.create("names")
    uploaded = await upload(service, container.id, "../../etc/pass\nwd\x00.txt", b"x")
    assert uploaded.path == "/mnt/data/passwd.txt"
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await upload(service, container.id, "dir/..", b"x")
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_citations_name_files_by_upstream_ids(service: RunningService) -> None:
    """A Responses citation carries `cntr_...` and `cfile_...`: both work, within the tenant."""
    container = await service.create("cited")
    produced = service.emulator.state.add_file(
        container.openai_container_id, "/mnt/data/chart.png", b"\x89PNG...", source="assistant"
    )
    described, content, _ = await download(service, container.openai_container_id, produced.id)
    assert content == b"\x89PNG..."
    assert described.container_id == container.id
    assert described.source == container_pb2.CONTAINER_FILE_SOURCE_ASSISTANT
    got = await service.containers.GetContainerFile(
        pb.GetContainerFileRequest(container_id=container.openai_container_id, file_id=produced.id),
        metadata=identity(),
    )
    assert got.path == "/mnt/data/chart.png"
    for tenant_id in (container.id, container.openai_container_id):  # another tenant: not found
        with pytest.raises(grpc.aio.AioRpcError) as hidden:
            await download(service, tenant_id, produced.id, tenant="other")
        assert hidden.value.code() == grpc.StatusCode.NOT_FOUND


async def test_list_get_delete_are_paginated_and_tenant_scoped(service: RunningService) -> None:
    container = await service.create("many")
    uploaded = [
        await upload(service, container.id, f"f{index}.txt", b"%d" % index) for index in range(5)
    ]
    seen: list[str] = []
    token = ""
    while True:
        page = await service.containers.ListContainerFiles(
            pb.ListContainerFilesRequest(container_id=container.id, page_size=2, page_token=token),
            metadata=identity(),
        )
        seen += [file.id for file in page.files]
        token = page.next_page_token
        if not token:
            break
    assert seen == [file.id for file in uploaded]
    deleted = await service.containers.DeleteContainerFile(
        pb.DeleteContainerFileRequest(container_id=container.id, file_id=uploaded[0].id),
        metadata=identity(),
    )
    assert deleted.file_id == uploaded[0].id
    with pytest.raises(grpc.aio.AioRpcError) as gone:
        await service.containers.GetContainerFile(
            pb.GetContainerFileRequest(container_id=container.id, file_id=uploaded[0].id),
            metadata=identity(),
        )
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND
    assert error_info(gone.value).reason == "FILE_NOT_FOUND"
    for call in (
        service.containers.ListContainerFiles(
            pb.ListContainerFilesRequest(container_id=container.id), metadata=identity("other")
        ),
        service.containers.GetContainerFile(
            pb.GetContainerFileRequest(container_id=container.id, file_id=uploaded[1].id),
            metadata=identity("other"),
        ),
        service.containers.DeleteContainerFile(
            pb.DeleteContainerFileRequest(container_id=container.id, file_id=uploaded[1].id),
            metadata=identity("other"),
        ),
        service.containers.UploadContainerFile(
            upload_stream(container.id, "sneaky.txt", b"x"), metadata=identity("other")
        ),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as hidden:
            await call
        assert hidden.value.code() == grpc.StatusCode.NOT_FOUND
        assert error_info(hidden.value).reason == "CONTAINER_NOT_FOUND"
    assert len(service.emulator.state.containers[container.openai_container_id].files) == 4


async def test_concurrent_uploads_to_one_container(service: RunningService) -> None:
    container = await service.create("busy")
    blobs = {f"part{index}.bin": os.urandom(200_000 + index) for index in range(8)}
    uploaded = await asyncio.gather(
        *(upload(service, container.id, name, data) for name, data in blobs.items())
    )
    for file in uploaded:
        _, content, _ = await download(service, container.id, file.id)
        assert content == blobs[file.path.rsplit("/", 1)[-1]]


async def test_copying_an_openai_file_in(service: RunningService) -> None:
    container = await service.create("copied")

    async def copy() -> AsyncIterator[pb.UploadContainerFileRequest]:
        yield pb.UploadContainerFileRequest(container_id=container.id, openai_file_id="file-abc")

    copied = await service.containers.UploadContainerFile(copy(), metadata=identity())
    assert copied.path == "/mnt/data/file-abc"


async def test_a_stream_out_of_order_is_invalid(service: RunningService) -> None:
    container = await service.create("strict")

    async def chunk_first() -> AsyncIterator[pb.UploadContainerFileRequest]:
        yield pb.UploadContainerFileRequest(content=httpbody_pb2.HttpBody(data=b"x"))

    async def named_twice() -> AsyncIterator[pb.UploadContainerFileRequest]:
        yield pb.UploadContainerFileRequest(container_id=container.id, filename="a.txt")
        yield pb.UploadContainerFileRequest(content=httpbody_pb2.HttpBody(data=b"x"))
        yield pb.UploadContainerFileRequest(container_id=container.id, filename="b.txt")

    for stream in (chunk_first(), named_twice()):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await service.containers.UploadContainerFile(stream, metadata=identity())
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert service.emulator.state.containers[container.openai_container_id].files == {}


async def test_an_upload_past_the_limit_leaves_nothing_upstream(
    start_service: StartService,
) -> None:
    service = await start_service(max_upload_bytes=100_000)
    container = await service.create("bounded")
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await upload(
            service,
            container.id,
            "big.bin",
            os.urandom(300_000),
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "exceeds 100000 bytes" in (refused.value.details() or "")
    assert service.emulator.state.containers[container.openai_container_id].files == {}


async def test_a_cancelled_upload_leaves_nothing_upstream(service: RunningService) -> None:
    container = await service.create("abandoned")
    started = asyncio.Event()

    async def endless() -> AsyncIterator[pb.UploadContainerFileRequest]:
        yield pb.UploadContainerFileRequest(container_id=container.id, filename="half.bin")
        for _ in range(10):
            yield pb.UploadContainerFileRequest(content=httpbody_pb2.HttpBody(data=b"x" * CHUNK))
        started.set()
        await asyncio.sleep(3600)

    call = service.containers.UploadContainerFile(endless(), metadata=identity())
    await started.wait()
    await asyncio.sleep(0.2)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    upstream = service.emulator.state.containers
    for _ in range(100):  # a deadline for the removal to reach upstream, not a measurement
        await asyncio.sleep(0.05)
        if not upstream[container.openai_container_id].files:
            break
    assert upstream[container.openai_container_id].files == {}


async def test_files_need_a_running_container(service: RunningService) -> None:
    expired = await service.create("old")
    service.emulator.state.expire(expired.openai_container_id)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await upload(service, expired.id, "late.txt", b"x")
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_info(refused.value).reason == "CONTAINER_EXPIRED"
    fetched = await service.containers.GetContainer(
        pb.GetContainerRequest(id=expired.id), metadata=identity()
    )
    assert fetched.state == container_pb2.CONTAINER_STATE_EXPIRED  # recorded on the way
    deleted = await service.create("deleted")
    await service.containers.DeleteContainer(
        pb.DeleteContainerRequest(id=deleted.id), metadata=identity()
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await service.containers.ListContainerFiles(
            pb.ListContainerFilesRequest(container_id=deleted.id), metadata=identity()
        )
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_info(refused.value).reason == "CONTAINER_NOT_RUNNING"


async def test_a_file_operation_is_activity_that_moves_the_expiry(
    service: RunningService,
) -> None:
    container = await service.create("kept", expires_after_minutes=20)
    service.clock.advance(minutes=15)
    await upload(service, container.id, "touch.txt", b"x")
    fetched = await service.containers.GetContainer(
        pb.GetContainerRequest(id=container.id), metadata=identity()
    )
    assert fetched.expire_time.ToSeconds() == container.expire_time.ToSeconds() + 15 * 60
    # A burst of operations is written once: half a second later the recorded expiry stays.
    service.clock.advance(seconds=0.5)
    await upload(service, container.id, "again.txt", b"y")
    burst = await service.containers.GetContainer(
        pb.GetContainerRequest(id=container.id), metadata=identity()
    )
    assert burst.expire_time == fetched.expire_time


async def test_upstream_failures_keep_the_taxonomy(service: RunningService) -> None:
    container = await service.create("flaky")
    service.emulator.state.fail_next(503, operations="containers.files.list")
    with pytest.raises(grpc.aio.AioRpcError) as unavailable:
        await service.containers.ListContainerFiles(
            pb.ListContainerFilesRequest(container_id=container.id), metadata=identity()
        )
    assert unavailable.value.code() == grpc.StatusCode.UNAVAILABLE
    service.emulator.state.fail_next(400, operations="containers.files.retrieve")
    with pytest.raises(grpc.aio.AioRpcError) as rejected:
        await service.containers.GetContainerFile(
            pb.GetContainerFileRequest(container_id=container.id, file_id="cfile_abc"),
            metadata=identity(),
        )
    assert rejected.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.aio.AioRpcError) as malformed:
        await service.containers.GetContainerFile(
            pb.GetContainerFileRequest(container_id=container.id, file_id="../etc"),
            metadata=identity(),
        )
    assert malformed.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_caller_that_goes_away_closes_the_upstream_stream(service: RunningService) -> None:
    container = await service.create("walked-away")
    uploaded = await upload(service, container.id, "big.bin", os.urandom(50 * 1024 * 1024))
    call = service.containers.DownloadContainerFile(
        pb.DownloadContainerFileRequest(container_id=container.id, file_id=uploaded.id),
        metadata=identity(),
    )
    received = 0
    async for message in call:
        received += len(message.data)
        if received > 1024 * 1024:
            break
    call.cancel()
    state = service.emulator.state
    for _ in range(100):  # a deadline for the emulator to see it, not a measurement
        if state.downloads["aborted"]:
            break
        await asyncio.sleep(0.05)
    assert state.downloads == {"aborted": 1}
