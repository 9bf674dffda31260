"""Move files in and out of a container, as an agent runtime does around a run.

Run the service first (`make run`), then:

    .venv/bin/python examples/files.py upload --container <container id> data.csv
    .venv/bin/python examples/files.py download --container cntr_... --file cfile_... --out out/

`upload` streams a local file into the container (it lands under /mnt/data/) before a run, and
prints the ContainerFile as JSON. `download` saves a file the run wrote: pass the `container_id`
and `file_id` of the Responses API's `container_file_citation` as they are (the service's
container UUID works too), and it prints where it saved the file. Bytes stream both ways: neither
this program nor the service holds a whole file in memory.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
from agentcontainers.v1 import container_pb2, container_service_pb2, container_service_pb2_grpc
from google.api import httpbody_pb2
from google.protobuf import json_format

PIECE_BYTES = 256 * 1024  # well below the service's request limit (1 MiB by default)


async def upload(
    stub: container_service_pb2_grpc.ContainerServiceStub,
    metadata: tuple[tuple[str, str], ...],
    container: str,
    path: Path,
) -> container_pb2.ContainerFile:
    async def requests() -> AsyncIterator[container_service_pb2.UploadContainerFileRequest]:
        # The first message names the container and the file; the others carry the content.
        yield container_service_pb2.UploadContainerFileRequest(
            container_id=container, filename=path.name
        )
        with path.open("rb") as source:
            while piece := source.read(PIECE_BYTES):
                yield container_service_pb2.UploadContainerFileRequest(
                    content=httpbody_pb2.HttpBody(data=piece)
                )

    uploaded: container_pb2.ContainerFile = await stub.UploadContainerFile(
        requests(), metadata=metadata
    )
    return uploaded


async def download(
    stub: container_service_pb2_grpc.ContainerServiceStub,
    metadata: tuple[tuple[str, str], ...],
    container: str,
    file_id: str,
    out: Path,
) -> Path:
    call = stub.DownloadContainerFile(
        container_service_pb2.DownloadContainerFileRequest(container_id=container, file_id=file_id),
        metadata=metadata,
    )
    target: Path | None = None
    sink = None
    try:
        async for message in call:
            if target is None:
                # The first message describes the file; the others are its bytes.
                described = container_pb2.ContainerFile()
                message.extensions[0].Unpack(described)
                target = out / Path(described.path).name
                sink = target.open("wb")
                continue
            assert sink is not None
            sink.write(message.data)
    finally:
        if sink is not None:
            sink.close()
    assert target is not None
    return target


async def main_async(args: argparse.Namespace) -> None:
    metadata = (("x-tenant-id", args.tenant), ("x-user-id", args.user))
    async with grpc.aio.insecure_channel(args.address) as channel:
        stub = container_service_pb2_grpc.ContainerServiceStub(channel)
        if args.command == "upload":
            uploaded = await upload(stub, metadata, args.container, Path(args.path))
            print(json_format.MessageToJson(uploaded, preserving_proto_field_name=True))
        else:
            print(await download(stub, metadata, args.container, args.file, Path(args.out)))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--address", default="127.0.0.1:50051")
    parser.add_argument("--tenant", default="acme")
    parser.add_argument("--user", default="alice")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("upload", help="stream a local file into a container")
    up.add_argument("--container", required=True, help="a container UUID or cntr_... id")
    up.add_argument("path")
    down = commands.add_parser("download", help="save a cited file")
    down.add_argument("--container", required=True, help="the citation's container_id")
    down.add_argument("--file", required=True, help="the citation's file_id (cfile_...)")
    down.add_argument("--out", default=".", help="directory to save into")
    args = parser.parse_args()
    if args.command == "download":
        Path(args.out).mkdir(parents=True, exist_ok=True)
    try:
        asyncio.run(main_async(args))
    except grpc.aio.AioRpcError as error:
        print(f"{error.code().name}: {error.details()}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
