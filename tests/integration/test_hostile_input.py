"""Hostile input gets a clear, cheap answer, from a real server on a real port."""

from __future__ import annotations

import grpc
import pytest
from agentcontainers.v1 import container_service_pb2

from tests.support.service import RunningService, error_info, identity

# --- identity headers ---------------------------------------------------------------------


@pytest.mark.parametrize("header", ["x-tenant-id", "x-user-id"])
async def test_a_repeated_identity_header_is_refused(service: RunningService, header: str) -> None:
    """A gateway that appends instead of replacing must not leave the caller in control."""
    own = await service.create("mine", tenant="acme")
    values = {"x-tenant-id": "acme", "x-user-id": "alice"}
    for order in (("acme-not", "acme"), ("acme", "acme")):  # the last, or the same, twice
        metadata = [(key, value) for key, value in values.items() if key != header]
        metadata += [(header, value) for value in order]
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await service.containers.GetContainer(
                container_service_pb2.GetContainerRequest(id=own.id), metadata=metadata
            )
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert header in (refused.value.details() or "")
        info = error_info(refused.value)
        assert (info.domain, info.reason) == ("agent-containers", "IDENTITY_MALFORMED")
    # One value of each is still the normal case.
    again = await service.containers.GetContainer(
        container_service_pb2.GetContainerRequest(id=own.id), metadata=identity()
    )
    assert again.id == own.id
