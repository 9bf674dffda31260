"""Behaviour of the OpenAI Containers API emulator beyond response shapes: expiry on the injected
clock, keep-alive on container operations, cursor pagination, auth and the failure switches."""

from __future__ import annotations

import asyncio
import socket
import time
from datetime import timedelta
from typing import Any

import aiohttp
import openai
import pytest

from agent_containers.upstream.emulator import EmulatorServer, EmulatorState, run_emulator
from tests.contract.conftest import API_KEY, RawHttp
from tests.support.clock import FakeClock


def _ts(clock: FakeClock) -> int:
    return int(clock.now().timestamp())


# --------------------------------------------------------------------------- expiry


async def test_container_expires_after_its_minutes(http: RawHttp, fake_clock: FakeClock) -> None:
    container = await http.create_container(
        expires_after={"anchor": "last_active_at", "minutes": 5}
    )
    path = f"/containers/{container['id']}"
    created = _ts(fake_clock)

    fake_clock.advance(minutes=4, seconds=59)
    # Listing is not a container operation: it neither refreshes nor hides the container.
    listed = (await http.request("GET", "/containers")).json["data"]
    assert [(c["status"], c["last_active_at"]) for c in listed] == [("running", created)]

    fake_clock.advance(seconds=1)
    body = (await http.request("GET", path)).json
    assert body["status"] == "expired"
    assert body["last_active_at"] == created  # an expired container is never refreshed


async def test_default_expiry_is_twenty_minutes(http: RawHttp, fake_clock: FakeClock) -> None:
    container = await http.create_container()
    fake_clock.advance(minutes=19, seconds=59)
    assert (await http.request("GET", "/containers")).json["data"][0]["status"] == "running"
    fake_clock.advance(seconds=1)
    assert (await http.request("GET", "/containers")).json["data"][0]["status"] == "expired"
    assert container["expires_after"]["minutes"] == 20


async def test_retrieve_is_a_keep_alive(http: RawHttp, fake_clock: FakeClock) -> None:
    container = await http.create_container(
        expires_after={"anchor": "last_active_at", "minutes": 5}
    )
    path = f"/containers/{container['id']}"

    fake_clock.advance(minutes=4)
    body = (await http.request("GET", path)).json
    assert body["status"] == "running"
    assert body["last_active_at"] == _ts(fake_clock)

    fake_clock.advance(minutes=4)  # 8 minutes after creation, 4 after the retrieve
    assert (await http.request("GET", path)).json["status"] == "running"
    fake_clock.advance(minutes=5)  # 5 minutes after the last retrieve
    assert (await http.request("GET", path)).json["status"] == "expired"


FILE_OPERATIONS = ["create", "list", "retrieve", "content", "delete"]


async def _file_operation(http: RawHttp, op: str, cid: str, fid: str) -> Any:
    base = f"/containers/{cid}/files"
    if op == "create":
        return await http.request("POST", base, json_body={"file_id": "file-1"})
    if op == "list":
        return await http.request("GET", base)
    if op == "retrieve":
        return await http.request("GET", f"{base}/{fid}")
    if op == "content":
        return await http.request("GET", f"{base}/{fid}/content")
    return await http.request("DELETE", f"{base}/{fid}")


@pytest.mark.parametrize("op", FILE_OPERATIONS)
async def test_file_operations_refresh_last_active_at(
    http: RawHttp, emulator: EmulatorServer, fake_clock: FakeClock, op: str
) -> None:
    container = await http.create_container(
        expires_after={"anchor": "last_active_at", "minutes": 5}
    )
    file = await http.upload(container["id"], "a.txt", b"a")
    fake_clock.advance(minutes=4)
    reply = await _file_operation(http, op, container["id"], file["id"])
    assert reply.status == 200
    stored = emulator.state.containers[container["id"]]
    assert stored.last_active_at == fake_clock.now()
    fake_clock.advance(minutes=4)
    assert (await http.request("GET", f"/containers/{container['id']}")).json["status"] == "running"


