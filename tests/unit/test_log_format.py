"""The log line format: JSON with the standard keys, the call's fields and the current trace."""

from __future__ import annotations

import contextvars
import io
import json
import logging
import sys
from typing import Any

import pytest
from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import format_span_id, format_trace_id

from agent_containers.observability.call_context import UNSAMPLED_CONTEXT, bind_call, trace_ids
from agent_containers.observability.logging import CallLines, formatter

CALLER_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{CALLER_TRACE_ID}-00f067aa0ba902b7-01"


def render(message: str, *, exc_info: Any = None, **extra: Any) -> dict[str, Any]:
    record = logging.LogRecord("some.logger", logging.WARNING, __file__, 1, message, (), exc_info)
    record.__dict__.update(extra)
    line = formatter().format(record)
    assert "\n" not in line
    parsed: dict[str, Any] = json.loads(line)
    return parsed


def in_a_call(function: Any, *args: Any, **kwargs: Any) -> Any:
    """Runs `function` in a context of its own, as a served call runs in its own task."""
    return contextvars.copy_context().run(function, *args, **kwargs)


def test_a_line_outside_calls() -> None:
    line = render("hello %s", container_id="c-1", count=3)
    assert list(line)[:4] == ["time", "level", "logger", "message"]
    assert line["time"].endswith("Z")
    assert {key: value for key, value in line.items() if key != "time"} == {
        "level": "WARNING",
        "logger": "some.logger",
        "message": "hello %s",
        "container_id": "c-1",
        "count": 3,
    }


def test_an_exception_is_rendered_with_its_traceback() -> None:
    try:
        raise ValueError("broken")
    except ValueError:
        line = render("failed", exc_info=sys.exc_info())
    assert "ValueError: broken" in line["exception"]
    assert "Traceback" in line["exception"]


def test_a_line_in_a_call_carries_its_request_id_and_the_callers_trace() -> None:
    def logged() -> dict[str, Any]:
        bind_call("req-1", TRACEPARENT)
        return render("inside")

    line = in_a_call(logged)
    assert (line["request_id"], line["trace_id"]) == ("req-1", CALLER_TRACE_ID)
    assert "span_id" not in line  # no span of the service's own: tracing is off


def test_a_field_the_call_site_sets_is_kept() -> None:
    def logged() -> dict[str, Any]:
        bind_call("req-1", TRACEPARENT)
        return render("unexpected error", trace_id="own-id")

    assert in_a_call(logged)["trace_id"] == "own-id"


def test_the_current_span_wins_over_the_callers_traceparent() -> None:
    """With tracing on, the server span (whose parent is the caller's) is current."""
    tracer = TracerProvider().get_tracer(__name__)

    def logged() -> tuple[Any, dict[str, Any], tuple[str | None, str | None]]:
        bind_call("req-2", TRACEPARENT)
        with tracer.start_as_current_span("call") as span:
            return span.get_span_context(), render("inside a span"), trace_ids()

    context, line, ids = in_a_call(logged)
    expected = (format_trace_id(context.trace_id), format_span_id(context.span_id))
    assert ids == expected
    assert (line["trace_id"], line["span_id"]) == expected
    assert line["trace_id"] != CALLER_TRACE_ID


def test_an_unsampled_call_logs_the_callers_trace_or_none() -> None:
    """The ids of a span that is not exported lead nowhere: only the caller's trace is kept."""
    tracer = TracerProvider(sampler=ALWAYS_OFF).get_tracer(__name__)

    def logged(traceparent: str | None) -> list[tuple[str | None, str | None]]:
        bind_call("req-4", traceparent)
        seen = []
        with tracer.start_as_current_span("call"):
            seen.append(trace_ids())
        otel_context.attach(UNSAMPLED_CONTEXT)
        seen.append(trace_ids())
        assert "span_id" not in render("inside")
        return seen

    assert in_a_call(logged, TRACEPARENT) == [(CALLER_TRACE_ID, None)] * 2
    assert in_a_call(logged, None) == [(None, None)] * 2


def test_a_malformed_traceparent_gives_no_trace_id() -> None:
    def logged() -> dict[str, Any]:
        bind_call("req-3", "00-zz-yy-01")
        return render("inside")

    line = in_a_call(logged)
    assert line["request_id"] == "req-3"
    assert "trace_id" not in line


def test_an_access_line_that_cannot_be_written_is_dropped_not_raised(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class BrokenPipe(io.RawIOBase):
        def writable(self) -> bool:
            return True

        def write(self, data: object) -> int:
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stderr", io.TextIOWrapper(io.BufferedWriter(BrokenPipe(), 1)))
    lines = CallLines("agent_containers.access")
    # No exception: the call being logged goes on.
    lines.write({"time": None, "level": "INFO", "logger": lines.name, "message": "call"})
    lines.flush()
