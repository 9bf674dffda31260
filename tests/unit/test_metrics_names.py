"""The spellings the gRPC metrics share with go-grpc-prometheus."""

from __future__ import annotations

import grpc

from agent_containers.observability.metrics import GO_CODE_NAMES, split_method


def test_every_status_code_has_its_go_name() -> None:
    assert set(GO_CODE_NAMES) == set(grpc.StatusCode)
    assert GO_CODE_NAMES[grpc.StatusCode.CANCELLED] == "Canceled"  # Go's spelling, one l
    assert len(set(GO_CODE_NAMES.values())) == len(GO_CODE_NAMES)


def test_a_full_method_name_splits_into_service_and_method() -> None:
    assert split_method("/agentcontainers.v1.ContainerService/GetContainer") == (
        "agentcontainers.v1.ContainerService",
        "GetContainer",
    )
