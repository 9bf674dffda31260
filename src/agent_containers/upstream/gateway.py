"""The OpenAI Containers API, through the official async SDK, in the service's own terms.

SDK errors become the error taxonomy here, so nothing above this module knows about HTTP.

With tracing on (a tracer given), every operation is one CLIENT span, `openai <operation>`
(`openai containers.create`, ...), over all the SDK's attempts, carrying the HTTP method, the
upstream host and port and the ids it names (never a key, a secret value or file content); a
failure sets the span's status to ERROR with the error's reason (`error.type`) and the HTTP status
when upstream answered. Each request carries the span's W3C `traceparent` (and `tracestate`), and
nothing else of the caller's context: baggage stays here. The SDK's HTTP client (httpx2 over
aiohttp) is not seen by the httpx instrumentation, hence the spans here.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import contextvars
import math
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar, cast

import httpx2
import openai
from openai.types.containers import FileCreateResponse
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from agent_containers.domain.containers import UpstreamFacts
from agent_containers.domain.create_options import (
    DISABLED,
    NetworkPolicy,
    Skill,
    SkillReference,
)
from agent_containers.domain.errors import (
    DomainError,
    RateLimited,
    UpstreamContainerExpired,
    UpstreamNotFound,
    UpstreamRejected,
    UpstreamUnavailable,
)
from agent_containers.observability.call_context import propagated_trace
from agent_containers.observability.metrics import UpstreamMetrics

T = TypeVar("T")

CONTAINER_ID = "openai.container.id"
FILE_ID = "openai.file.id"

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

    @property
    def facts(self) -> UpstreamFacts:
        return UpstreamFacts(
            openai_id=self.openai_id,
            last_active_at=self.last_active_at,
            expiry_minutes=self.expires_after_minutes,
            expired=self.expired,
        )


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


@dataclass(frozen=True)
class UpstreamFile:
    """What the upstream says about one file in a container."""

    file_id: str
    openai_container_id: str
    path: str
    size_bytes: int
    source: str
    created_at: datetime


def _file(raw: Any) -> UpstreamFile:
    return UpstreamFile(
        file_id=raw.id,
        openai_container_id=raw.container_id,
        path=raw.path,
        size_bytes=int(raw.bytes or 0),
        source=raw.source,
        created_at=datetime.fromtimestamp(raw.created_at, tz=UTC),
    )


@dataclass(frozen=True)
class UpstreamFilePage:
    files: list[UpstreamFile]
    has_more: bool


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
            outcome_unknown=False,
        )
    if isinstance(error, openai.BadRequestError) and "expired" in error.message.lower():
        return UpstreamContainerExpired(f"upstream: {error.message}", http_status=400)
    if isinstance(error, openai.APIStatusError):
        return UpstreamRejected(f"upstream: {error.message}", http_status=error.status_code)
    if isinstance(error, openai.APITimeoutError):
        return UpstreamUnavailable("upstream timed out")
    if isinstance(error, openai.APIConnectionError):
        return UpstreamUnavailable("upstream unreachable")
    return UpstreamUnavailable(f"upstream error: {type(error).__name__}")


def _network_policy(policy: NetworkPolicy) -> Any:
    """Upstream's `network_policy`, secret values included: they go to upstream and only there."""
    body: dict[str, Any] = {"type": "allowlist", "allowed_domains": list(policy.allowed_domains)}
    if policy.secrets:
        body["domain_secrets"] = [
            {"domain": s.domain, "name": s.name, "value": s.value} for s in policy.secrets
        ]
    return body


def _skill(skill: Skill) -> Any:
    if isinstance(skill, SkillReference):
        reference: dict[str, Any] = {"type": "skill_reference", "skill_id": skill.skill_id}
        if skill.version:
            reference["version"] = skill.version
        return reference
    return {
        "type": "inline",
        "name": skill.name,
        "description": skill.description,
        "source": {
            "type": "base64",
            "media_type": "application/zip",
            "data": base64.b64encode(skill.bundle).decode("ascii"),
        },
    }


def outcome_of(error: BaseException) -> str:
    """The `outcome` label of an upstream operation that raised `error` (a small fixed set)."""
    if isinstance(error, openai.NotFoundError):
        return "not_found"
    if isinstance(error, openai.RateLimitError):
        return "rate_limited"
    if isinstance(error, openai.InternalServerError):
        return "server_error"
    if isinstance(error, openai.AuthenticationError | openai.PermissionDeniedError):
        return "unauthorized"
    if isinstance(error, openai.APIStatusError):
        return "rejected"
    if isinstance(error, openai.APITimeoutError | TimeoutError):
        return "timeout"
    if isinstance(error, openai.APIConnectionError):
        return "connection_error"
    if isinstance(error, asyncio.CancelledError):
        return "cancelled"
    return "error"


