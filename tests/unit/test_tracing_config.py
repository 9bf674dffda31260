"""When tracing is on, read from the standard OTEL_* environment variables."""

from __future__ import annotations

import pytest

from agent_containers.observability.tracing import (
    DEFAULT_SERVICE_NAME,
    Tracing,
    TracingConfig,
    TracingConfigError,
)

ENDPOINT = "http://collector:4317"


@pytest.mark.parametrize(
    "environ",
    [
        {},
        {"OTEL_SERVICE_NAME": "x", "OTEL_TRACES_SAMPLER": "always_on"},
        {"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT},
        {"OTEL_TRACES_EXPORTER": "otlp,none"},
        {"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"},
        {"OTEL_SDK_DISABLED": "TRUE", "OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT},
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "  "},
        {"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": ENDPOINT},
    ],
)
def test_off(environ: dict[str, str]) -> None:
    assert TracingConfig.from_env(environ) is None
    assert Tracing.from_env(environ) is None


@pytest.mark.parametrize(
    ("environ", "exporters", "protocol"),
    [
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT}, ("otlp",), "grpc"),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": ENDPOINT}, ("otlp",), "grpc"),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, ("otlp",), "grpc"),
        ({"OTEL_TRACES_EXPORTER": "console"}, ("console",), "grpc"),
        ({"OTEL_TRACES_EXPORTER": " OTLP , console,otlp"}, ("otlp", "console"), "grpc"),
        (
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT,
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            },
            ("otlp",),
            "http/protobuf",
        ),
        (
            {
                "OTEL_TRACES_EXPORTER": "otlp",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc",
            },
            ("otlp",),
            "grpc",
        ),
        ({"OTEL_SDK_DISABLED": "false", "OTEL_TRACES_EXPORTER": "otlp"}, ("otlp",), "grpc"),
    ],
)
def test_on(environ: dict[str, str], exporters: tuple[str, ...], protocol: str) -> None:
    assert TracingConfig.from_env(environ) == TracingConfig(exporters, protocol)


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, "zipkin"),
        ({"OTEL_TRACES_EXPORTER": "otlp,jaeger"}, "jaeger"),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, "http/json"),
    ],
)
def test_what_the_service_cannot_do_is_an_error(environ: dict[str, str], named: str) -> None:
    with pytest.raises(TracingConfigError, match=named):
        TracingConfig.from_env(environ)


def test_the_resource_names_the_service_unless_the_environment_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=staging")
    tracing = Tracing.from_config(TracingConfig(("console",), "grpc"))
    attributes = tracing.provider.resource.attributes
    assert attributes["service.name"] == DEFAULT_SERVICE_NAME
    assert attributes["deployment.environment"] == "staging"
    assert attributes["service.version"]
    tracing.provider.shutdown()

    monkeypatch.setenv("OTEL_SERVICE_NAME", "containers-eu")
    tracing = Tracing.from_config(TracingConfig(("console",), "grpc"))
    assert tracing.provider.resource.attributes["service.name"] == "containers-eu"
    tracing.provider.shutdown()


def test_the_sampler_is_the_environments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.25")
    tracing = Tracing.from_config(TracingConfig(("console",), "grpc"))
    assert "TraceIdRatioBased{0.25}" in tracing.provider.sampler.get_description()
    tracing.provider.shutdown()
