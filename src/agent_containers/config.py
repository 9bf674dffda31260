"""Settings, read from the environment (prefix AGENT_CONTAINERS_) with embedded defaults.

The defaults run the service on a fresh checkout: SQLite file, loopback only, and the Containers
API emulator in-process when no OpenAI key is set.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from agent_containers.domain.budgets import TimeBudgets
from agent_containers.domain.containers import MEMORY_TIERS
from agent_containers.domain.tools import FallbackPolicy


class OrphanPolicy(StrEnum):
    """What the reconciler does with a container of ours upstream that no live row accounts for."""

    DELETE = "delete"  # delete it upstream (it costs money and nobody can reach it)
    REPORT = "report"  # only log and count it


class UpstreamKind(StrEnum):
    """Which Containers API the service talks to."""

    AUTO = "auto"  # openai when an API key is set, else the in-process emulator
    OPENAI = "openai"
    EMULATOR = "emulator"


def split_host_port(address: str) -> tuple[str, int]:
    """`host:port` or `[v6 address]:port` -> (host, port); ValueError when it is neither."""
    host, colon, port = address.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not colon or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"expected host:port (port 0-65535), got {address!r}")
    return host, int(port)


class Settings(BaseSettings):
    """Every setting of the service; the README has a table of them."""

    model_config = SettingsConfigDict(env_prefix="AGENT_CONTAINERS_", extra="ignore")

    listen_address: str = Field(
        default="127.0.0.1:50051", description="host:port the gRPC server binds"
    )
    metrics_listen_address: str = Field(
        default="127.0.0.1:9464",
        description="host:port of the Prometheus endpoint (GET /metrics); empty: no endpoint",
    )
    database_url: str = Field(
        default="sqlite+aiosqlite:///./var/agent-containers.db",
        description="SQLAlchemy async URL: sqlite+aiosqlite:///... or postgresql+asyncpg://...",
    )
    upstream: UpstreamKind = Field(
        default=UpstreamKind.AUTO,
        description="auto (openai with a key, else emulator), openai, or emulator",
    )
    openai_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("AGENT_CONTAINERS_OPENAI_API_KEY", "OPENAI_API_KEY"),
        description="OpenAI API key; OPENAI_API_KEY is read too",
    )
    openai_base_url: str | None = Field(
        default=None, description="OpenAI base URL (a proxy, Azure, or an emulator)"
    )
    openai_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description="total time one upstream operation may take, the SDK's retries included",
    )
    openai_max_retries: int = Field(
        default=2, ge=0, le=10, description="SDK retries on 429, 5xx and connection errors"
    )
    default_memory_tier: str = Field(default="1g", description="tier when a create names none")
    allowed_memory_tiers: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["1g", "4g"],
        description="comma-separated tiers a container create or an auto tool may ask for",
    )
    allowed_network_domains: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="comma-separated domains a container's network allowlist may name: "
        "`example.com` exactly, `*.example.com` its subdomains, `*` any; empty: no network",
    )
    auto_memory_tier: str = Field(
        default="1g", description="memory tier of an auto tool when the agent's config names none"
    )
    fallback_policy: FallbackPolicy = Field(
        default=FallbackPolicy.AUTO,
        description="forced explicit mode with no live container: auto (fall back) or error",
    )
    expiry_safety_margin_seconds: float = Field(
        default=60.0,
        ge=0,
        description="a container expiring within this counts as expired for resolution",
    )
    resolution_cache_max_age_seconds: float = Field(
        default=300.0,
        ge=0,
        description="longest a resolution cache entry is served without a reload",
    )
    max_containers_per_tenant: int = Field(
        default=20, ge=1, description="CREATING + RUNNING containers a tenant may hold"
    )
    default_expiry_minutes: int = Field(
        default=20, ge=1, description="expires_after minutes when a create names none"
    )
    max_expiry_minutes: int = Field(
        default=1440, ge=1, description="largest expires_after minutes a create may ask for"
    )
    refresh_staleness_seconds: float = Field(
        default=30.0,
        ge=0,
        description="GetContainer reads upstream when the local copy is older than this",
    )
    shutdown_drain_seconds: float = Field(
        default=5.0,
        ge=0,
        description="at SIGTERM: NOT_SERVING but still serving for this long, so balancers move",
    )
    shutdown_grace_seconds: float | None = Field(
        default=None,
        ge=0,
        description="after the drain, time in-flight calls get to finish; at least the longest "
        "operation's budget (the default)",
    )
    reconciler_period_seconds: float = Field(
        default=10.0, gt=0, description="how often the background reconciler runs"
    )
    reconciler_orphans: OrphanPolicy = Field(
        default=OrphanPolicy.DELETE,
        description="containers of ours upstream with no live row: delete or report",
    )
    create_outcome_window_seconds: float = Field(
        default=300.0,
        ge=0,
        description="after a create's own deadline, how long upstream may still create its "
        "container; until then a lookup that finds nothing is not an answer",
    )
    liveness_max_age_seconds: float = Field(
        default=30.0,
        gt=0,
        description="resolution revalidates a container upstream when what it knows is older",
    )
    max_message_bytes: int = Field(
        default=16 * 1024 * 1024, ge=1024, description="largest gRPC message, each direction"
    )
    # No request needs more than about 0.5 MiB (a full agent spec; file uploads will stream in
    # chunks); anything larger is refused by gRPC before a byte of it is parsed in Python.
    max_request_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="largest request message the server reads (held to max_message_bytes too)",
    )
    max_upload_bytes: int = Field(
        default=512 * 1024 * 1024,
        ge=1,
        description="largest file UploadContainerFile takes; it streams, so memory does not grow",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="DEBUG, INFO, WARNING or ERROR"
    )
    access_log: bool = Field(
        default=True, description="one INFO line per service call (logger agent_containers.access)"
    )

    @field_validator("openai_api_key", "openai_base_url", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # `OPENAI_API_KEY=` in an env file means "no key", not an empty key that OpenAI refuses.
        return None if value == "" else value

    @field_validator("metrics_listen_address")
    @classmethod
    def _host_and_port(cls, value: str) -> str:
        value = value.strip()
        if value:
            split_host_port(value)
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_case_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("allowed_network_domains", mode="before")
    @classmethod
    def _split_domains(cls, value: object) -> object:
        if isinstance(value, str):
            return [domain.strip().lower() for domain in value.split(",") if domain.strip()]
        return value

    @field_validator("allowed_memory_tiers", mode="before")
    @classmethod
    def _split_tiers(cls, value: object) -> object:
        if isinstance(value, str):
            return [tier.strip() for tier in value.split(",") if tier.strip()]
        return value

    @field_validator("allowed_memory_tiers")
    @classmethod
    def _known_tiers(cls, tiers: list[str]) -> list[str]:
        unknown = [tier for tier in tiers if tier not in MEMORY_TIERS]
        if unknown or not tiers:
            raise ValueError(f"tiers must be a non-empty subset of {MEMORY_TIERS}, got {tiers}")
        return tiers

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        if self.default_memory_tier not in self.allowed_memory_tiers:
            raise ValueError(
                f"default_memory_tier {self.default_memory_tier!r} is not in "
                f"allowed_memory_tiers {self.allowed_memory_tiers}"
            )
        if self.auto_memory_tier not in self.allowed_memory_tiers:
            raise ValueError(
                f"auto_memory_tier {self.auto_memory_tier!r} is not in "
                f"allowed_memory_tiers {self.allowed_memory_tiers}"
            )
        if self.default_expiry_minutes > self.max_expiry_minutes:
            raise ValueError("default_expiry_minutes exceeds max_expiry_minutes")
        if self.upstream is UpstreamKind.OPENAI and self.openai_api_key is None:
            raise ValueError("upstream=openai needs OPENAI_API_KEY")
        if (
            self.shutdown_grace_seconds is not None
            and self.shutdown_grace_seconds < self.budgets.request
        ):
            raise ValueError(
                f"shutdown_grace_seconds {self.shutdown_grace_seconds} is shorter than the "
                f"longest operation ({self.budgets.request} s, from openai_timeout_seconds): "
                "calls in flight at shutdown would be cut off"
            )
        return self

    @property
    def budgets(self) -> TimeBudgets:
        """Every operation's time budget, derived from the upstream timeout."""
        return TimeBudgets(upstream_call=self.openai_timeout_seconds)

    @property
    def grace_seconds(self) -> float:
        """The shutdown grace in force: the setting, or the longest operation's budget."""
        if self.shutdown_grace_seconds is None:
            return self.budgets.request
        return self.shutdown_grace_seconds

    @property
    def metrics_endpoint(self) -> tuple[str, int] | None:
        """The metrics endpoint's (host, port); None when it is off."""
        return split_host_port(self.metrics_listen_address) if self.metrics_listen_address else None

    @property
    def uses_emulator(self) -> bool:
        """True when the in-process emulator stands in for OpenAI."""
        if self.upstream is UpstreamKind.AUTO:
            return self.openai_api_key is None
        return self.upstream is UpstreamKind.EMULATOR
