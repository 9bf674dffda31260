"""aiohttp application answering the OpenAI Containers API (the spec subset) under `/v1`.

Handlers translate HTTP into calls on `EmulatorState` and answer in the spec's shapes. Request
validation mirrors OpenAI's behaviour and error body
`{"error": {"message", "type", "param", "code"}}`: 400 `invalid_request_error` for a bad body or
query, 401 without `Authorization: Bearer <key>`, 404 for unknown containers, files and URLs.

One deliberate departure from the spec text: an empty list answers `first_id`/`last_id` as null,
as the real API does (the spec types them as strings, which an empty page cannot satisfy).
"""

from __future__ import annotations

import asyncio
import json
import logging
import mimetypes
import secrets
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from aiohttp import BodyPartReader, web

from agent_containers.upstream.emulator.state import (
    DEFAULT_EXPIRY_MINUTES,
    DEFAULT_MEMORY_LIMIT,
    FILE_ROOT,
    MEMORY_LIMITS,
    Container,
    ContainerFile,
    EmulatorState,
    FailureRule,
    SortKey,
)

logger = logging.getLogger(__name__)

API_PREFIX: Final = "/v1"
DEFAULT_MAX_UPLOAD_BYTES: Final = 512 * 1024 * 1024
"""OpenAI's per-file upload limit."""

DEFAULT_PAGE_LIMIT: Final = 20
MAX_PAGE_LIMIT: Final = 100

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class EmulatorConfig:
    """Per-application settings. `api_key` None accepts any non-empty bearer token."""

    api_key: str | None = None
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES


STATE_KEY: Final = web.AppKey("emulator_state", EmulatorState)
CONFIG_KEY: Final = web.AppKey("emulator_config", EmulatorConfig)
_OPERATIONS_KEY: Final[web.AppKey[dict[Handler, str]]] = web.AppKey("emulator_operations")


# --------------------------------------------------------------------------- errors


