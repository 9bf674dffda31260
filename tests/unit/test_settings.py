"""Settings from the environment."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from agent_containers.config import Settings, UpstreamKind


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("AGENT_CONTAINERS_OPENAI_API_KEY", raising=False)


def test_defaults_run_locally() -> None:
    settings = Settings()
    assert settings.listen_address == "127.0.0.1:50051"
    assert settings.database_url.startswith("sqlite+aiosqlite:///")
    assert settings.uses_emulator


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_CONTAINERS_ALLOWED_MEMORY_TIERS", "1g, 16g")
    monkeypatch.setenv("AGENT_CONTAINERS_MAX_CONTAINERS_PER_TENANT", "3")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    settings = Settings()
    assert settings.allowed_memory_tiers == ["1g", "16g"]
    assert settings.max_containers_per_tenant == 3
    assert not settings.uses_emulator
    assert "sk-test" not in repr(settings)  # the key never reaches logs


@pytest.mark.parametrize(
    "values",
    [
        {"allowed_memory_tiers": ["3g"]},
        {"allowed_memory_tiers": []},
        {"default_memory_tier": "16g"},
        {"default_expiry_minutes": 100, "max_expiry_minutes": 50},
        {"upstream": UpstreamKind.OPENAI},
        {"max_containers_per_tenant": 0},
    ],
)
def test_incoherent_settings_are_refused(values: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Settings(**values)


def test_the_emulator_can_be_forced_with_a_key() -> None:
    settings = Settings(upstream=UpstreamKind.EMULATOR, openai_api_key="sk-test")
    assert settings.uses_emulator


def test_every_time_budget_follows_from_the_upstream_timeout() -> None:
    budgets = Settings(openai_timeout_seconds=10).budgets
    assert budgets.create == 25  # one POST, never retried, a lookup, and the transactions
    assert budgets.delete == 25  # the DELETE and a confirming read
    assert budgets.request == 25
    assert budgets.create_in_flight == budgets.create


def test_the_shutdown_grace_defaults_to_the_longest_operation() -> None:
    assert Settings(openai_timeout_seconds=10).grace_seconds == 25
    assert Settings(openai_timeout_seconds=10, shutdown_grace_seconds=40).grace_seconds == 40


def test_a_grace_shorter_than_an_operation_is_refused() -> None:
    with pytest.raises(ValidationError, match="shutdown_grace_seconds"):
        Settings(openai_timeout_seconds=30, shutdown_grace_seconds=10)


def test_log_level_is_checked_and_named() -> None:
    assert Settings(log_level="debug").log_level == "DEBUG"
    with pytest.raises(ValidationError, match="log_level"):
        Settings(log_level="LOUD")


def test_the_metrics_endpoint_is_on_loopback_by_default_and_off_when_empty(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AGENT_CONTAINERS_METRICS_LISTEN_ADDRESS", raising=False)
    assert Settings().metrics_endpoint == ("127.0.0.1", 9464)
    monkeypatch.setenv("AGENT_CONTAINERS_METRICS_LISTEN_ADDRESS", "")
    assert Settings().metrics_endpoint is None
    monkeypatch.setenv("AGENT_CONTAINERS_METRICS_LISTEN_ADDRESS", "[::]:9100")
    assert Settings().metrics_endpoint == ("::", 9100)


@pytest.mark.parametrize("address", ["9464", ":9464", "host:", "host:http", "host:70000"])
def test_a_metrics_address_needs_a_host_and_a_port(address: str) -> None:
    with pytest.raises(ValidationError, match="metrics_listen_address"):
        Settings(metrics_listen_address=address)
