"""Container files: names, ids, and which container a caller means. Pure rules, no I/O."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime

from agent_containers.domain.errors import FieldViolation, InvalidArgument

FILE_ROOT = "/mnt/data"
"""Where upstream puts a container's files."""
MAX_FILENAME_BYTES = 255
CONTAINER_FILE_ID_PATTERN = re.compile(r"cfile_[A-Za-z0-9]{1,64}")
OPENAI_CONTAINER_ID_PATTERN = re.compile(r"cntr_[A-Za-z0-9]{1,64}")
OPENAI_FILE_ID_PATTERN = re.compile(r"file-[A-Za-z0-9_-]{1,128}")
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class ContainerFile:
    """A file in a container, as upstream describes it, under the service's container id."""

    file_id: str
    container_id: uuid.UUID
    path: str
    size_bytes: int
    source: str
    created_at: datetime

    @property
    def filename(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class ContainerReference:
    """How a caller named a container: the service's id, or the upstream id a Responses
    citation carries. Either is resolved within the caller's tenant only."""

    container_id: uuid.UUID | None = None
    openai_id: str | None = None

    def __str__(self) -> str:
        return str(self.container_id) if self.container_id is not None else str(self.openai_id)


def parse_container_reference(value: str, field: str) -> ContainerReference:
    if OPENAI_CONTAINER_ID_PATTERN.fullmatch(value):
        return ContainerReference(openai_id=value)
    try:
        return ContainerReference(container_id=uuid.UUID(value))
    except ValueError:
        message = "is required" if not value else "must be a container id (a UUID or cntr_...)"
        raise InvalidArgument([FieldViolation(field, message)]) from None


def file_id_violations(value: str, field: str) -> list[FieldViolation]:
    if CONTAINER_FILE_ID_PATTERN.fullmatch(value):
        return []
    message = "is required" if not value else "must be a container file id (cfile_...)"
    return [FieldViolation(field, message)]


def sanitize_filename(name: str) -> str:
    """The name a file lands under in `/mnt/data/`: the last path segment, control characters
    removed, at most 255 bytes of UTF-8. Empty when nothing usable is left."""
    base = _CONTROL_CHARACTERS.sub("", name.replace("\\", "/").rsplit("/", 1)[-1]).strip()
    if base in (".", ".."):
        return ""
    encoded = base.encode()[:MAX_FILENAME_BYTES]
    return encoded.decode(errors="ignore")
