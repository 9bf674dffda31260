"""The deploy files give the process the time its shutdown needs (TimeBudgets.termination).

Each file's SIGTERM-to-SIGKILL allowance must be at least preStop + drain + grace + margin,
computed with `Settings` from the environment the file sets (the defaults for the rest). The
values are read with regular expressions (PyYAML is not a dependency): the shapes below are the
ones these files use, and a test fails if it cannot find what it looks for.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from agent_containers.api.health import LIVENESS
from agent_containers.config import Settings
from agent_containers.server import SERVICE_NAMES

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUBERNETES = DEPLOY / "kubernetes" / "deployment.yaml"
COMPOSE = DEPLOY / "docker-compose.yaml"
PREFIX = "AGENT_CONTAINERS_"


@pytest.fixture(autouse=True)
def no_settings_from_here(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the files' environment counts, not the one the tests run in."""
    for key in list(os.environ):
        if key.startswith(PREFIX) or key == "OPENAI_API_KEY":
            monkeypatch.delenv(key)


def settings_from(env: dict[str, str]) -> Settings:
    """Settings as the process would build them from `env` (a key stands in for a Secret's)."""
    values: dict[str, object] = {
        key.removeprefix(PREFIX).lower(): value
        for key, value in env.items()
        if key.startswith(PREFIX) and value != ""
    }
    values.setdefault("openai_api_key", "from-the-secret")
    return Settings(**values)  # type: ignore[arg-type]


def termination_needed(settings: Settings, *, pre_stop: float) -> float:
    return settings.budgets.termination(
        pre_stop=pre_stop, drain=settings.shutdown_drain_seconds, grace=settings.grace_seconds
    )


def one(pattern: str, text: str, what: str) -> re.Match[str]:
    matches = list(re.finditer(pattern, text, re.MULTILINE))
    assert len(matches) == 1, f"expected one {what}, found {len(matches)}"
    return matches[0]


# --- Kubernetes --------------------------------------------------------------------------------


def kubernetes_service_container() -> str:
    """The Deployment's `agent-containers` container (not the migrate init container)."""
    deployment = KUBERNETES.read_text().split("\n---")[0]
    start = one(r"^      containers:\n", deployment, "containers: list").end()
    return deployment[start:]


def kubernetes_env(container: str) -> dict[str, str]:
    pairs = re.findall(r'- name: (\w+)\n\s+value: "?([^"\n]*)"?\n', container)
    return dict(pairs)


def test_kubernetes_grace_period_covers_the_shutdown() -> None:
    manifest = KUBERNETES.read_text()
    period = int(one(r"^\s+terminationGracePeriodSeconds: (\d+)$", manifest, "period")[1])
    container = kubernetes_service_container()
    sleep = one(r'preStop:\n\s+exec:\n\s+command: \["sleep", "(\d+)"\]', container, "preStop sleep")
    settings = settings_from(kubernetes_env(container))
    assert settings.listen_address == "0.0.0.0:50051"  # the env was read

    needed = termination_needed(settings, pre_stop=float(sleep[1]))
    assert period >= needed, (
        f"terminationGracePeriodSeconds {period} < preStop {sleep[1]} + drain "
        f"{settings.shutdown_drain_seconds} + grace {settings.grace_seconds} + margin = {needed}"
    )


def test_kubernetes_metrics_are_reachable_and_scraped_per_pod() -> None:
    container = kubernetes_service_container()
    endpoint = settings_from(kubernetes_env(container)).metrics_endpoint
    assert endpoint is not None, "the manifest turns the metrics endpoint off"
    host, port = endpoint
    assert host not in ("127.0.0.1", "localhost", "::1"), (
        "loopback: nothing outside the pod scrapes it"
    )
    pod_template = KUBERNETES.read_text().split("\n---")[0]
    assert one(r'prometheus\.io/port: "(\d+)"', pod_template, "scrape port")[1] == str(port)
    assert re.search(rf"- name: metrics\n\s+containerPort: {port}\n", container)


# --- Docker Compose ----------------------------------------------------------------------------


def compose_duration(text: str) -> float:
    """A Compose duration: `90s`, `1m30s`, `2m`."""
    parts = re.fullmatch(r"(?:(\d+)m)?(?:(\d+)s)?", text)
    assert text, "empty duration"
    assert parts is not None, f"unknown duration {text!r}"
    return 60 * int(parts[1] or 0) + int(parts[2] or 0)


def compose_service() -> str:
    compose = COMPOSE.read_text()
    start = one(r"^  agent-containers:\n", compose, "agent-containers service").end()
    end = re.search(r"^\S|^  \S", compose[start:], re.MULTILINE)
    return compose[start : start + end.start()] if end else compose[start:]


def test_compose_stop_grace_period_covers_the_shutdown() -> None:
    service = compose_service()
    period = compose_duration(one(r"^    stop_grace_period: (\S+)$", service, "period")[1])
    block = one(r"^    environment:\n((?:      .*\n)+)", service, "environment")[1]
    env = dict(re.findall(r"^      (\w+):[ ]*(.*)$", block, re.MULTILINE))
    assert "AGENT_CONTAINERS_DATABASE_URL" in env  # the env was read
    settings = settings_from(env)

    needed = termination_needed(settings, pre_stop=0)  # no preStop: SIGTERM comes first
    assert period >= needed, (
        f"stop_grace_period {period} s < drain {settings.shutdown_drain_seconds} + grace "
        f"{settings.grace_seconds} + margin = {needed}"
    )


# --- what the prose says -----------------------------------------------------------------------


@pytest.mark.parametrize("document", ["deploy/README.md", "docs/runbook.md"])
def test_documents_quote_the_manifest_grace_period(document: str) -> None:
    period = one(r"terminationGracePeriodSeconds: (\d+)$", KUBERNETES.read_text(), "period")[1]
    quoted = re.findall(r"terminationGracePeriodSeconds: (\d+)", (ROOT / document).read_text())
    assert quoted, f"{document} does not say what terminationGracePeriodSeconds is"
    assert set(quoted) == {period}


def test_the_kubernetes_probes_ask_the_health_names_that_mean_what_they_need() -> None:
    text = KUBERNETES.read_text()

    def probed_service(probe: str) -> str:
        found = re.search(
            rf"{probe}:\n(?:\s+#.*\n)*\s+grpc:\n\s+port: \d+\n(\s+service: (\S+)\n)?", text
        )
        assert found, f"no grpc {probe} in {KUBERNETES}"
        return found.group(2) or ""

    assert probed_service("livenessProbe") == LIVENESS
    assert probed_service("readinessProbe") in ("", *SERVICE_NAMES)
    assert probed_service("startupProbe") in ("", *SERVICE_NAMES)
