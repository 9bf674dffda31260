"""Create, read, list and delete a container through the generated Python stubs.

Run the service first (`make run`), then: `.venv/bin/python examples/containers_quickstart.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import uuid

import grpc
from agentcontainers.v1 import container_pb2, container_service_pb2, container_service_pb2_grpc

# Interim identity: every call names its tenant and user in metadata.
IDENTITY = (("x-tenant-id", "acme"), ("x-user-id", "alice"))


async def main(address: str) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        containers = container_service_pb2_grpc.ContainerServiceStub(channel)
        created = await containers.CreateContainer(
            container_service_pb2.CreateContainerRequest(
                container=container_pb2.Container(
                    name=f"quickstart-{uuid.uuid4().hex[:8]}",
                    memory_tier=container_pb2.MEMORY_TIER_1G,
                    expires_after_minutes=20,
                ),
                request_id=str(uuid.uuid4()),  # retry with the same id: no second container
            ),
            metadata=IDENTITY,
        )
        state = container_pb2.ContainerState.Name(created.state)
        print(f"created {created.id} ({created.openai_container_id}) {state}")

        fetched = await containers.GetContainer(
            container_service_pb2.GetContainerRequest(id=created.id), metadata=IDENTITY
        )
        print(f"expires at {fetched.expire_time.ToJsonString()}")

        page = await containers.ListContainers(
            container_service_pb2.ListContainersRequest(page_size=10), metadata=IDENTITY
        )
        print(f"tenant has {len(page.containers)} live container(s) on the first page")

        deleted = await containers.DeleteContainer(
            container_service_pb2.DeleteContainerRequest(id=created.id), metadata=IDENTITY
        )
        print(f"deleted: {container_pb2.ContainerState.Name(deleted.state)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--address", default="127.0.0.1:50051")
    asyncio.run(main(parser.parse_args().address))