@pytest.mark.parametrize("op", FILE_OPERATIONS)
async def test_file_operations_on_expired_container_fail(
    http: RawHttp, emulator: EmulatorServer, fake_clock: FakeClock, op: str
) -> None:
    container = await http.create_container(
        expires_after={"anchor": "last_active_at", "minutes": 1}
    )
    file = await http.upload(container["id"], "a.txt", b"a")
    fake_clock.advance(minutes=1)
    reply = await _file_operation(http, op, container["id"], file["id"])
    assert reply.status == 400
    assert reply.json == {
        "error": {
            "message": "Container is expired.",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    }
    # The files are gone for good; the metadata stays retrievable and listable.
    assert emulator.state.containers[container["id"]].files == {}
    assert (await http.request("GET", f"/containers/{container['id']}")).json["status"] == "expired"
    listed = (await http.request("GET", "/containers")).json["data"]
    assert [c["id"] for c in listed] == [container["id"]]


async def test_forced_expiry_and_retention(fake_clock: FakeClock) -> None:
    state = EmulatorState(fake_clock, expired_retention=timedelta(minutes=30))
    async with EmulatorServer(state=state) as server, aiohttp.ClientSession() as session:
        http = RawHttp(session, server.base_url)
        container = await http.create_container()
        state.expire(container["id"])
        assert (await http.request("GET", f"/containers/{container['id']}")).json["status"] == (
            "expired"
        )
        fake_clock.advance(minutes=30)
        assert (await http.request("GET", f"/containers/{container['id']}")).status == 404


# --------------------------------------------------------------------------- pagination


async def _walk(http: RawHttp, path: str, **params: str) -> tuple[list[str], int]:
    """Follow `after` cursors to the end; the ids seen and the number of pages."""
    ids: list[str] = []
    after: str | None = None
    for pages in range(1, 101):  # bounded: a cursor that repeats items must fail, not hang
        query = dict(params) if after is None else {**params, "after": after}
        body = (await http.request("GET", path, params=query)).json
        ids += [item["id"] for item in body["data"]]
        if not body["has_more"]:
            return ids, pages
        assert body["last_id"] == body["data"][-1]["id"]
        after = body["last_id"]
    pytest.fail("pagination never ended")


@pytest.mark.parametrize("order", ["asc", "desc"])
async def test_pagination_walk_returns_each_container_once(
    http: RawHttp, fake_clock: FakeClock, order: str
) -> None:
    created: list[str] = []
    for i in range(45):
        created.append((await http.create_container(name=f"c{i}"))["id"])
        if i % 10 == 0:  # mix distinct and equal created_at: ties keep insertion order
            fake_clock.advance(seconds=1)
    ids, pages = await _walk(http, "/containers", order=order, limit="10")
    assert pages == 5
    assert ids == (created if order == "asc" else created[::-1])


async def test_default_page_is_twenty_newest_first(http: RawHttp) -> None:
    created = [(await http.create_container())["id"] for _ in range(25)]
    body = (await http.request("GET", "/containers")).json
    assert [c["id"] for c in body["data"]] == created[::-1][:20]
    assert body["has_more"] is True


async def test_file_pagination(http: RawHttp) -> None:
    container = await http.create_container()
    path = f"/containers/{container['id']}/files"
    created = [(await http.upload(container["id"], f"f{i}", b"x"))["id"] for i in range(7)]
    assert (await _walk(http, path, order="asc", limit="3")) == (created, 3)
    assert (await _walk(http, path, limit="3")) == (created[::-1], 3)


async def test_cursor_survives_deleting_its_container(http: RawHttp) -> None:
    created = [(await http.create_container())["id"] for _ in range(4)]
    await http.request("DELETE", f"/containers/{created[1]}")
    body = await http.request("GET", "/containers", params={"order": "asc", "after": created[1]})
    assert [c["id"] for c in body.json["data"]] == created[2:]


async def test_name_filter(http: RawHttp) -> None:
    a1 = (await http.create_container(name="alpha"))["id"]
    await http.create_container(name="beta")
    a2 = (await http.create_container(name="alpha"))["id"]
    body = (await http.request("GET", "/containers", params={"name": "alpha"})).json
    assert [c["id"] for c in body["data"]] == [a2, a1]
    ids, _ = await _walk(http, "/containers", name="alpha", limit="1", order="asc")
    assert ids == [a1, a2]
    assert (await http.request("GET", "/containers", params={"name": "gamma"})).json["data"] == []


@pytest.mark.parametrize(
    ("params", "param", "code"),
    [
        ({"limit": "0"}, "limit", "integer_below_min_value"),
        ({"limit": "101"}, "limit", "integer_above_max_value"),
        ({"limit": "ten"}, "limit", "invalid_type"),
        ({"order": "sideways"}, "order", "invalid_value"),
        ({"after": "cntr_unknown"}, "after", "invalid_value"),
    ],
)
@pytest.mark.parametrize("files", [False, True])
async def test_bad_list_parameters(
    http: RawHttp, params: dict[str, str], param: str, code: str, files: bool
) -> None:
    container = await http.create_container()
    path = f"/containers/{container['id']}/files" if files else "/containers"
    reply = await http.request("GET", path, params=params)
    assert reply.status == 400
    error = reply.json["error"]
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, code)


