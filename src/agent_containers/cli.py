"""The `agent-containers` command: serve, migrate, emulator."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys

from pydantic import ValidationError

from agent_containers.config import Settings
from agent_containers.observability.logging import configure_logging


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="agent-containers",
        description="OpenAI code-interpreter containers for multi-tenant agent platforms.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the gRPC service (settings from the environment)")
    commands.add_parser("migrate", help="upgrade the database to the newest schema")
    emulator = commands.add_parser("emulator", help="serve the OpenAI Containers API emulator")
    emulator.add_argument("--host", default="127.0.0.1")
    emulator.add_argument("--port", type=int, default=8090)
    args = parser.parse_args(argv)

    try:
        settings = Settings()
    except ValidationError as error:
        sys.exit(f"invalid settings:\n{error}")
    configure_logging(settings.log_level)

    if args.command == "serve":
        from agent_containers.observability.tracing import TracingConfig, TracingConfigError
        from agent_containers.server import serve

        try:
            tracing = TracingConfig.from_env(os.environ)
        except TracingConfigError as error:
            sys.exit(f"invalid OpenTelemetry settings: {error}")
        asyncio.run(serve(settings, tracing))
    elif args.command == "migrate":
        from agent_containers.store.migrations import upgrade_to_head

        asyncio.run(upgrade_to_head(settings.database_url))
    else:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_emulator(args.host, args.port))


async def _emulator(host: str, port: int) -> None:
    """The standalone emulator until SIGTERM (or SIGINT, as KeyboardInterrupt), then a clean
    exit 0. SIGTERM is what stops it for sure: SIGINT may be ignored, as in a background job."""
    from agent_containers.upstream.emulator import run_emulator

    serving = asyncio.create_task(run_emulator(host, port))
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, serving.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await serving


if __name__ == "__main__":
    main()
