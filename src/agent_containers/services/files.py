"""Container files: upload, download, list, get and delete, streamed, tenant-scoped.

Bytes are never held whole: an upload goes upstream piece by piece as the caller sends it, a
download reaches the caller piece by piece as upstream sends it. The container is named by the
service's id or by its upstream id (as Responses citations carry it), resolved within the
caller's tenant only. Every file operation is activity upstream; the service records it, so the
container's expiry (and tool resolution's view of it) moves with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from agent_containers.detached import Detached
from agent_containers.domain import pagination
from agent_containers.domain.clock import Clock
from agent_containers.domain.containers import Container, ContainerStatus, not_running
from agent_containers.domain.errors import (
    DomainError,
    FieldViolation,
    InvalidArgument,
    NotFound,
    UpstreamContainerExpired,
    UpstreamNotFound,
)
from agent_containers.domain.files import (
    OPENAI_FILE_ID_PATTERN,
    ContainerFile,
    ContainerReference,
    file_id_violations,
    sanitize_filename,
)
from agent_containers.domain.identity import Identity
from agent_containers.services.container_refresh import ContainerRefresh
from agent_containers.store import containers as rows
from agent_containers.store.unit_of_work import Transaction, UnitOfWork
from agent_containers.upstream.gateway import ContainersGateway, UpstreamFile

FILE = "container_file"
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
DOWNLOAD_CHUNK_BYTES = 1024 * 1024
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FilePage:
    files: Sequence[ContainerFile]
    next_page_token: str


class FileTooLarge(InvalidArgument):
    """An upload past the size limit (the upload is abandoned, nothing stays upstream)."""


class ContainerFileService:
    """The file use cases of one server process."""

    def __init__(
        self,
        uow: UnitOfWork,
        gateway: ContainersGateway,
        refresh: ContainerRefresh,
        clock: Clock,
        detached: Detached,
        *,
        max_upload_bytes: int,
    ) -> None:
        self._uow = uow
        self._gateway = gateway
        self._refresh = refresh
        self._clock = clock
        self._detached = detached
        self.max_upload_bytes = max_upload_bytes

    # --- the container ----------------------------------------------------------------------

    async def _running(self, identity: Identity, reference: ContainerReference) -> Container:
        """The tenant's container, if it can hold files now (RUNNING)."""

        async def load(session: AsyncSession) -> Container | None:
            if reference.container_id is not None:
                return await rows.get(session, identity.tenant_id, reference.container_id)
            assert reference.openai_id is not None
            return await rows.get_by_openai_id(session, identity.tenant_id, reference.openai_id)

        container = await self._uow.read(load)
        if container is None:
            raise NotFound("container", str(reference), reason="CONTAINER_NOT_FOUND")
        if container.status is not ContainerStatus.RUNNING or container.openai_id is None:
            raise not_running(container.id, container.status, "files")
        return container

    async def _record_activity(self, container: Container) -> None:
        now = self._clock.now()
        if not container.activity_worth_recording(now):
            return

        async def write(transaction: Transaction) -> None:
            _, changed = await rows.record_activity(transaction.session, container.id, now)
            if changed:
                transaction.container_changed(container.tenant_id, container.id)

        await self._uow.write(write)

    @contextlib.asynccontextmanager
    async def _upstream_answers(
        self, container: Container, *, record_activity: bool = True
    ) -> AsyncIterator[None]:
        """Upstream's word on the container stops here: expired or gone is recorded so, and an
        answer is recorded as activity (unless the caller records it itself)."""
        try:
            yield
        except UpstreamContainerExpired as error:
            expired = await self._refresh.apply(container, None, self._clock.now())
            raise not_running(expired.id, expired.status, "files") from error
        if record_activity:
            await self._record_activity(container)

    # --- the use cases ------------------------------------------------------------------------

    async def upload(
        self,
        identity: Identity,
        reference: ContainerReference,
        filename: str,
        content: AsyncIterator[bytes],
    ) -> ContainerFile:
        name = sanitize_filename(filename)
        if not name:
            raise InvalidArgument([FieldViolation("filename", "a file name is required")])
        container = await self._running(identity, reference)
        assert container.openai_id is not None
        too_large = FileTooLarge(
            [FieldViolation("content", f"the file exceeds {self.max_upload_bytes} bytes")]
        )
        # What went wrong with the caller's stream (too large, a malformed message): raised
        # inside the request body, it cuts the upload off and nothing is created upstream, but
        # the SDK reports it as a broken connection, so it is kept to be reported as itself.
        refused: list[DomainError] = []

        async def bounded() -> AsyncIterator[bytes]:
            received = 0
            try:
                async for piece in content:
                    received += len(piece)
                    if received > self.max_upload_bytes:
                        raise too_large
                    yield piece
            except DomainError as error:
                refused.append(error)
                raise

        # The upload runs on if its caller goes away, and whatever upstream made of the
        # truncated body is removed: a cancelled call's stream ends as if it were complete, so
        # cutting the body off cannot be relied on to leave nothing behind.
        upload = self._detached.start(
            self._gateway.upload_file(container.openai_id, name, bounded())
        )
        async with self._upstream_answers(container):
            try:
                created = await asyncio.shield(upload)
            except asyncio.CancelledError:
                self._detached.start(self._remove_abandoned(container, upload))
                raise
            except DomainError as error:
                if refused:
                    raise refused[0] from error
                raise
        return _file(container.id, created)

    async def _remove_abandoned(
        self, container: Container, upload: asyncio.Future[UpstreamFile]
    ) -> None:
        assert container.openai_id is not None
        try:
            created = await upload
        except DomainError:
            return  # nothing was made upstream
        where = {**container.log_fields(), "file_id": created.file_id}
        try:
            await self._gateway.delete_file(container.openai_id, created.file_id)
        except UpstreamNotFound:
            pass  # gone already
        except DomainError as error:
            log.warning("abandoned upload not removed", extra={**where, "reason": error.reason})
            return
        log.info("abandoned upload removed", extra=where)

    async def copy(
        self, identity: Identity, reference: ContainerReference, openai_file_id: str
    ) -> ContainerFile:
        if not OPENAI_FILE_ID_PATTERN.fullmatch(openai_file_id):
            raise InvalidArgument(
                [FieldViolation("openai_file_id", "must be an OpenAI file id like file-abc123")]
            )
        container = await self._running(identity, reference)
        assert container.openai_id is not None
        async with self._upstream_answers(container):
            try:
                created = await self._gateway.copy_openai_file(container.openai_id, openai_file_id)
            except UpstreamNotFound as error:
                raise NotFound("file", openai_file_id, reason="FILE_NOT_FOUND") from error
        return _file(container.id, created)

    async def get(
        self, identity: Identity, reference: ContainerReference, file_id: str
    ) -> ContainerFile:
        _check_file_id(file_id)
        container = await self._running(identity, reference)
        assert container.openai_id is not None
        async with self._upstream_answers(container):
            found = await self._file_upstream(container.openai_id, file_id)
        return _file(container.id, found)

    async def delete(self, identity: Identity, reference: ContainerReference, file_id: str) -> str:
        _check_file_id(file_id)
        container = await self._running(identity, reference)
        assert container.openai_id is not None
        async with self._upstream_answers(container):
            try:
                await self._gateway.delete_file(container.openai_id, file_id)
            except UpstreamNotFound as error:
                raise _file_not_found(file_id) from error
        return file_id

    async def list(
        self,
        identity: Identity,
        reference: ContainerReference,
        *,
        page_size: int,
        page_token: str,
    ) -> FilePage:
        size = pagination.page_size(page_size, default=DEFAULT_PAGE_SIZE, maximum=MAX_PAGE_SIZE)
        container = await self._running(identity, reference)
        assert container.openai_id is not None
        fingerprint = pagination.query_fingerprint("files", identity.tenant_id, container.id)
        key = pagination.decode_page_token(page_token, fingerprint, 1)
        if key is not None and file_id_violations(key[0], "page_token"):
            raise pagination.invalid_page_token()  # forged: tokens carry only real file ids
        async with self._upstream_answers(container):
            page = await self._gateway.list_files(
                container.openai_id, after=key[0] if key else None, limit=size
            )
        files = [_file(container.id, found) for found in page.files]
        token = ""
        if page.has_more and files:
            token = pagination.encode_page_token(fingerprint, [files[-1].file_id])
        return FilePage(files, token)

    @contextlib.asynccontextmanager
    async def download(
        self, identity: Identity, reference: ContainerReference, file_id: str
    ) -> AsyncIterator[tuple[ContainerFile, AsyncIterator[bytes]]]:
        """The file and its bytes as they arrive; leaving the block closes the upstream stream."""
        _check_file_id(file_id)
        container = await self._running(identity, reference)
        assert container.openai_id is not None
        async with self._upstream_answers(container, record_activity=False):
            # The file's metadata and its bytes are asked for at once: one round trip less.
            metadata = asyncio.ensure_future(self._file_upstream(container.openai_id, file_id))
            try:
                async with self._gateway.file_content(
                    container.openai_id, file_id, chunk_bytes=DOWNLOAD_CHUNK_BYTES
                ) as content:
                    found = await metadata
                    # Upstream has answered: the activity is written while the bytes flow.
                    activity = self._detached.start(self._record_activity(container))
                    yield _file(container.id, found), content
                    await activity
            except UpstreamNotFound as error:
                raise _file_not_found(file_id) from error
            finally:
                if not metadata.done():
                    metadata.cancel()
                elif not metadata.cancelled():
                    metadata.exception()  # retrieved: the content's failure is the one raised

    async def _file_upstream(self, openai_container_id: str, file_id: str) -> UpstreamFile:
        try:
            return await self._gateway.retrieve_file(openai_container_id, file_id)
        except UpstreamNotFound as error:
            raise _file_not_found(file_id) from error


def _file(container_id: uuid.UUID, found: UpstreamFile) -> ContainerFile:
    return ContainerFile(
        file_id=found.file_id,
        container_id=container_id,
        path=found.path,
        size_bytes=found.size_bytes,
        source=found.source,
        created_at=found.created_at,
    )


def _check_file_id(file_id: str) -> None:
    violations = file_id_violations(file_id, "file_id")
    if violations:
        raise InvalidArgument(violations)


def _file_not_found(file_id: str) -> NotFound:
    return NotFound(FILE, file_id, reason="FILE_NOT_FOUND")