class ApiError(Exception):
    """An error answered in OpenAI's error body shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        error_type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type
        self.param = param
        self.code = code
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        }

    def to_response(self) -> web.Response:
        return web.json_response(self.body(), status=self.status, headers=self.headers)


# Default body of an injected failure, per status: (message, type, code).
_FAILURE_DEFAULTS: Final[dict[int, tuple[str, str, str | None]]] = {
    400: ("Bad request (injected failure).", "invalid_request_error", None),
    401: ("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"),
    403: ("You are not allowed to perform this request.", "invalid_request_error", None),
    404: ("Not found.", "invalid_request_error", None),
    409: ("The request conflicts with the current state.", "invalid_request_error", None),
    429: (
        "Rate limit reached for requests. Please try again later.",
        "requests",
        "rate_limit_exceeded",
    ),
    500: (
        "The server had an error while processing your request. Sorry about that!",
        "server_error",
        None,
    ),
    503: ("The server is overloaded or not ready yet.", "server_error", None),
}


def _failure_error(rule: FailureRule) -> ApiError:
    if rule.status in _FAILURE_DEFAULTS:
        message, error_type, code = _FAILURE_DEFAULTS[rule.status]
    elif rule.status >= 500:
        message, error_type, code = _FAILURE_DEFAULTS[500]
    else:
        message, error_type, code = _FAILURE_DEFAULTS[400]
    headers: dict[str, str] = {}
    if rule.retry_after is not None:
        value = rule.retry_after
        headers["retry-after"] = str(int(value)) if float(value).is_integer() else str(value)
    return ApiError(
        rule.status,
        rule.message or message,
        error_type=rule.error_type or error_type,
        code=rule.code if rule.code is not None else code,
        headers=headers,
    )


def _not_found(what: str, object_id: str) -> ApiError:
    return ApiError(404, f"No {what} found with id '{object_id}'.")


def _expired() -> ApiError:
    return ApiError(400, "Container is expired.")


# --------------------------------------------------------------------------- validation


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _invalid_type(param: str, expected: str, value: object) -> ApiError:
    return ApiError(
        400,
        f"Invalid type for '{param}': expected {expected}, but got {_json_type(value)} instead.",
        param=param,
        code="invalid_type",
    )


def _missing(param: str) -> ApiError:
    return ApiError(
        400,
        f"Missing required parameter: '{param}'.",
        param=param,
        code="missing_required_parameter",
    )


def _join(prefix: str | None, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _require(obj: Mapping[str, Any], key: str, prefix: str | None = None) -> Any:
    if obj.get(key) is None:
        raise _missing(_join(prefix, key))
    return obj[key]


def _reject_unknown(obj: Mapping[str, Any], allowed: Collection[str], prefix: str | None) -> None:
    for key in obj:
        if key not in allowed:
            param = _join(prefix, key)
            raise ApiError(
                400, f"Unknown parameter: '{param}'.", param=param, code="unknown_parameter"
            )


def _as_str(
    value: object, param: str, *, min_length: int = 0, max_length: int | None = None
) -> str:
    if not isinstance(value, str):
        raise _invalid_type(param, "a string", value)
    if len(value) < min_length:
        raise ApiError(
            400,
            f"Invalid '{param}': string too short. Expected a string with minimum length "
            f"{min_length}, but got a string with length {len(value)} instead.",
            param=param,
            code="string_below_min_length",
        )
    if max_length is not None and len(value) > max_length:
        raise ApiError(
            400,
            f"Invalid '{param}': string too long. Expected a string with maximum length "
            f"{max_length}, but got a string with length {len(value)} instead.",
            param=param,
            code="string_above_max_length",
        )
    return value


def _as_int(value: object, param: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid_type(param, "an integer", value)
    return value


def _as_object(value: object, param: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _invalid_type(param, "an object", value)
    return value


def _as_list(value: object, param: str, *, min_items: int = 0) -> list[Any]:
    if not isinstance(value, list):
        raise _invalid_type(param, "an array", value)
    if len(value) < min_items:
        raise ApiError(
            400,
            f"Invalid '{param}': empty array. Expected an array with minimum length "
            f"{min_items}, but got an empty array instead.",
            param=param,
            code="empty_array",
        )
    return value


def _as_enum(value: object, param: str, choices: Sequence[str]) -> str:
    text = _as_str(value, param)
    if text not in choices:
        quoted = [f"'{c}'" for c in choices]
        supported = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1])
        if len(quoted) > 1:
            supported += f"{',' if len(quoted) > 2 else ''} and {quoted[-1]}"
        raise ApiError(
            400,
            f"Invalid value: '{text}'. Supported values are: {supported}.",
            param=param,
            code="invalid_value",
        )
    return text


def _parse_expires_after(value: object) -> int:
    obj = _as_object(value, "expires_after")
    _reject_unknown(obj, ("anchor", "minutes"), "expires_after")
    _as_enum(_require(obj, "anchor", "expires_after"), "expires_after.anchor", ("last_active_at",))
    minutes = _as_int(_require(obj, "minutes", "expires_after"), "expires_after.minutes")
    if minutes < 1:
        raise ApiError(
            400,
            "Invalid 'expires_after.minutes': integer below minimum value. "
            f"Expected a value >= 1, but got {minutes} instead.",
            param="expires_after.minutes",
            code="integer_below_min_value",
        )
    return minutes


def _parse_network_policy(value: object) -> dict[str, Any]:
    obj = _as_object(value, "network_policy")
    kind = _as_enum(
        _require(obj, "type", "network_policy"), "network_policy.type", ("disabled", "allowlist")
    )
    if kind == "disabled":
        _reject_unknown(obj, ("type",), "network_policy")
        return {"type": "disabled"}
    _reject_unknown(obj, ("type", "allowed_domains", "domain_secrets"), "network_policy")
    param = "network_policy.allowed_domains"
    domains = _as_list(_require(obj, "allowed_domains", "network_policy"), param, min_items=1)
    policy: dict[str, Any] = {
        "type": "allowlist",
        "allowed_domains": [_as_str(d, f"{param}[{i}]") for i, d in enumerate(domains)],
    }
    if obj.get("domain_secrets") is not None:
        param = "network_policy.domain_secrets"
        secrets_in = _as_list(obj["domain_secrets"], param, min_items=1)
        parsed: list[dict[str, str]] = []
        for i, item in enumerate(secrets_in):
            p = f"{param}[{i}]"
            secret = _as_object(item, p)
            _reject_unknown(secret, ("domain", "name", "value"), p)
            parsed.append(
                {
                    "domain": _as_str(_require(secret, "domain", p), f"{p}.domain", min_length=1),
                    "name": _as_str(_require(secret, "name", p), f"{p}.name", min_length=1),
                    "value": _as_str(
                        _require(secret, "value", p),
                        f"{p}.value",
                        min_length=1,
                        max_length=10_485_760,
                    ),
                }
            )
        policy["domain_secrets"] = parsed
    return policy


def _parse_skill(value: object, param: str) -> dict[str, Any]:
    obj = _as_object(value, param)
    kind = _as_enum(_require(obj, "type", param), f"{param}.type", ("skill_reference", "inline"))
    if kind == "skill_reference":
        _reject_unknown(obj, ("type", "skill_id", "version"), param)
        skill: dict[str, Any] = {
            "type": kind,
            "skill_id": _as_str(
                _require(obj, "skill_id", param), f"{param}.skill_id", min_length=1, max_length=64
            ),
        }
        if obj.get("version") is not None:
            skill["version"] = _as_str(obj["version"], f"{param}.version")
        return skill
    _reject_unknown(obj, ("type", "name", "description", "source"), param)
    source_param = f"{param}.source"
    source = _as_object(_require(obj, "source", param), source_param)
    _reject_unknown(source, ("type", "media_type", "data"), source_param)
    _as_enum(_require(source, "type", source_param), f"{source_param}.type", ("base64",))
    _as_enum(
        _require(source, "media_type", source_param),
        f"{source_param}.media_type",
        ("application/zip",),
    )
    return {
        "type": kind,
        "name": _as_str(_require(obj, "name", param), f"{param}.name"),
        "description": _as_str(_require(obj, "description", param), f"{param}.description"),
        "source": {
            "type": "base64",
            "media_type": "application/zip",
            "data": _as_str(
                _require(source, "data", source_param),
                f"{source_param}.data",
                min_length=1,
                max_length=70_254_592,
            ),
        },
    }


async def _json_body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        return {}  # an empty body reads as no parameters (so "name" is reported missing)
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(
            400,
            "We could not parse the JSON body of your request. (HINT: This likely means you "
            "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, "
            "but what was sent was not valid JSON.)",
        ) from None
    if not isinstance(data, dict):
        raise ApiError(
            400, f"Invalid type for body: expected an object, but got {_json_type(data)}."
        )
    return data


# --------------------------------------------------------------------------- pagination


@dataclass(frozen=True)
class PageParams:
    after: str | None
    limit: int
    order: str


def _page_params(request: web.Request) -> PageParams:
    query = request.query
    limit = DEFAULT_PAGE_LIMIT
    raw_limit = query.get("limit")
    if raw_limit is not None:
        try:
            limit = int(raw_limit)
        except ValueError:
            raise _invalid_type("limit", "an integer", raw_limit) from None
        if limit < 1:
            raise ApiError(
                400,
                "Invalid 'limit': integer below minimum value. "
                f"Expected a value >= 1, but got {limit} instead.",
                param="limit",
                code="integer_below_min_value",
            )
        if limit > MAX_PAGE_LIMIT:
            raise ApiError(
                400,
                "Invalid 'limit': integer above maximum value. "
                f"Expected a value <= {MAX_PAGE_LIMIT}, but got {limit} instead.",
                param="limit",
                code="integer_above_max_value",
            )
    order = _as_enum(query.get("order", "desc"), "order", ("asc", "desc"))
    return PageParams(after=query.get("after") or None, limit=limit, order=order)


_Item = TypeVar("_Item", Container, ContainerFile)


def _paginate(
    items: Sequence[_Item],
    params: PageParams,
    key_of: Callable[[str], SortKey | None],
) -> dict[str, Any]:
    """One page of `items` in the requested order, after the `after` cursor, in list shape."""
    descending = params.order == "desc"
    ordered = sorted(items, key=lambda item: item.sort_key, reverse=descending)
    if params.after is not None:
        cursor = key_of(params.after)
        if cursor is None:
            raise ApiError(
                400,
                f"Invalid 'after': no object found with id '{params.after}'.",
                param="after",
                code="invalid_value",
            )
        ordered = [
            item
            for item in ordered
            if (item.sort_key < cursor if descending else item.sort_key > cursor)
        ]
    page = ordered[: params.limit]
    return {
        "object": "list",
        "data": [item.to_json() for item in page],
        "first_id": page[0].id if page else None,
        "last_id": page[-1].id if page else None,
        "has_more": len(ordered) > len(page),
    }


# --------------------------------------------------------------------------- handlers


def _state(request: web.Request) -> EmulatorState:
    return request.app[STATE_KEY]


def _container(request: web.Request) -> Container:
    container_id = request.match_info["container_id"]
    container = _state(request).get_container(container_id)
    if container is None:
        raise _not_found("container", container_id)
    return container


def _live_container(request: web.Request) -> Container:
    """The path's container for a file operation: refreshed if live, 400 if expired."""
    container = _container(request)
    if container.expired:
        raise _expired()
    _state(request).touch(container)
    return container


