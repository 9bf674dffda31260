"""Fixtures for the OpenAI Containers API emulator tests: a real server on a free loopback port,
a fake clock to drive expiry, the real openai SDK and a raw HTTP client pointed at it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import openai
import pytest
from multidict import CIMultiDictProxy

from agent_containers.upstream.emulator import EmulatorServer
from tests.support.clock import FakeClock

API_KEY = "test-key"


@dataclass
class Reply:
    status: int
    headers: CIMultiDictProxy[str]
    raw: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.raw)


class RawHttp:
    """Plain HTTP to the emulator, to see exact status codes, headers and bodies."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self.session = session
        self.base_url = base_url

    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        data: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        auth: bool = True,
    ) -> Reply:
        all_headers = {"Authorization": f"Bearer {API_KEY}"} if auth else {}
        all_headers.update(headers or {})
        async with self.session.request(
            method,
            self.base_url + path,
            json=json_body,
            data=data,
            params=params,
            headers=all_headers,
        ) as response:
            return Reply(response.status, response.headers, await response.read())

    async def create_container(self, **body: Any) -> dict[str, Any]:
        reply = await self.request("POST", "/containers", json_body={"name": "c", **body})
        assert reply.status == 200, reply.raw
        result: dict[str, Any] = reply.json
        return result

    async def upload(self, container_id: str, filename: str, content: bytes) -> dict[str, Any]:
        form = aiohttp.FormData(quote_fields=False)
        form.add_field("file", content, filename=filename)
        reply = await self.request("POST", f"/containers/{container_id}/files", data=form)
        assert reply.status == 200, reply.raw
        result: dict[str, Any] = reply.json
        return result


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def emulator(fake_clock: FakeClock) -> AsyncIterator[EmulatorServer]:
    async with EmulatorServer(clock=fake_clock) as server:
        yield server


@pytest.fixture
async def sdk(emulator: EmulatorServer) -> AsyncIterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(api_key=API_KEY, base_url=emulator.base_url, max_retries=0)
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def http(emulator: EmulatorServer) -> AsyncIterator[RawHttp]:
    async with aiohttp.ClientSession() as session:
        yield RawHttp(session, emulator.base_url)
