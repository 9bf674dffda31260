"""An in-memory emulator of the OpenAI Containers API, faithful to the spec subset in
`shared/reference/openai-containers-openapi.json`.

Tests and the service's keyless local run start it in-process (`EmulatorServer`); the CLI serves
it standalone (`run_emulator`). Time is read from an injected `Clock`, so expiry can be driven by
a fake clock. `EmulatorState` holds everything and carries the test switches (`fail_next`,
`calls`, `latency`, `expire`).
"""

from agent_containers.upstream.emulator.app import ApiError, create_app
from agent_containers.upstream.emulator.server import EmulatorServer, run_emulator
from agent_containers.upstream.emulator.state import (
    DEFAULT_EXPIRY_MINUTES,
    OPERATIONS,
    Container,
    ContainerFile,
    EmulatorState,
    FailureRule,
)

__all__ = [
    "DEFAULT_EXPIRY_MINUTES",
    "OPERATIONS",
    "ApiError",
    "Container",
    "ContainerFile",
    "EmulatorServer",
    "EmulatorState",
    "FailureRule",
    "create_app",
    "run_emulator",
]