def _file(container: Container, request: web.Request) -> ContainerFile:
    file_id = request.match_info["file_id"]
    file = container.files.get(file_id)
    if file is None:
        raise _not_found("container file", file_id)
    return file


_CREATE_FIELDS: Final = (
    "name",
    "expires_after",
    "file_ids",
    "memory_limit",
    "network_policy",
    "skills",
)


async def create_container(request: web.Request) -> web.Response:
    body = await _json_body(request)
    _reject_unknown(body, _CREATE_FIELDS, None)
    name = _as_str(_require(body, "name"), "name")
    minutes = DEFAULT_EXPIRY_MINUTES
    if body.get("expires_after") is not None:
        minutes = _parse_expires_after(body["expires_after"])
    memory_limit = DEFAULT_MEMORY_LIMIT
    if body.get("memory_limit") is not None:
        memory_limit = _as_enum(body["memory_limit"], "memory_limit", MEMORY_LIMITS)
    network_policy: dict[str, Any] = {"type": "disabled"}
    if body.get("network_policy") is not None:
        network_policy = _parse_network_policy(body["network_policy"])
    skills: list[dict[str, Any]] = []
    if body.get("skills") is not None:
        raw_skills = _as_list(body["skills"], "skills")
        skills = [_parse_skill(s, f"skills[{i}]") for i, s in enumerate(raw_skills)]
    file_ids: list[str] = []
    if body.get("file_ids") is not None:
        raw_ids = _as_list(body["file_ids"], "file_ids")
        file_ids = [_as_str(f, f"file_ids[{i}]", min_length=1) for i, f in enumerate(raw_ids)]
    container = _state(request).create_container(
        name,
        expires_after_minutes=minutes,
        memory_limit=memory_limit,
        network_policy=network_policy,
        skills=skills,
        file_ids=file_ids,
    )
    return web.json_response(container.to_json())


