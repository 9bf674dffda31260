"""Structured logs: one JSON object a line on stderr, rendered by structlog.

Call sites use the standard library (`log.info("message", extra={...})`); structlog's
ProcessorFormatter turns each record into `time`, `level`, `logger`, `message`, the `extra`
fields, the call's `request_id`, `trace_id` and `span_id` when it runs inside one (see
call_context), and `exception` with a traceback when there is one.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog
from structlog.typing import EventDict, Processor

from agent_containers.observability.call_context import add_call_fields


def _ordered(_logger: Any, _name: str, event: EventDict) -> EventDict:
    """`message` for structlog's `event`, the level upper case, and time, level, logger and
    message first, for a reader."""
    ordered = {
        "time": event.pop("time"),
        "level": event.pop("level").upper(),
        "logger": event.pop("logger"),
        "message": event.pop("event"),
    }
    ordered.update(event)
    return ordered


# Run on every line before it is rendered: on a standard-library record after its `extra` fields
# are copied, on a structlog event as it is logged.
_SHARED: tuple[Processor, ...] = (
    add_call_fields,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True, key="time"),
)


def formatter() -> structlog.stdlib.ProcessorFormatter:
    """The formatter of every line the service writes."""
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.ExtraAdder(), *_SHARED],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            _ordered,
            structlog.processors.JSONRenderer(default=str),
        ],
    )


def configure_logging(level: str) -> None:
    """Sends every log line to stderr as JSON, structlog's own loggers' lines included."""
    # No line shows the process, thread or source location: not computing them for each record
    # saves a few microseconds a line (the access log writes one per call).
    logging.logProcesses = logging.logThreads = logging.logMultiprocessing = False
    logging._srcfile = None
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.filter_by_level,
            *_SHARED,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    # Per-request and per-plugin chatter from libraries (aiosqlite: every statement twice, with
    # its parameters); their warnings still come through.
    for noisy in ("httpx", "httpx2", "alembic.runtime.plugins", "aiohttp.access", "aiosqlite"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