OPERATIONS = {
    "create": "containers.create",
    "find_by_name": "containers.list",
    "list": "containers.list",
    "retrieve": "containers.retrieve",
    "delete": "containers.delete",
    "upload_file": "containers.files.create",
    "copy_file": "containers.files.create",
    "retrieve_file": "containers.files.retrieve",
    "list_files": "containers.files.list",
    "delete_file": "containers.files.delete",
    "download_file": "containers.files.content",
}
"""One per gateway method: its `operation` metric label, and the upstream API operation it
calls (its span is `openai <that>`)."""

# The gateway operation an HTTP request belongs to, for the hooks that see each attempt.
_operation: contextvars.ContextVar[str] = contextvars.ContextVar(
    "upstream_operation", default="other"
)


async def _translated(
    pieces: AsyncIterator[bytes], span: Span | None, metrics: UpstreamMetrics
) -> AsyncIterator[bytes]:
    """A body stream whose transport failures are the taxonomy's, like every other call's."""
    try:
        async for piece in pieces:
            metrics.downloaded(len(piece))
            yield piece
    except openai.OpenAIError as error:
        raise _failed(span, translate_error(error), error) from error
    except httpx2.HTTPError as error:
        broken = UpstreamUnavailable("upstream broke off the file's content")
        raise _failed(span, broken, error) from error


# --- tracing ----------------------------------------------------------------------------------

_TRACE_CONTEXT = TraceContextTextMapPropagator()


async def _inject_trace_context(request: httpx2.Request) -> None:
    """An httpx2 request hook: the current span's traceparent (and tracestate) on the request,
    unless its trace is nobody's."""
    if propagated_trace():
        _TRACE_CONTEXT.inject(request.headers)


def _failed(
    span: Span | None, error: DomainError, cause: BaseException | None = None
) -> DomainError:
    """Marks the span (if any) failed with the error (translated from `cause`, or raised from
    it); returns the error, to be raised."""
    if span is not None and span.is_recording():
        cause = cause if cause is not None else error.__cause__
        span.set_attribute("error.type", error.reason)
        if isinstance(cause, openai.APIStatusError):
            span.set_attribute("http.response.status_code", cause.status_code)
        span.set_status(StatusCode.ERROR, error.reason)
    return error


def _current(span: Span | None) -> contextlib.AbstractContextManager[Any]:
    """The span as the current one for the block (requests sent in it carry its traceparent)."""
    if span is None:
        return contextlib.nullcontext()
    return trace.use_span(
        span, end_on_exit=False, record_exception=False, set_status_on_exception=False
    )


