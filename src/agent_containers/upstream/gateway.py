"""The OpenAI Containers API, through the official async SDK, in the service's own terms.

SDK errors become the error taxonomy here, so nothing above this module knows about HTTP.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, cast

import openai

from agent_containers.domain.errors import (
    DomainError,
    RateLimited,
    UpstreamNotFound,
    UpstreamRejected,
    UpstreamUnavailable,
)

MemoryLimit = Literal["1g", "4g", "16g", "64g"]
DEFAULT_RETRY_AFTER_SECONDS = 1.0


@dataclass(frozen=True)
class UpstreamContainer:
    """What the upstream says about one container."""

    openai_id: str
    name: str
    status: str
    created_at: datetime
    last_active_at: datetime | None
    expires_after_minutes: int | None
    memory_limit: str | None

    @property
    def expired(self) -> bool:
        return self.status == "expired"


def _timestamp(seconds: int | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, tz=UTC)


def _container(raw: Any) -> UpstreamContainer:
    expires_after = raw.expires_after
    return UpstreamContainer(
        openai_id=raw.id,
        name=raw.name,
        status=raw.status,
        created_at=datetime.fromtimestamp(raw.created_at, tz=UTC),
        last_active_at=_timestamp(raw.last_active_at),
        expires_after_minutes=expires_after.minutes if expires_after is not None else None,
        memory_limit=raw.memory_limit,
    )


MAX_RETRY_AFTER_SECONDS = 3600.0


def _retry_after(error: openai.APIStatusError) -> float:
    """The upstream's retry-after in seconds, within [0, an hour]; the default when unusable."""
    value = error.response.headers.get("retry-after")
    try:
        seconds = float(value) if value is not None else DEFAULT_RETRY_AFTER_SECONDS
    except ValueError:
        return DEFAULT_RETRY_AFTER_SECONDS
    if not math.isfinite(seconds):
        return DEFAULT_RETRY_AFTER_SECONDS
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def translate_error(error: openai.OpenAIError) -> DomainError:
    """Maps an SDK error (after the SDK's own retries) onto the error taxonomy."""
    if isinstance(error, openai.NotFoundError):
        return UpstreamNotFound(f"upstream: {error.message}")
    if isinstance(error, openai.RateLimitError):
        return RateLimited("upstream rate limit reached", retry_after_seconds=_retry_after(error))
    if isinstance(error, openai.InternalServerError):
        return UpstreamUnavailable(
            f"upstream answered {error.status_code}", retry_after_seconds=_retry_after(error)
        )
    if isinstance(error, openai.AuthenticationError | openai.PermissionDeniedError):
        # Our credentials, not the caller's request: nothing the caller can change.
        return UpstreamUnavailable(
            f"upstream refused the service's credentials ({error.status_code})",
            reason="UPSTREAM_UNAUTHORIZED",
        )
    if isinstance(error, openai.APIStatusError):
        return UpstreamRejected(f"upstream: {error.message}", http_status=error.status_code)
    if isinstance(error, openai.APITimeoutError):
        return UpstreamUnavailable("upstream timed out")
    if isinstance(error, openai.APIConnectionError):
        return UpstreamUnavailable("upstream unreachable")
    return UpstreamUnavailable(f"upstream error: {type(error).__name__}")


class ContainersGateway:
    """Create, retrieve and delete containers upstream."""

    def __init__(self, client: openai.AsyncOpenAI) -> None:
        self._client = client

    @classmethod
    def connect(
        cls, *, api_key: str, base_url: str | None, timeout_seconds: float, max_retries: int
    ) -> ContainersGateway:
        return cls(
            openai.AsyncOpenAI(
                api_key=api_key,
                base_url=base_url,
                timeout=timeout_seconds,
                max_retries=max_retries,
            )
        )

    async def create(
        self, *, name: str, memory_limit: str, expires_after_minutes: int, file_ids: list[str]
    ) -> UpstreamContainer:
        try:
            # One attempt: the API takes no idempotency key, so a retried POST can leave a second
            # container upstream. The service looks the container up by name instead.
            created = await self._client.with_options(max_retries=0).containers.create(
                name=name,
                memory_limit=cast(MemoryLimit, memory_limit),
                expires_after={"anchor": "last_active_at", "minutes": expires_after_minutes},
                file_ids=file_ids if file_ids else openai.omit,
            )
        except openai.OpenAIError as error:
            raise translate_error(error) from error
        return _container(created)

    async def find_by_name(self, name: str) -> UpstreamContainer | None:
        """The newest container with exactly this name, or None."""
        try:
            page = await self._client.containers.list(name=name, limit=1, order="desc")
        except openai.OpenAIError as error:
            raise translate_error(error) from error
        return next((_container(raw) for raw in page.data if raw.name == name), None)

    async def retrieve(self, openai_id: str) -> UpstreamContainer:
        try:
            return _container(await self._client.containers.retrieve(openai_id))
        except openai.OpenAIError as error:
            raise translate_error(error) from error

    async def delete(self, openai_id: str) -> None:
        try:
            await self._client.containers.delete(openai_id)
        except openai.OpenAIError as error:
            raise translate_error(error) from error

    async def aclose(self) -> None:
        await self._client.close()