async def test_limit_bounds_are_inclusive(http: RawHttp) -> None:
    await http.create_container()
    for limit in ("1", "100"):
        assert (await http.request("GET", "/containers", params={"limit": limit})).status == 200


# --------------------------------------------------------------------------- auth


@pytest.mark.parametrize("header", [None, "", "Bearer ", "Bearer    ", "Basic abc", "token"])
async def test_requests_need_a_bearer_key(
    http: RawHttp, emulator: EmulatorServer, header: str | None
) -> None:
    headers = {} if header is None else {"Authorization": header}
    reply = await http.request(
        "POST", "/containers", json_body={"name": "x"}, headers=headers, auth=False
    )
    assert reply.status == 401
    assert reply.json["error"]["type"] == "invalid_request_error"
    assert "API key" in reply.json["error"]["message"]
    assert emulator.state.containers == {}


async def test_sdk_without_key_gets_authentication_error(sdk: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:
        await sdk.containers.list(extra_headers={"Authorization": openai.Omit()})
    assert caught.value.status_code == 401


async def test_configured_api_key_must_match(fake_clock: FakeClock) -> None:
    async with EmulatorServer(clock=fake_clock, api_key="sk-right") as server:
        for key, status in (("sk-wrong-key", 401), ("sk-right", 200)):
            async with openai.AsyncOpenAI(
                api_key=key, base_url=server.base_url, max_retries=0
            ) as client:
                if status == 401:
                    with pytest.raises(openai.AuthenticationError) as caught:
                        await client.containers.list()
                    assert caught.value.code == "invalid_api_key"
                else:
                    await client.containers.list()


# --------------------------------------------------------------------------- failure switches


async def test_fail_next_429_with_retry_after(
    sdk: openai.AsyncOpenAI, emulator: EmulatorServer
) -> None:
    emulator.state.fail_next(status=429, count=3, retry_after=2)
    for _ in range(3):
        with pytest.raises(openai.RateLimitError) as caught:
            await sdk.containers.create(name="x")
        assert caught.value.response.headers["retry-after"] == "2"
        assert caught.value.code == "rate_limit_exceeded"
    assert emulator.state.containers == {}
    created = await sdk.containers.create(name="x")
    assert list(emulator.state.containers) == [created.id]
    assert emulator.state.calls["containers.create"] == 4


@pytest.mark.parametrize("status", [500, 503])
async def test_fail_next_server_errors(
    sdk: openai.AsyncOpenAI, emulator: EmulatorServer, status: int
) -> None:
    container = await sdk.containers.create(name="x")
    emulator.state.fail_next(status=status)
    with pytest.raises(openai.InternalServerError) as caught:
        await sdk.containers.files.list(container.id)
    assert caught.value.status_code == status
    assert caught.value.type == "server_error"
    await sdk.containers.files.list(container.id)  # one failure only


async def test_failures_hit_any_endpoint_and_can_be_cleared(
    sdk: openai.AsyncOpenAI, emulator: EmulatorServer
) -> None:
    container = await sdk.containers.create(name="x")
    emulator.state.fail_next(status=500, count=10)
    with pytest.raises(openai.InternalServerError):
        await sdk.containers.retrieve(container.id)
    with pytest.raises(openai.InternalServerError):
        await sdk.containers.delete(container.id)
    assert len(emulator.state.pending_failures) == 1
    emulator.state.clear_failures()
    assert emulator.state.pending_failures == []
    await sdk.containers.delete(container.id)


async def test_failures_can_target_one_operation(
    sdk: openai.AsyncOpenAI, emulator: EmulatorServer
) -> None:
    emulator.state.fail_next(status=503, operations="containers.create")
    assert [c async for c in sdk.containers.list()] == []
    with pytest.raises(openai.InternalServerError):
        await sdk.containers.create(name="x")
    await sdk.containers.create(name="x")


async def test_sdk_retries_through_rate_limits(emulator: EmulatorServer) -> None:
    emulator.state.fail_next(status=429, count=2, retry_after=0.01)
    async with openai.AsyncOpenAI(
        api_key=API_KEY, base_url=emulator.base_url, max_retries=2
    ) as client:
        await client.containers.create(name="x")
    assert emulator.state.calls["containers.create"] == 3
    assert len(emulator.state.containers) == 1


async def test_calls_count_each_operation(http: RawHttp, emulator: EmulatorServer) -> None:
    container = await http.create_container()
    cid = container["id"]
    file = await http.upload(cid, "a", b"a")
    await http.request("GET", "/containers")
    await http.request("GET", f"/containers/{cid}")
    await http.request("GET", f"/containers/{cid}/files")
    await http.request("GET", f"/containers/{cid}/files/{file['id']}")
    await http.request("GET", f"/containers/{cid}/files/{file['id']}/content")
    await http.request("DELETE", f"/containers/{cid}/files/{file['id']}")
    await http.request("DELETE", f"/containers/{cid}")
    await http.request("GET", f"/containers/{cid}")  # a 404 is still a request
    assert dict(emulator.state.calls) == {
        "containers.create": 1,
        "containers.files.create": 1,
        "containers.list": 1,
        "containers.retrieve": 2,
        "containers.files.list": 1,
        "containers.files.retrieve": 1,
        "containers.files.content": 1,
        "containers.files.delete": 1,
        "containers.delete": 1,
    }


async def test_latency_switch(http: RawHttp, emulator: EmulatorServer) -> None:
    emulator.state.latency = 0.2
    started = time.monotonic()
    await http.request("GET", "/containers")
    assert time.monotonic() - started >= 0.2


async def test_upload_size_limit(fake_clock: FakeClock) -> None:
    async with (
        EmulatorServer(clock=fake_clock, max_upload_bytes=10) as server,
        aiohttp.ClientSession() as session,
    ):
        http = RawHttp(session, server.base_url)
        container = await http.create_container()
        form = aiohttp.FormData()
        form.add_field("file", b"x" * 11, filename="big.bin")
        reply = await http.request("POST", f"/containers/{container['id']}/files", data=form)
        assert reply.status == 413
        assert reply.json["error"]["code"] == "file_too_large"
        assert server.state.containers[container["id"]].files == {}


# --------------------------------------------------------------------------- lifecycle


async def test_server_lifecycle(fake_clock: FakeClock) -> None:
    server = EmulatorServer(clock=fake_clock)
    with pytest.raises(RuntimeError):
        _ = server.base_url
    await server.start()
    try:
        assert server.base_url == f"http://127.0.0.1:{server.port}/v1"
        assert server.port > 0
    finally:
        await server.stop()
    assert not server.started


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_run_emulator_serves_until_cancelled() -> None:
    port = _free_port()
    task = asyncio.create_task(run_emulator("127.0.0.1", port))
    base_url = f"http://127.0.0.1:{port}/v1"
    async with openai.AsyncOpenAI(api_key=API_KEY, base_url=base_url, max_retries=0) as client:
        for _ in range(100):
            try:
                created = await client.containers.create(name="cli")
                break
            except openai.APIConnectionError:
                await asyncio.sleep(0.02)
        else:
            pytest.fail("run_emulator never started serving")
        assert created.status == "running"
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        with pytest.raises(openai.APIConnectionError):
            await client.containers.list()