async def list_containers(request: web.Request) -> web.Response:
    params = _page_params(request)
    state = _state(request)
    name = request.query.get("name")
    items = [c for c in state.containers.values() if name is None or c.name == name]
    return web.json_response(_paginate(items, params, state.container_key))


async def retrieve_container(request: web.Request) -> web.Response:
    container = _container(request)
    _state(request).touch(container)  # a retrieve is a keep-alive upstream (no-op once expired)
    return web.json_response(container.to_json())


async def delete_container(request: web.Request) -> web.Response:
    container = _container(request)
    _state(request).delete_container(container.id)
    return web.json_response({"id": container.id, "object": "container.deleted", "deleted": True})


def _upload_path(filename: str | None) -> str:
    """`/mnt/data/<basename>`: upstream keeps the uploaded name, never a client's directory."""
    base = (filename or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    if base in ("", ".", ".."):
        base = "upload"
    return f"{FILE_ROOT}/{base}"


@dataclass
class _Upload:
    filename: str | None = None
    content: bytes | None = None
    file_id: str | None = None


async def _read_multipart(request: web.Request, max_bytes: int) -> _Upload:
    upload = _Upload()
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise ApiError(400, "Nested multipart bodies are not supported.")
            if part.name == "file":
                if upload.content is not None:
                    raise ApiError(400, "Only one 'file' may be uploaded.", param="file")
                # Joined once at the end: growing one buffer copies a large file many times.
                pieces: list[bytes] = []
                received = 0
                while chunk := await part.read_chunk(256 * 1024):
                    pieces.append(chunk)
                    received += len(chunk)
                    if received > max_bytes:
                        raise ApiError(
                            413,
                            f"File is too large: the maximum size is {max_bytes} bytes.",
                            param="file",
                            code="file_too_large",
                        )
                upload.content = b"".join(pieces)
                upload.filename = part.filename
            elif part.name == "file_id":
                upload.file_id = _as_str(await part.text(), "file_id", min_length=1)
            else:
                _reject_unknown({part.name or "": None}, ("file", "file_id"), None)
    except ValueError:
        raise ApiError(400, "Could not parse the multipart form data of the request.") from None
    return upload


async def create_file(request: web.Request) -> web.Response:
    """Add a file: multipart `file` upload, or JSON/form `file_id`.

    A `file_id` names an uploaded OpenAI file, which the emulator does not have: it creates an
    empty container file at `/mnt/data/<file_id>` (see `EmulatorState.copy_openai_file`).
    """
    container = _live_container(request)
    if request.content_type.startswith("multipart/"):
        upload = await _read_multipart(request, request.app[CONFIG_KEY].max_upload_bytes)
    else:
        body = await _json_body(request)
        _reject_unknown(body, ("file_id",), None)
        upload = _Upload()
        if body.get("file_id") is not None:
            upload.file_id = _as_str(body["file_id"], "file_id", min_length=1)
    state = _state(request)
    if upload.content is not None and upload.file_id is not None:
        raise ApiError(400, "Provide either 'file' or 'file_id', not both.", param="file_id")
    if upload.content is not None:
        file = state.add_file(container.id, _upload_path(upload.filename), upload.content)
    elif upload.file_id is not None:
        file = state.copy_openai_file(container.id, upload.file_id)
    else:
        raise _missing("file")
    return web.json_response(file.to_json())


async def list_files(request: web.Request) -> web.Response:
    params = _page_params(request)
    container = _live_container(request)
    files = list(container.files.values())
    return web.json_response(_paginate(files, params, _state(request).file_key))


async def retrieve_file(request: web.Request) -> web.Response:
    return web.json_response(_file(_live_container(request), request).to_json())


async def delete_file(request: web.Request) -> web.Response:
    container = _live_container(request)
    file = _file(container, request)
    del container.files[file.id]
    return web.json_response({"id": file.id, "object": "container.file.deleted", "deleted": True})


CONTENT_PIECE_BYTES: Final = 64 * 1024


async def file_content(request: web.Request) -> web.StreamResponse:
    """The file's bytes, sent a piece at a time as upstream streams them; a client that goes
    away mid-file is counted in `state.downloads["aborted"]`, one that reads it all in
    `["completed"]`."""
    state = _state(request)
    file = _file(_live_container(request), request)
    content_type = mimetypes.guess_type(file.path)[0] or "application/octet-stream"
    response = web.StreamResponse(headers={"Content-Type": content_type})
    response.content_length = len(file.content)
    await response.prepare(request)
    try:
        for start in range(0, len(file.content), CONTENT_PIECE_BYTES):
            await response.write(file.content[start : start + CONTENT_PIECE_BYTES])
        await response.write_eof()
    except (ConnectionError, asyncio.CancelledError):
        state.downloads["aborted"] += 1
        raise
    state.downloads["completed"] += 1
    return response


# --------------------------------------------------------------------------- middleware, app

_ROUTES: Final[tuple[tuple[str, str, Handler, str], ...]] = (
    ("POST", "/containers", create_container, "containers.create"),
    ("GET", "/containers", list_containers, "containers.list"),
    ("GET", "/containers/{container_id}", retrieve_container, "containers.retrieve"),
    ("DELETE", "/containers/{container_id}", delete_container, "containers.delete"),
    ("POST", "/containers/{container_id}/files", create_file, "containers.files.create"),
    ("GET", "/containers/{container_id}/files", list_files, "containers.files.list"),
    (
        "GET",
        "/containers/{container_id}/files/{file_id}",
        retrieve_file,
        "containers.files.retrieve",
    ),
    (
        "DELETE",
        "/containers/{container_id}/files/{file_id}",
        delete_file,
        "containers.files.delete",
    ),
    (
        "GET",
        "/containers/{container_id}/files/{file_id}/content",
        file_content,
        "containers.files.content",
    ),
)


def _authenticate(request: web.Request, api_key: str | None) -> None:
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise ApiError(
            401,
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        )
    if api_key is not None and token != api_key:
        shown = f"{token[:3]}...{token[-4:]}" if len(token) > 8 else "***"
        raise ApiError(401, f"Incorrect API key provided: {shown}.", code="invalid_api_key")


async def _dispatch(request: web.Request, handler: Handler) -> web.StreamResponse:
    match_info = request.match_info
    if match_info.http_exception is not None:
        # Upstream answers any unknown path or method with 404 "Invalid URL".
        raise ApiError(404, f"Invalid URL ({request.method} {request.path})")
    state = request.app[STATE_KEY]
    operation: str | None = request.app[_OPERATIONS_KEY].get(match_info.handler)
    if operation is not None:
        state.calls[operation] += 1
    _authenticate(request, request.app[CONFIG_KEY].api_key)
    if operation is not None and (rule := state.take_failure(operation)) is not None:
        raise _failure_error(rule)
    delay = state.latency + (state.delays.get(operation, 0.0) if operation is not None else 0.0)
    if delay > 0:
        if request.content_type == "application/json":
            await request.read()  # received in full: the work happens even if the client leaves
        # Shielded: a client that hangs up does not stop upstream from doing the work late.
        await asyncio.shield(asyncio.sleep(delay))
    state.sweep()
    return await handler(request)


@web.middleware
async def _openai_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await _dispatch(request, handler)
    except ApiError as exc:
        response = exc.to_response()
    except web.HTTPException as exc:  # aiohttp's own (e.g. body too large): OpenAI's shape
        response = ApiError(exc.status, exc.reason).to_response()
    except Exception:
        logger.exception("emulator failed on %s %s", request.method, request.path)
        response = ApiError(
            500,
            "The server had an error while processing your request. Sorry about that!",
            error_type="server_error",
        ).to_response()
    response.headers["x-request-id"] = f"req_{secrets.token_hex(16)}"
    return response


def create_app(
    state: EmulatorState,
    *,
    api_key: str | None = None,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
) -> web.Application:
    """The emulator's aiohttp application, serving the Containers API under `/v1`."""
    app = web.Application(
        middlewares=[_openai_middleware],
        # JSON bodies are small; uploads are streamed and bounded by max_upload_bytes instead.
        client_max_size=max_upload_bytes + 1024 * 1024,
    )
    app[STATE_KEY] = state
    app[CONFIG_KEY] = EmulatorConfig(api_key=api_key, max_upload_bytes=max_upload_bytes)
    operations: dict[Handler, str] = {}
    for method, path, handler, operation in _ROUTES:
        app.router.add_route(method, API_PREFIX + path, handler)
        operations[handler] = operation
    app[_OPERATIONS_KEY] = operations
    return app
