"""Logs: one access line per service call, request ids, lifecycle lines, and no secrets."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from agentcontainers.v1 import container_pb2, container_service_pb2, container_service_pb2_grpc
from google.api import httpbody_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from agent_containers.observability.logging import formatter
from agent_containers.upstream.emulator import EmulatorServer
from tests.integration.conftest import StartService
from tests.support.processes import CLI, clean_env, free_port, spawned, wait_serving
from tests.support.service import RunningService, error_info, identity

pb = container_service_pb2
Lines = Callable[[], list[dict[str, Any]]]

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{TRACE_ID}-b7ad6b7169203331-01"
ACCESS_FIELDS = {
    "time",
    "level",
    "logger",
    "message",
    "method",
    "kind",
    "code",
    "reason",
    "duration_ms",
    "tenant_id",
    "user_id",
    "request_id",
    "trace_id",
    "span_id",
    "peer",
}
SERVICE = "/agentcontainers.v1.ContainerService"


@pytest.fixture
def lines(capsys: pytest.CaptureFixture[str]) -> Iterator[Lines]:
    """Every line the process logs at INFO and above during the test, parsed (each line must be
    one JSON object): the standard-library lines through the service's own formatter, and the
    access lines, which structlog writes straight to stderr (read from pytest's capture)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    written: list[str] = []

    def parsed() -> list[dict[str, Any]]:
        sys.stderr.flush()
        written.append(capsys.readouterr().err)
        text = stream.getvalue() + "".join(written)
        return [json.loads(line) for line in text.splitlines() if line.startswith("{")]

    try:
        yield parsed
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def access_lines(lines: Lines) -> list[dict[str, Any]]:
    return [line for line in lines() if line["logger"] == "agent_containers.access"]


def the_line(lines: Lines, request_id: str) -> dict[str, Any]:
    """The one access line of the call with this request id."""
    found = [line for line in access_lines(lines) if line["request_id"] == request_id]
    assert len(found) == 1, found
    return found[0]


def returned_request_id(trailing: Any) -> str:
    values = [value for key, value in trailing or () if key == "x-request-id"]
    assert len(values) == 1, trailing
    return str(values[0])


def sent(request_id: str | None = None, *, who: bool = True, **extra: str) -> list[tuple[str, str]]:
    metadata = list(identity()) if who else []
    if request_id is not None:
        metadata.append(("x-request-id", request_id))
    metadata.extend(extra.items())
    return metadata


def check_access_line(
    line: dict[str, Any],
    *,
    method: str,
    kind: str,
    code: str,
    request_id: str,
    reason: str | None = None,
    tenant: str | None = "acme",
    user: str | None = "alice",
    trace_id: str | None = TRACE_ID,
) -> None:
    assert set(line) == ACCESS_FIELDS
    assert line["level"] == "INFO"
    assert line["message"] == "call"
    assert line["method"] == f"{SERVICE}/{method}"
    assert line["kind"] == kind
    assert line["code"] == code
    assert line["reason"] == reason
    assert line["tenant_id"] == tenant
    assert line["user_id"] == user
    assert line["request_id"] == request_id
    assert line["trace_id"] == trace_id
    assert line["span_id"] is None  # tracing is off: the service has no span of its own
    assert isinstance(line["duration_ms"], float)
    assert line["duration_ms"] >= 0
    assert re.fullmatch(r"ipv4:127\.0\.0\.1:\d+", line["peer"]), line["peer"]


async def upload_stream(container_id: str, data: bytes) -> AsyncIterator[Any]:
    yield pb.UploadContainerFileRequest(container_id=container_id, filename="notes.txt")
    yield pb.UploadContainerFileRequest(content=httpbody_pb2.HttpBody(data=data))


async def test_every_service_call_has_one_access_line(
    service: RunningService, lines: Lines
) -> None:
    stub = service.containers
    tp = {"traceparent": TRACEPARENT}

    # OK, with the caller's request id: echoed back, and logged.
    create = stub.CreateContainer(
        pb.CreateContainerRequest(container=container_pb2.Container(name="logged")),
        metadata=sent("req-create-1", **tp),
    )
    container = await create
    assert returned_request_id(await create.trailing_metadata()) == "req-create-1"
    check_access_line(
        the_line(lines, "req-create-1"),
        method="CreateContainer",
        kind="unary",
        code="OK",
        request_id="req-create-1",
    )

    # NOT_FOUND, without a request id: one is made, returned and logged.
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await stub.GetContainer(pb.GetContainerRequest(id=str(uuid.uuid4())), metadata=sent(**tp))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    made = returned_request_id(missing.value.trailing_metadata())
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    check_access_line(
        the_line(lines, made),
        method="GetContainer",
        kind="unary",
        code="NOT_FOUND",
        reason=error_info(missing.value).reason,
        request_id=made,
    )

    # Unauthenticated: no tenant, no user; a request id all the same.
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.GetContainer(
            pb.GetContainerRequest(id=container.id), metadata=sent("req-anon", who=False, **tp)
        )
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert returned_request_id(refused.value.trailing_metadata()) == "req-anon"
    check_access_line(
        the_line(lines, "req-anon"),
        method="GetContainer",
        kind="unary",
        code="UNAUTHENTICATED",
        reason="IDENTITY_MISSING",
        tenant=None,
        user=None,
        request_id="req-anon",
    )

    # Streaming both ways.
    upload = stub.UploadContainerFile(
        upload_stream(container.id, b"hello"), metadata=sent("req-upload", **tp)
    )
    uploaded = await upload
    assert returned_request_id(await upload.trailing_metadata()) == "req-upload"
    check_access_line(
        the_line(lines, "req-upload"),
        method="UploadContainerFile",
        kind="client_stream",
        code="OK",
        request_id="req-upload",
    )
    download = stub.DownloadContainerFile(
        pb.DownloadContainerFileRequest(container_id=container.id, file_id=uploaded.id),
        metadata=sent("req-download", **tp),
    )
    assert b"".join([message.data async for message in download]) == b"hello"
    assert returned_request_id(await download.trailing_metadata()) == "req-download"
    check_access_line(
        the_line(lines, "req-download"),
        method="DownloadContainerFile",
        kind="server_stream",
        code="OK",
        request_id="req-download",
    )

    # A request id that is not sane is replaced; a traceparent that is not one is ignored.
    listing = stub.ListContainers(
        pb.ListContainersRequest(),
        metadata=sent("has space", traceparent="00-not-a-trace-01"),
    )
    await listing
    replaced = returned_request_id(await listing.trailing_metadata())
    assert re.fullmatch(r"[0-9a-f]{32}", replaced)
    check_access_line(
        the_line(lines, replaced),
        method="ListContainers",
        kind="unary",
        code="OK",
        request_id=replaced,
        trace_id=None,
    )

    # Health checks are not service calls: no line. Every service call has exactly one.
    health = health_pb2_grpc.HealthStub(service.channel)
    await health.Check(health_pb2.HealthCheckRequest())
    assert len(access_lines(lines)) == 6


async def test_access_log_can_be_turned_off(start_service: StartService, lines: Lines) -> None:
    service = await start_service(access_log=False)
    call = service.containers.ListContainers(pb.ListContainersRequest(), metadata=sent("req-x"))
    await call
    assert returned_request_id(await call.trailing_metadata()) == "req-x"  # still returned
    assert access_lines(lines) == []


async def test_lifecycle_lines_name_the_container_and_the_call(
    service: RunningService, lines: Lines
) -> None:
    create = service.containers.CreateContainer(
        pb.CreateContainerRequest(container=container_pb2.Container(name="lifecycle")),
        metadata=sent("req-life-create", traceparent=TRACEPARENT),
    )
    container = await create
    await service.containers.DeleteContainer(
        pb.DeleteContainerRequest(id=container.id), metadata=sent("req-life-delete")
    )
    by_message = {
        line["message"]: line for line in lines() if line["logger"] != "agent_containers.access"
    }
    created, deleted = by_message["container created"], by_message["container deleted"]
    for line in (created, deleted):
        assert line["container_id"] == container.id
        assert line["openai_id"] == container.openai_container_id
        assert line["tenant_id"] == "acme"
    # Lines written while a call is served carry its request id (and trace) too.
    assert (created["request_id"], created["trace_id"]) == ("req-life-create", TRACE_ID)
    assert deleted["request_id"] == "req-life-delete"
    assert "trace_id" not in deleted


# --- no secret in any line ----------------------------------------------------------------


async def test_no_secret_token_or_file_content_reaches_the_logs_or_the_database(
    tmp_path: Path,
) -> None:
    """`serve` at DEBUG, as an operator runs it: a network-policy secret, the caller's bearer
    token, the OpenAI API key and a file's content must appear in no line and not in the
    database (whose files are searched as bytes)."""
    marker = f"file-content-{uuid.uuid4().hex}"
    secret = f"secret-value-{uuid.uuid4().hex}"
    token = f"token-{uuid.uuid4().hex}"
    api_key = f"sk-key-{uuid.uuid4().hex}"
    needles = {"secret": secret, "token": token, "api key": api_key, "file content": marker}
    address = f"127.0.0.1:{free_port()}"
    database = tmp_path / "db"
    database.mkdir()
    async with (
        EmulatorServer(api_key=api_key) as emulator,
        spawned(
            *CLI,
            "serve",
            cwd=tmp_path,
            env=clean_env(
                AGENT_CONTAINERS_LISTEN_ADDRESS=address,
                AGENT_CONTAINERS_DATABASE_URL=f"sqlite+aiosqlite:///{database / 'ac.db'}",
                AGENT_CONTAINERS_LOG_LEVEL="DEBUG",
                AGENT_CONTAINERS_UPSTREAM="openai",
                AGENT_CONTAINERS_OPENAI_BASE_URL=emulator.base_url,
                AGENT_CONTAINERS_ALLOWED_NETWORK_DOMAINS="api.example.com",
                AGENT_CONTAINERS_SHUTDOWN_DRAIN_SECONDS="0",
                OPENAI_API_KEY=api_key,
            ),
            stderr=asyncio.subprocess.PIPE,
        ) as child,
    ):
        await wait_serving(address, child)
        metadata = (*identity(), ("authorization", f"Bearer {token}"))
        async with grpc.aio.insecure_channel(address) as channel:
            stub = container_service_pb2_grpc.ContainerServiceStub(channel)
            container = await stub.CreateContainer(
                pb.CreateContainerRequest(
                    container=container_pb2.Container(
                        name="secretive",
                        network_policy=container_pb2.NetworkPolicy(
                            access=container_pb2.NETWORK_ACCESS_ALLOWLIST,
                            allowed_domains=["api.example.com"],
                            domain_secrets=[
                                container_pb2.DomainSecret(
                                    domain="api.example.com", name="API_TOKEN", value=secret
                                )
                            ],
                        ),
                    )
                ),
                metadata=metadata,
            )
            uploaded = await stub.UploadContainerFile(
                upload_stream(container.id, marker.encode()), metadata=metadata
            )
            download = stub.DownloadContainerFile(
                pb.DownloadContainerFileRequest(container_id=container.id, file_id=uploaded.id),
                metadata=metadata,
            )
            content = b"".join([message.data async for message in download])
        # What was sent did go through: the search below is not vacuous.
        assert content == marker.encode()
        upstream = emulator.state.containers[container.openai_container_id]
        assert upstream.network_policy["domain_secrets"][0]["value"] == secret
        assert await child.stop() == 0
    stderr = child.stderr.decode()
    logged = [json.loads(line) for line in stderr.splitlines()]  # every line is JSON
    assert {line["level"] for line in logged} >= {"DEBUG", "INFO"}
    calls = [line for line in logged if line["logger"] == "agent_containers.access"]
    assert [line["method"].rsplit("/", 1)[1] for line in calls] == [
        "CreateContainer",
        "UploadContainerFile",
        "DownloadContainerFile",
    ]
    stored = b"".join(path.read_bytes() for path in sorted(database.iterdir()))
    assert b"secretive" in stored  # the database was written
    for what, needle in needles.items():
        assert needle not in stderr, f"the {what} is in the logs"
        assert needle.encode() not in stored, f"the {what} is in the database"


async def test_a_call_its_caller_cancelled_is_logged_with_its_peer(
    service: RunningService, lines: Lines
) -> None:
    """The access line of a call its caller cancelled names the peer as read when the call
    arrived (asking grpc.aio for a cancelled call's peer can crash the process), and the server
    goes on serving."""
    stub = service.containers
    container = await service.create("walked-away")

    async def big() -> AsyncIterator[Any]:  # 16 MiB in pieces under the request limit
        yield pb.UploadContainerFileRequest(container_id=container.id, filename="big.bin")
        for _ in range(32):
            piece = os.urandom(512 * 1024)
            yield pb.UploadContainerFileRequest(content=httpbody_pb2.HttpBody(data=piece))

    uploaded = await stub.UploadContainerFile(big(), metadata=sent())
    call = stub.DownloadContainerFile(
        pb.DownloadContainerFileRequest(container_id=container.id, file_id=uploaded.id),
        metadata=sent("req-walked-away"),
    )
    async for _ in call:
        break  # the first message (the file's metadata), then the caller goes away
    call.cancel()
    for _ in range(100):  # a deadline for the server to see the cancellation, not a measurement
        found = [line for line in access_lines(lines) if line["request_id"] == "req-walked-away"]
        if found:
            break
        await asyncio.sleep(0.05)
    line = the_line(lines, "req-walked-away")
    assert line["code"] == "CANCELLED"
    assert line["peer"].startswith("ipv4:127.0.0.1:")
    listed = await stub.ListContainers(pb.ListContainersRequest(), metadata=sent())
    assert [found.name for found in listed.containers] == ["walked-away"]
