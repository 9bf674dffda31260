"""Structured logs: one JSON object a line on stderr, rendered by structlog.

Call sites use the standard library (`log.info("message", extra={...})`); structlog's
ProcessorFormatter turns each record into `time`, `level`, `logger`, `message`, the `extra`
fields, the call's `request_id`, `trace_id` and `span_id` when it runs inside one (see
call_context), and `exception` with a traceback when there is one.
"""

from __future__ import annotations

import contextlib
import json
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


class _StderrBytes:
    """stderr's byte stream, looked up at each write (tests and embedders may replace stderr),
    flushed only when asked: lines gather in its buffer instead of costing a write each."""

    def write(self, data: bytes) -> None:
        # A line that cannot be written is dropped, as the standard library's handlers drop
        # theirs: a closed or broken stderr must not fail the call being logged. (try, not
        # contextlib.suppress: a call's line pays nothing for it.)
        try:  # noqa: SIM105
            sys.stderr.buffer.write(data)
        except (OSError, ValueError, AttributeError):
            pass

    def flush(self) -> None:
        """Nothing: structlog flushes after every line; the owner calls flush_now()."""

    @staticmethod
    def flush_now() -> None:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            sys.stderr.flush()


class CallLines:
    """The lines of one logger written on every call (the access log), and their flush.

    The same JSON as every other line (time, level, logger, message first; structlog's
    TimeStamper for the time, json with `default=str`), without a logger in between: the caller
    gives the finished line as a dict, and it goes into stderr's buffer without a flush. A
    standard-library record and the ProcessorFormatter cost three times the instructions a line,
    a structlog bound logger twice (callgrind; docs/benchmarks.md). Lines of other loggers flush
    these as they are written; the owner calls flush() soon after a line (and at stop), so a
    quiet service shows its last calls within a moment.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._stamp = structlog.processors.TimeStamper(fmt="iso", utc=True, key="time")
        # Built once: json.dumps(default=...) builds an encoder on every call.
        self._encode = json.JSONEncoder(default=str).encode
        self._stream = _StderrBytes()

    def write(self, line: dict[str, Any]) -> None:
        """Writes a line whose first keys are `time` (stamped now), `level`, `logger` and
        `message`."""
        self._stamp(None, "info", line)
        self._stream.write(self._encode(line).encode() + b"\n")

    def flush(self) -> None:
        self._stream.flush_now()


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