class ContainersGateway:
    """Create, list, retrieve and delete containers upstream.

    Each operation is cut off after `budget_seconds` in all, the SDK's retries included: the
    service's time budgets (domain/budgets.py) rest on that bound.
    """

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        *,
        budget_seconds: float,
        metrics: UpstreamMetrics,
        tracer: Tracer | None = None,
    ) -> None:
        self._client = client
        self._budget = budget_seconds
        self._metrics = metrics
        metrics.register(tuple(OPERATIONS))
        self._tracer = tracer
        url = client.base_url
        self._server: dict[str, str | int] = {
            "server.address": url.host,
            "server.port": url.port or (443 if url.scheme == "https" else 80),
        }

    @classmethod
    def connect(
        cls,
        *,
        api_key: str,
        base_url: str | None,
        timeout_seconds: float,
        max_retries: int,
        metrics: UpstreamMetrics,
        tracer: Tracer | None = None,
    ) -> ContainersGateway:
        """The gateway over the SDK's aiohttp transport; with a tracer, traced (see above)."""

        async def request_sent(request: httpx2.Request) -> None:
            # The SDK numbers its attempts in this header: anything but 0 is a retry.
            if request.headers.get("x-stainless-retry-count", "0") != "0":
                metrics.retried(_operation.get())

        async def response_received(response: httpx2.Response) -> None:
            if response.status_code == 429:
                metrics.rate_limited(_operation.get())

        on_request: list[Any] = [request_sent]
        if tracer is not None:
            on_request.append(_inject_trace_context)
        return cls(
            openai.AsyncOpenAI(
                api_key=api_key,
                base_url=base_url,
                timeout=timeout_seconds,
                max_retries=max_retries,
                http_client=openai.DefaultAioHttpClient(
                    timeout=timeout_seconds,
                    event_hooks={"request": on_request, "response": [response_received]},
                ),
            ),
            budget_seconds=timeout_seconds,
            metrics=metrics,
            tracer=tracer,
        )

    def _begin(self, operation: str) -> tuple[contextvars.Token[str], float]:
        """The operation starts: its HTTP requests are told which operation they belong to."""
        return _operation.set(operation), time.perf_counter()

    def _end(
        self, operation: str, begun: tuple[contextvars.Token[str], float], outcome: str
    ) -> None:
        """The operation has its answer: counted by outcome, and timed."""
        token, started = begun
        _operation.reset(token)
        self._metrics.finished(operation, outcome, time.perf_counter() - started)

    @contextlib.contextmanager
    def _observed(self, operation: str) -> Iterator[None]:
        begun = self._begin(operation)
        outcome = "ok"
        try:
            yield
        except BaseException as error:
            outcome = outcome_of(error)
            raise
        finally:
            self._end(operation, begun, outcome)

    def _start(self, operation: str, method: str, ids: Mapping[str, str]) -> Span | None:
        """The operation's CLIENT span, started (not current), or None with tracing off."""
        if self._tracer is None:
            return None
        return self._tracer.start_span(
            f"openai {OPERATIONS[operation]}",
            kind=SpanKind.CLIENT,
            attributes={"http.request.method": method, **self._server, **ids},
        )

    @contextlib.contextmanager
    def _span(self, operation: str, method: str, ids: Mapping[str, str]) -> Iterator[None]:
        """The operation's span, current for the block, failed by a DomainError leaving it."""
        span = self._start(operation, method, ids)
        try:
            with _current(span):
                yield
        except DomainError as error:
            _failed(span, error)
            raise
        finally:
            if span is not None:
                span.end()

    async def _call(self, operation: str, method: str, call: Awaitable[T], **ids: str) -> T:
        """One upstream operation within the budget, its errors the taxonomy's; traced as
        `openai <operation>` when tracing is on."""
        if self._tracer is None:
            return await self._budgeted(operation, call)
        with self._span(operation, method, ids):
            return await self._budgeted(operation, call)

    async def _budgeted(self, operation: str, call: Awaitable[T]) -> T:
        try:
            with self._observed(operation):
                async with asyncio.timeout(self._budget):
                    return await call
        except openai.OpenAIError as error:
            raise translate_error(error) from error
        except TimeoutError as error:
            raise UpstreamUnavailable("upstream timed out") from error

    async def create(
        self,
        *,
        name: str,
        memory_limit: str,
        expires_after_minutes: int,
        file_ids: list[str],
        network_policy: NetworkPolicy = DISABLED,
        skills: Sequence[Skill] = (),
    ) -> UpstreamContainer:
        # One attempt: the API takes no idempotency key, so a retried POST can leave a second
        # container upstream. The service looks the container up by name instead.
        created = await self._call(
            "create",
            "POST",
            self._client.with_options(max_retries=0).containers.create(
                name=name,
                memory_limit=cast(MemoryLimit, memory_limit),
                expires_after={"anchor": "last_active_at", "minutes": expires_after_minutes},
                file_ids=file_ids if file_ids else openai.omit,
                network_policy=(
                    openai.omit if network_policy == DISABLED else _network_policy(network_policy)
                ),
                skills=[_skill(skill) for skill in skills] if skills else openai.omit,
            ),
            **{"openai.container.name": name},
        )
        return _container(created)

    async def find_by_name(self, name: str) -> UpstreamContainer | None:
        """The newest container with exactly this name, or None. A list call: unlike a
        retrieve, it does not keep the container alive."""
        page = await self._call(
            "find_by_name",
            "GET",
            self._client.containers.list(name=name, limit=1, order="desc"),
            **{"openai.container.name": name},
        )
        return next((_container(raw) for raw in page.data if raw.name == name), None)

    async def list_all(self, *, page_size: int = 100) -> AsyncIterator[UpstreamContainer]:
        """Every container upstream, newest first, a page at a time (each page within the
        budget). Listing keeps nothing alive."""
        page = await self._call(
            "list", "GET", self._client.containers.list(limit=page_size, order="desc")
        )
        while True:
            for raw in page.data:
                yield _container(raw)
            if not page.has_next_page():
                return
            page = await self._call("list", "GET", page.get_next_page())

    async def retrieve(self, openai_id: str) -> UpstreamContainer:
        """The container; upstream counts a retrieve as activity (a keep-alive)."""
        return _container(
            await self._call(
                "retrieve",
                "GET",
                self._client.containers.retrieve(openai_id),
                **{CONTAINER_ID: openai_id},
            )
        )

    async def delete(self, openai_id: str) -> None:
        await self._call(
            "delete",
            "DELETE",
            self._client.containers.delete(openai_id),
            **{CONTAINER_ID: openai_id},
        )

    # --- files --------------------------------------------------------------------------------

    async def upload_file(
        self, openai_container_id: str, filename: str, content: AsyncIterator[bytes]
    ) -> UpstreamFile:
        """Streams `content` into a new file: each piece goes upstream as it arrives, in one
        multipart body the SDK sends as is (never whole in memory, never retried)."""
        boundary = f"agent-containers-{secrets.token_hex(16)}"
        quoted = filename.replace("\\", "\\\\").replace('"', '\\"')

        async def body() -> AsyncIterator[bytes]:
            yield (
                f"--{boundary}\r\n"
                f'Content-Disposition: form-data; name="file"; filename="{quoted}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            async for piece in content:
                self._metrics.uploaded(len(piece))
                yield piece
            yield f"\r\n--{boundary}--\r\n".encode()

        span = self._start("upload_file", "POST", {CONTAINER_ID: openai_container_id})
        try:
            with _current(span), self._observed("upload_file"):
                created = await self._client.with_options(max_retries=0).post(
                    f"/containers/{openai_container_id}/files",
                    content=body(),
                    cast_to=FileCreateResponse,
                    # Media types are case-insensitive (RFC 9110); spelt so, the SDK leaves the
                    # body alone instead of building its own multipart form (it would need it
                    # whole).
                    options={
                        "headers": {"Content-Type": f"Multipart/form-data; boundary={boundary}"}
                    },
                )
            if span is not None:
                span.set_attribute(FILE_ID, created.id)
        except openai.OpenAIError as error:
            raise _failed(span, translate_error(error), error) from error
        finally:
            if span is not None:
                span.end()
        return _file(created)

    async def copy_openai_file(self, openai_container_id: str, openai_file_id: str) -> UpstreamFile:
        """Copies an uploaded OpenAI file (`file-...`) into the container."""
        return _file(
            await self._call(
                "copy_file",
                "POST",
                self._client.with_options(max_retries=0).containers.files.create(
                    openai_container_id, file_id=openai_file_id
                ),
                **{CONTAINER_ID: openai_container_id, "openai.source_file.id": openai_file_id},
            )
        )

    async def retrieve_file(self, openai_container_id: str, file_id: str) -> UpstreamFile:
        return _file(
            await self._call(
                "retrieve_file",
                "GET",
                self._client.containers.files.retrieve(file_id, container_id=openai_container_id),
                **{CONTAINER_ID: openai_container_id, FILE_ID: file_id},
            )
        )

    async def list_files(
        self, openai_container_id: str, *, after: str | None, limit: int
    ) -> UpstreamFilePage:
        """One page of the container's files, oldest first, after the file id `after`."""
        page = await self._call(
            "list_files",
            "GET",
            self._client.containers.files.list(
                openai_container_id,
                after=after if after else openai.omit,
                limit=limit,
                order="asc",
            ),
            **{CONTAINER_ID: openai_container_id},
        )
        return UpstreamFilePage([_file(raw) for raw in page.data], bool(page.has_more))

    async def delete_file(self, openai_container_id: str, file_id: str) -> None:
        await self._call(
            "delete_file",
            "DELETE",
            self._client.containers.files.delete(file_id, container_id=openai_container_id),
            **{CONTAINER_ID: openai_container_id, FILE_ID: file_id},
        )

    @contextlib.asynccontextmanager
    async def file_content(
        self, openai_container_id: str, file_id: str, *, chunk_bytes: int
    ) -> AsyncIterator[AsyncIterator[bytes]]:
        """The file's bytes as they arrive from upstream. Leaving the block closes the upstream
        response at once, read to the end or not (a caller that went away).

        Traced, the span lasts until the block is left, but is current only while the request
        goes out: what the caller does in the block is not part of the upstream call."""
        span = self._start(
            "download_file", "GET", {CONTAINER_ID: openai_container_id, FILE_ID: file_id}
        )
        try:
            async with contextlib.AsyncExitStack() as stack:
                with _current(span), self._observed("download_file"):  # until the content starts
                    response = await stack.enter_async_context(
                        self._client.containers.files.content.with_streaming_response.retrieve(
                            file_id, container_id=openai_container_id
                        )
                    )
                yield _translated(response.iter_bytes(chunk_bytes), span, self._metrics)
        except openai.OpenAIError as error:
            raise _failed(span, translate_error(error), error) from error
        finally:
            if span is not None:
                span.end()

    async def aclose(self) -> None:
        await self._client.close()
