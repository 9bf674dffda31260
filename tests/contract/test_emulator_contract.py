"""The emulator answers every endpoint of the OpenAI Containers API spec subset in its shapes.

Responses are validated against the schemas of the spec subset (a copy of
shared/reference/openai-containers-openapi.json kept beside this file), closed so that an
undeclared field fails too, and every endpoint is also driven through the real openai SDK.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import openai
import pytest

from agent_containers.upstream.emulator import EmulatorServer
from tests.contract.conftest import RawHttp
from tests.support.clock import FakeClock

SPEC: dict[str, Any] = json.loads(
    Path(__file__).with_name("openai-containers-openapi.json").read_text(encoding="utf-8")
)


def _closed(node: Any) -> Any:
    """The schema with undeclared properties forbidden on every object that declares some."""
    if isinstance(node, dict):
        out = {key: _closed(value) for key, value in node.items()}
        if isinstance(out.get("properties"), dict):
            out.setdefault("additionalProperties", False)
        return out
    if isinstance(node, list):
        return [_closed(value) for value in node]
    return node


CLOSED_COMPONENTS = _closed(SPEC["components"])


def assert_schema(name: str, instance: Any, *, components: Any = CLOSED_COMPONENTS) -> None:
    root = {"$ref": f"#/components/schemas/{name}", "components": components}
    jsonschema.Draft202012Validator(root).validate(instance)


def assert_empty_list(body: Any) -> None:
    """An empty page: the spec types first_id/last_id as strings; the emulator (like the real
    API) answers null there, and nothing else departs from the schema."""
    components = copy.deepcopy(CLOSED_COMPONENTS)
    for schema in ("ContainerListResource", "ContainerFileListResource"):
        for key in ("first_id", "last_id"):
            components["schemas"][schema]["properties"][key] = {"type": ["string", "null"]}
    assert_schema("ContainerListResource", body, components=components)
    assert body == {
        "object": "list",
        "data": [],
        "first_id": None,
        "last_id": None,
        "has_more": False,
    }


CONTAINER_FIELDS = set(SPEC["components"]["schemas"]["ContainerResource"]["properties"])
FILE_FIELDS = set(SPEC["components"]["schemas"]["ContainerFileResource"]["properties"])


def test_schema_check_is_not_vacuous() -> None:
    good = {"id": "cntr_1", "object": "container", "name": "n", "created_at": 1, "status": "x"}
    assert_schema("ContainerResource", good)
    with pytest.raises(jsonschema.ValidationError):
        assert_schema("ContainerResource", {"id": "cntr_1"})
    with pytest.raises(jsonschema.ValidationError):
        assert_schema("ContainerResource", {**good, "surprise": 1})
    with pytest.raises(jsonschema.ValidationError):
        assert_schema("ErrorResponse", {"error": {"message": "m", "type": "t"}})


# --------------------------------------------------------------------------- containers, raw


async def test_create_container_defaults(http: RawHttp, fake_clock: FakeClock) -> None:
    reply = await http.request("POST", "/containers", json_body={"name": "My Container"})
    assert reply.status == 200
    body = reply.json
    assert_schema("ContainerResource", body)
    assert set(body) == CONTAINER_FIELDS
    now = int(fake_clock.now().timestamp())
    assert re.fullmatch(r"cntr_[0-9a-f]{48}", body["id"])
    assert body == {
        "id": body["id"],
        "object": "container",
        "name": "My Container",
        "created_at": now,
        "status": "running",
        "last_active_at": now,
        "expires_after": {"anchor": "last_active_at", "minutes": 20},
        "memory_limit": "1g",
        "network_policy": {"type": "disabled"},
    }
    assert reply.headers["content-type"].startswith("application/json")
    assert reply.headers["x-request-id"].startswith("req_")


async def test_create_container_with_every_option(http: RawHttp, emulator: EmulatorServer) -> None:
    body = await http.create_container(
        name="full",
        expires_after={"anchor": "last_active_at", "minutes": 5},
        memory_limit="4g",
        network_policy={
            "type": "allowlist",
            "allowed_domains": ["api.buildkite.com"],
            "domain_secrets": [{"domain": "api.buildkite.com", "name": "TOKEN", "value": "s3"}],
        },
        skills=[
            {"type": "skill_reference", "skill_id": "openai-spreadsheets", "version": "latest"},
            {
                "type": "inline",
                "name": "zipper",
                "description": "d",
                "source": {"type": "base64", "media_type": "application/zip", "data": "UEs="},
            },
        ],
        file_ids=["file-abc", "file-def"],
    )
    assert_schema("ContainerResource", body)
    assert body["expires_after"] == {"anchor": "last_active_at", "minutes": 5}
    assert body["memory_limit"] == "4g"
    # Domain secrets are write-only: stored, never echoed.
    assert body["network_policy"] == {"type": "allowlist", "allowed_domains": ["api.buildkite.com"]}
    stored = emulator.state.containers[body["id"]]
    assert stored.network_policy["domain_secrets"][0]["value"] == "s3"
    assert [s["type"] for s in stored.skills] == ["skill_reference", "inline"]

    # file_ids are copied in as empty files named after the OpenAI file id.
    files = (await http.request("GET", f"/containers/{body['id']}/files")).json
    assert_schema("ContainerFileListResource", files)
    assert sorted((f["path"], f["bytes"], f["source"]) for f in files["data"]) == [
        ("/mnt/data/file-abc", 0, "user"),
        ("/mnt/data/file-def", 0, "user"),
    ]


async def test_retrieve_list_delete_container_shapes(http: RawHttp) -> None:
    first = await http.create_container(name="a")
    second = await http.create_container(name="b")

    reply = await http.request("GET", f"/containers/{first['id']}")
    assert reply.status == 200
    assert_schema("ContainerResource", reply.json)
    assert reply.json["id"] == first["id"]

    listed = (await http.request("GET", "/containers")).json
    assert_schema("ContainerListResource", listed)
    assert [c["id"] for c in listed["data"]] == [second["id"], first["id"]]  # desc by default
    assert listed["first_id"] == second["id"]
    assert listed["last_id"] == first["id"]
    assert listed["has_more"] is False

    reply = await http.request("DELETE", f"/containers/{first['id']}")
    assert reply.status == 200
    assert reply.json == {"id": first["id"], "object": "container.deleted", "deleted": True}

    for method in ("GET", "DELETE"):
        reply = await http.request(method, f"/containers/{first['id']}")
        assert reply.status == 404
        assert_schema("ErrorResponse", reply.json)
        assert reply.json["error"]["type"] == "invalid_request_error"


async def test_empty_lists(http: RawHttp) -> None:
    assert_empty_list((await http.request("GET", "/containers")).json)
    container = await http.create_container()
    assert_empty_list((await http.request("GET", f"/containers/{container['id']}/files")).json)


# --------------------------------------------------------------------------- files, raw


async def test_file_endpoint_shapes(http: RawHttp, fake_clock: FakeClock) -> None:
    container = await http.create_container()
    cid = container["id"]

    uploaded = await http.upload(cid, "report.csv", b"a,b\n1,2\n")
    assert_schema("ContainerFileResource", uploaded)
    assert set(uploaded) == FILE_FIELDS
    assert re.fullmatch(r"cfile_[0-9a-f]{32}", uploaded["id"])
    assert uploaded == {
        "id": uploaded["id"],
        "object": "container.file",
        "created_at": int(fake_clock.now().timestamp()),
        "bytes": 8,
        "container_id": cid,
        "path": "/mnt/data/report.csv",
        "source": "user",
    }

    reply = await http.request(
        "POST", f"/containers/{cid}/files", json_body={"file_id": "file-XYZ"}
    )
    assert reply.status == 200
    copied = reply.json
    assert_schema("ContainerFileResource", copied)
    assert (copied["path"], copied["bytes"], copied["source"]) == ("/mnt/data/file-XYZ", 0, "user")

    reply = await http.request("GET", f"/containers/{cid}/files/{uploaded['id']}")
    assert reply.status == 200
    assert reply.json == uploaded

    listed = (await http.request("GET", f"/containers/{cid}/files")).json
    assert_schema("ContainerFileListResource", listed)
    assert [f["id"] for f in listed["data"]] == [copied["id"], uploaded["id"]]
    assert (listed["first_id"], listed["last_id"], listed["has_more"]) == (
        copied["id"],
        uploaded["id"],
        False,
    )

    reply = await http.request("GET", f"/containers/{cid}/files/{uploaded['id']}/content")
    assert reply.status == 200
    assert reply.raw == b"a,b\n1,2\n"

    reply = await http.request("DELETE", f"/containers/{cid}/files/{uploaded['id']}")
    assert reply.status == 200
    assert reply.json == {
        "id": uploaded["id"],
        "object": "container.file.deleted",
        "deleted": True,
    }
    for method, suffix in (("GET", ""), ("DELETE", ""), ("GET", "/content")):
        reply = await http.request(method, f"/containers/{cid}/files/{uploaded['id']}{suffix}")
        assert reply.status == 404
        assert_schema("ErrorResponse", reply.json)


async def test_upload_keeps_only_the_base_name(http: RawHttp) -> None:
    container = await http.create_container()
    uploaded = await http.upload(container["id"], "../../etc/passwd", b"x")
    assert uploaded["path"] == "/mnt/data/passwd"


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"json_body": {}}, "file"),
        ({"json_body": {"file_id": 7}}, "file_id"),
        ({"json_body": {"file_id": "f", "path": "/x"}}, "path"),
    ],
)
async def test_file_create_rejects_bad_bodies(
    http: RawHttp, kwargs: dict[str, Any], param: str
) -> None:
    container = await http.create_container()
    reply = await http.request("POST", f"/containers/{container['id']}/files", **kwargs)
    assert reply.status == 400
    assert_schema("ErrorResponse", reply.json)
    assert reply.json["error"]["param"] == param


# --------------------------------------------------------------------------- errors, raw

BAD_CREATE_BODIES = [
    ({}, "name", "missing_required_parameter"),
    ({"name": 1}, "name", "invalid_type"),
    ({"name": "x", "memory_limit": "2g"}, "memory_limit", "invalid_value"),
    (
        {"name": "x", "expires_after": {"anchor": "created_at", "minutes": 5}},
        "expires_after.anchor",
        "invalid_value",
    ),
    (
        {"name": "x", "expires_after": {"anchor": "last_active_at", "minutes": 0}},
        "expires_after.minutes",
        "integer_below_min_value",
    ),
    (
        {"name": "x", "expires_after": {"anchor": "last_active_at", "minutes": "5"}},
        "expires_after.minutes",
        "invalid_type",
    ),
    (
        {"name": "x", "expires_after": {"anchor": "last_active_at"}},
        "expires_after.minutes",
        "missing_required_parameter",
    ),
    ({"name": "x", "expires_after": 20}, "expires_after", "invalid_type"),
    ({"name": "x", "network_policy": {"type": "open"}}, "network_policy.type", "invalid_value"),
    (
        {"name": "x", "network_policy": {"type": "allowlist"}},
        "network_policy.allowed_domains",
        "missing_required_parameter",
    ),
    (
        {"name": "x", "network_policy": {"type": "allowlist", "allowed_domains": []}},
        "network_policy.allowed_domains",
        "empty_array",
    ),
    ({"name": "x", "file_ids": "file-1"}, "file_ids", "invalid_type"),
    (
        {"name": "x", "skills": [{"type": "skill_reference"}]},
        "skills[0].skill_id",
        "missing_required_parameter",
    ),
    ({"name": "x", "colour": "red"}, "colour", "unknown_parameter"),
]


@pytest.mark.parametrize(("body", "param", "code"), BAD_CREATE_BODIES)
async def test_create_container_rejects_bad_bodies(
    http: RawHttp, emulator: EmulatorServer, body: dict[str, Any], param: str, code: str
) -> None:
    reply = await http.request("POST", "/containers", json_body=body)
    assert reply.status == 400
    assert_schema("ErrorResponse", reply.json)
    error = reply.json["error"]
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, code)
    assert error["message"]
    assert emulator.state.containers == {}


async def test_create_container_rejects_malformed_json(http: RawHttp) -> None:
    reply = await http.request(
        "POST", "/containers", data=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert reply.status == 400
    assert_schema("ErrorResponse", reply.json)
    assert "could not parse the JSON body" in reply.json["error"]["message"]


async def test_unknown_url_is_404_in_openai_shape(http: RawHttp) -> None:
    for method, path in (("GET", "/nothing"), ("PUT", "/containers")):
        reply = await http.request(method, path)
        assert reply.status == 404
        assert_schema("ErrorResponse", reply.json)
        assert reply.json["error"]["message"] == f"Invalid URL ({method} /v1{path})"


async def test_rate_limit_error_matches_schema(http: RawHttp, emulator: EmulatorServer) -> None:
    emulator.state.fail_next(429, retry_after=2)
    reply = await http.request("GET", "/containers")
    assert reply.status == 429
    assert reply.headers["retry-after"] == "2"
    assert_schema("ErrorResponse", reply.json)
    assert reply.json["error"]["code"] == "rate_limit_exceeded"


# --------------------------------------------------------------------------- the openai SDK


async def test_sdk_containers(sdk: openai.AsyncOpenAI, fake_clock: FakeClock) -> None:
    created = await sdk.containers.create(
        name="sdk",
        memory_limit="16g",
        expires_after={"anchor": "last_active_at", "minutes": 7},
        network_policy={"type": "allowlist", "allowed_domains": ["pypi.org"]},
    )
    assert created.id.startswith("cntr_")
    assert created.object == "container"
    assert created.name == "sdk"
    assert created.status == "running"
    assert created.memory_limit == "16g"
    assert created.expires_after is not None
    assert (created.expires_after.anchor, created.expires_after.minutes) == ("last_active_at", 7)
    assert created.network_policy is not None
    assert created.network_policy.type == "allowlist"
    assert created.network_policy.allowed_domains == ["pypi.org"]
    assert created.created_at == created.last_active_at == int(fake_clock.now().timestamp())

    fake_clock.advance(minutes=1)
    retrieved = await sdk.containers.retrieve(created.id)
    assert retrieved.id == created.id
    assert retrieved.last_active_at == int(fake_clock.now().timestamp())

    others = [(await sdk.containers.create(name=f"n{i}")).id for i in range(4)]
    everything = [c.id async for c in sdk.containers.list(limit=2, order="asc")]
    assert everything == [created.id, *others]

    first_page = await sdk.containers.list(limit=2)
    assert [c.id for c in first_page.data] == others[::-1][:2]
    assert first_page.has_more is True
    rest = await sdk.containers.list(limit=100, after=first_page.data[-1].id)
    assert [c.id for c in rest.data] == [others[1], others[0], created.id]
    assert rest.has_more is False

    named = [c.id async for c in sdk.containers.list(name="n2")]
    assert named == [others[2]]

    await sdk.containers.delete(created.id)
    with pytest.raises(openai.NotFoundError):
        await sdk.containers.retrieve(created.id)


async def test_sdk_container_files(sdk: openai.AsyncOpenAI) -> None:
    container = await sdk.containers.create(name="files", file_ids=["file-1"])
    uploaded = await sdk.containers.files.create(container.id, file=("notes.txt", b"hello"))
    assert uploaded.id.startswith("cfile_")
    assert uploaded.object == "container.file"
    assert uploaded.container_id == container.id
    assert (uploaded.path, uploaded.bytes, uploaded.source) == ("/mnt/data/notes.txt", 5, "user")

    copied = await sdk.containers.files.create(container.id, file_id="file-2")
    assert (copied.path, copied.bytes) == ("/mnt/data/file-2", 0)

    retrieved = await sdk.containers.files.retrieve(uploaded.id, container_id=container.id)
    assert retrieved.path == "/mnt/data/notes.txt"
    assert retrieved.bytes == 5

    listed = [f.path async for f in sdk.containers.files.list(container.id, limit=1)]
    assert listed == ["/mnt/data/file-2", "/mnt/data/notes.txt", "/mnt/data/file-1"]

    content = await sdk.containers.files.content.retrieve(uploaded.id, container_id=container.id)
    assert content.content == b"hello"

    await sdk.containers.files.delete(uploaded.id, container_id=container.id)
    with pytest.raises(openai.NotFoundError):
        await sdk.containers.files.retrieve(uploaded.id, container_id=container.id)


async def test_sdk_sees_validation_errors(sdk: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk.containers.create(
            name="x", expires_after={"anchor": "last_active_at", "minutes": -1}
        )
    assert caught.value.status_code == 400
    assert caught.value.param == "expires_after.minutes"
    assert caught.value.type == "invalid_request_error"
