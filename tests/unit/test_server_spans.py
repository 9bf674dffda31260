"""The trace id a server call's span is started with: the one its sampling was decided on."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import TraceIdRatioBased

from agent_containers.observability.server_spans import CallIdGenerator


def test_a_span_started_with_a_chosen_trace_id_has_it_and_the_next_span_does_not() -> None:
    ids = CallIdGenerator()
    tracer = TracerProvider(id_generator=ids).get_tracer(__name__)
    chosen = 0x4BF92F3577B34DA6A3CE929D0E0E4736
    span = ids.start_span_with(chosen, tracer, "call", {})
    assert span.get_span_context().trace_id == chosen
    assert span.is_recording()
    other = tracer.start_span("next")
    assert other.get_span_context().trace_id != chosen


def test_the_sdk_samples_the_chosen_trace_id_as_it_was_decided() -> None:
    """With a ratio sampler the decision depends on the trace id only: a span started with
    an id the sampler keeps is recorded, one it drops is not, whatever ids come after."""
    ratio = TraceIdRatioBased(0.5)
    ids = CallIdGenerator()
    tracer = TracerProvider(sampler=ratio, id_generator=ids).get_tracer(__name__)
    kept, dropped = 1, (1 << 64) - 1  # low 64 bits under and over the bound
    for _ in range(20):
        assert ids.start_span_with(kept, tracer, "call", {}).is_recording()
        assert not ids.start_span_with(dropped, tracer, "call", {}).is_recording()
