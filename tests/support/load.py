"""Calls in flight on a real server process while it is sent SIGTERM, and what became of each.

Used by tests/integration/test_shutdown.py and scripts/shutdown_under_load.py. Two kinds of
client keep one call in flight each, back to back:

- movers behave like a client behind a balancer: the first UNAVAILABLE sends them elsewhere, so
  they stop sending to this server;
- stubborn clients ignore the refusals (UNAVAILABLE with ErrorInfo reason SHUTTING_DOWN) and keep
  sending, until their channel itself fails: either after the RetryInfo delay the refusal
  carries, or (`pause=False`) at once, which keeps the server from ever seeing a quiet moment.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from dataclasses import dataclass, field

import grpc
from agentcontainers.v1 import (
    binding_service_pb2,
    binding_service_pb2_grpc,
    container_pb2,
    container_service_pb2,
    container_service_pb2_grpc,
    tool_service_pb2,
    tool_service_pb2_grpc,
)
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from tests.support.processes import Child

IDENTITY = (("x-tenant-id", "load"), ("x-user-id", "load"))
CALL_TIMEOUT_SECONDS = 30.0
SHUTTING_DOWN = "SHUTTING_DOWN"


@dataclass(frozen=True)
class Outcome:
    """One call: when it started and ended (time.monotonic) and how it ended."""

    rpc: str
    started: float
    ended: float
    code: grpc.StatusCode
    reason: str = ""
    """ErrorInfo.reason of a failed call's rich status, "" without one."""
    retry_delay: float | None = None
    """RetryInfo.retry_delay of a failed call, in seconds, None without one."""


@dataclass
class Tally:
    """Every call the clients made, and when SIGTERM was sent."""

    signal_at: float
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def before_signal(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.started < self.signal_at]

    def counts(self) -> dict[str, int]:
        """The figures to quote: calls started, and how they ended."""
        codes = Counter(o.code for o in self.outcomes)
        refused = sum(
            1 for o in self.outcomes if o.code is grpc.StatusCode.UNAVAILABLE and o.reason
        )
        return {
            "started": len(self.outcomes),
            "in_flight_at_signal": sum(1 for o in self.before_signal if o.ended >= self.signal_at),
            "started_before_signal": len(self.before_signal),
            "ok_of_those": sum(1 for o in self.before_signal if o.code is grpc.StatusCode.OK),
            "ok": codes[grpc.StatusCode.OK],
            "unavailable": codes[grpc.StatusCode.UNAVAILABLE],
            "unavailable_refused_by_server": refused,
            "unavailable_channel": codes[grpc.StatusCode.UNAVAILABLE] - refused,
            "cancelled": codes[grpc.StatusCode.CANCELLED],
            "other": sum(
                n
                for code, n in codes.items()
                if code
                not in (
                    grpc.StatusCode.OK,
                    grpc.StatusCode.UNAVAILABLE,
                    grpc.StatusCode.CANCELLED,
                )
            ),
        }

    def others(self) -> Counter[str]:
        """Codes and reasons of the calls that ended neither OK nor UNAVAILABLE."""
        return Counter(
            f"{o.code.name} {o.reason}".strip()
            for o in self.outcomes
            if o.code not in (grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE)
        )


def _failure(error: grpc.aio.AioRpcError) -> tuple[str, float | None]:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    reason, delay = "", None
    for detail in status.details if status is not None else ():
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason = info.reason
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry = error_details_pb2.RetryInfo()
            detail.Unpack(retry)
            delay = retry.retry_delay.ToNanoseconds() / 1e9
    return reason, delay


class Client:
    """Stubs on one channel, and the two calls the load is made of."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.containers = container_service_pb2_grpc.ContainerServiceStub(channel)
        self.bindings = binding_service_pb2_grpc.AgentBindingServiceStub(channel)
        self.tools = tool_service_pb2_grpc.ToolResolutionServiceStub(channel)
        self.container_id = ""

    async def prepare(self) -> None:
        """One container, bound to one agent: both calls read real rows."""
        created = await self.containers.CreateContainer(
            container_service_pb2.CreateContainerRequest(
                container=container_pb2.Container(name="under-load")
            ),
            metadata=IDENTITY,
        )
        self.container_id = created.id
        await self.bindings.BindContainer(
            binding_service_pb2.BindContainerRequest(agent_key="bound", container_id=created.id),
            metadata=IDENTITY,
        )

    async def call(self, rpc: str) -> Outcome:
        started = time.monotonic()
        try:
            if rpc == "ResolveTool":
                await self.tools.ResolveTool(
                    tool_service_pb2.ResolveToolRequest(agent_key="bound", tool="code_interpreter"),
                    metadata=IDENTITY,
                    timeout=CALL_TIMEOUT_SECONDS,
                )
            else:
                await self.containers.GetContainer(
                    container_service_pb2.GetContainerRequest(id=self.container_id),
                    metadata=IDENTITY,
                    timeout=CALL_TIMEOUT_SECONDS,
                )
        except grpc.aio.AioRpcError as error:
            reason, delay = _failure(error)
            return Outcome(rpc, started, time.monotonic(), error.code(), reason, delay)
        return Outcome(rpc, started, time.monotonic(), grpc.StatusCode.OK)


async def _mover(client: Client, rpc: str, tally: Tally, until: float) -> None:
    while time.monotonic() < until:
        outcome = await client.call(rpc)
        tally.outcomes.append(outcome)
        if outcome.code is not grpc.StatusCode.OK:
            return  # a balancer sends the next call to another replica


async def _stubborn(client: Client, rpc: str, tally: Tally, until: float, pause: bool) -> None:
    while time.monotonic() < until:
        outcome = await client.call(rpc)
        tally.outcomes.append(outcome)
        if outcome.code is grpc.StatusCode.OK:
            continue
        if outcome.reason != SHUTTING_DOWN:
            return  # the channel failed (or something unexpected): nothing more to send
        await asyncio.sleep((outcome.retry_delay or 0) if pause else 0)


async def sigterm_under_load(
    child: Child,
    address: str,
    *,
    movers: int,
    stubborn: int,
    pause: bool = True,
    channels: int = 8,
    load_seconds: float = 1.0,
    limit_seconds: float = 90.0,
) -> Tally:
    """Keeps `movers + stubborn` calls in flight on the server at `address` (the process
    `child`), sends it SIGTERM after `load_seconds`, and returns once every client stopped."""
    opened = [grpc.aio.insecure_channel(address) for _ in range(channels + stubborn)]
    try:
        clients = [Client(channel) for channel in opened]
        await clients[0].prepare()
        for client in clients[1:]:
            client.container_id = clients[0].container_id
        tally = Tally(signal_at=float("inf"))
        until = time.monotonic() + limit_seconds
        rpcs = ("ResolveTool", "GetContainer")
        workers = [
            asyncio.create_task(_mover(clients[i % channels], rpcs[i % 2], tally, until))
            for i in range(movers)
        ] + [
            asyncio.create_task(_stubborn(clients[channels + i], rpcs[i % 2], tally, until, pause))
            for i in range(stubborn)
        ]
        try:
            await asyncio.sleep(load_seconds)
            tally.signal_at = time.monotonic()
            child.process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(asyncio.gather(*workers), limit_seconds)
        finally:
            for worker in workers:
                worker.cancel()
        return tally
    finally:
        for channel in opened:
            await channel.close()
