"""Running the emulator: in-process for tests and the local service, or standalone via the CLI."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from types import TracebackType
from typing import Self

from aiohttp import web

from agent_containers.domain.clock import Clock
from agent_containers.upstream.emulator.app import API_PREFIX, DEFAULT_MAX_UPLOAD_BYTES, create_app
from agent_containers.upstream.emulator.state import EmulatorState

logger = logging.getLogger(__name__)


class EmulatorServer:
    """The emulator bound to a TCP port on the current event loop (no threads).

    `port=0` binds a free port; `base_url` (`http://host:port/v1`) is what to give the openai
    SDK. Use `async with EmulatorServer(clock=...) as emulator:` or `start()`/`stop()`.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        clock: Clock | None = None,
        state: EmulatorState | None = None,
        api_key: str | None = None,
        expired_retention: timedelta | None = None,
        max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
        access_log: bool = False,
    ) -> None:
        """`state` (optional) is shared as is, ignoring `clock` and `expired_retention`.
        `api_key` None accepts any non-empty bearer token; a string requires exactly it."""
        self.host = host
        self.state = (
            state
            if state is not None
            else EmulatorState(clock, expired_retention=expired_retention)
        )
        self.app = create_app(self.state, api_key=api_key, max_upload_bytes=max_upload_bytes)
        self._requested_port = port
        self._access_log = access_log
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    @property
    def started(self) -> bool:
        return self._runner is not None

    @property
    def port(self) -> int:
        """The bound port (the real one when constructed with port 0)."""
        if self._port is None:
            raise RuntimeError("the emulator is not started")
        return self._port

    @property
    def base_url(self) -> str:
        host = self.host
        if host in ("", "0.0.0.0"):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}{API_PREFIX}"

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("the emulator is already started")
        runner = web.AppRunner(
            self.app,
            access_log=logging.getLogger("aiohttp.access") if self._access_log else None,
            # Tests stop it with clients' keep-alive connections still open: don't linger.
            shutdown_timeout=1.0,
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self._requested_port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        logger.info("OpenAI Containers API emulator listening on %s", self.base_url)

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        self._port = None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


async def run_emulator(host: str, port: int) -> None:
    """Serve the emulator on the system clock until the calling task is cancelled."""
    # Standalone, each request is worth a line (the service mutes this logger for itself).
    logging.getLogger("aiohttp.access").setLevel(logging.INFO)
    async with EmulatorServer(host, port, access_log=True):
        await asyncio.Event().wait()
