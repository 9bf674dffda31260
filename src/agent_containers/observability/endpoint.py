"""The HTTP endpoint Prometheus scrapes: GET /metrics on an address of its own.

The Prometheus text format by default, OpenMetrics when the scraper's Accept header asks for it
(prometheus-client negotiates), gzip when it accepts it. Collecting runs in a worker thread, so
a scrape never holds up the event loop that serves gRPC calls.
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

PATH = "/metrics"


class MetricsEndpoint:
    """An aiohttp server with one route; start() binds (and raises when it cannot)."""

    def __init__(
        self, host: str, port: int, registry: CollectorRegistry, *, share_port: bool
    ) -> None:
        """`share_port`: other processes may bind the same address (SO_REUSEPORT), as in
        multi-process mode, where any of them gives the same answer."""
        self._host = host
        self._port = port
        self._registry = registry
        self._share_port = share_port
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def _metrics(self, request: web.Request) -> web.Response:
        encoder, content_type = choose_encoder(",".join(request.headers.getall("Accept", [])))
        body = await asyncio.to_thread(encoder, self._registry)
        response = web.Response(body=body, headers={"Content-Type": content_type})
        response.enable_compression()
        return response

    async def start(self) -> int:
        app = web.Application()
        app.router.add_get(PATH, self._metrics)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._host, self._port, reuse_port=self._share_port or None)
            await site.start()
        except OSError as error:
            await runner.cleanup()
            raise OSError(
                error.errno,
                f"cannot serve metrics on {self._host}:{self._port} "
                f"(AGENT_CONTAINERS_METRICS_LISTEN_ADDRESS): {error.strerror or error}",
            ) from error
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        return self.port

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
