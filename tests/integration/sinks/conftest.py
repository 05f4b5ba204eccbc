"""Vendor fakes served on loopback, one per test, and the sinks' remote records."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypeVar

import pytest

from sinks import MemoryRemoteStore, RemoteStore
from tests.fakes.faults import serve
from tests.fakes.jira import FakeJira
from tests.fakes.opsgenie import FakeOpsgenie
from tests.fakes.pagerduty import FakePagerDuty
from tests.fakes.servicenow import FakeServiceNow
from tests.fakes.slack import FakeSlack

F = TypeVar("F", FakePagerDuty, FakeOpsgenie, FakeJira, FakeServiceNow, FakeSlack)


@asynccontextmanager
async def _served(fake: F, path: str = "") -> AsyncIterator[F]:
    async with serve(fake.app()) as url:
        fake.url = url + path
        yield fake


@pytest.fixture
async def pd() -> AsyncIterator[FakePagerDuty]:
    async with _served(FakePagerDuty(), "/v2/enqueue") as fake:
        yield fake


@pytest.fixture
async def og() -> AsyncIterator[FakeOpsgenie]:
    async with _served(FakeOpsgenie()) as fake:
        yield fake


@pytest.fixture
async def jira() -> AsyncIterator[FakeJira]:
    async with _served(FakeJira()) as fake:
        yield fake


@pytest.fixture
async def snow() -> AsyncIterator[FakeServiceNow]:
    async with _served(FakeServiceNow()) as fake:
        yield fake


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with _served(FakeSlack(), "/api") as fake:
        yield fake


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[RemoteStore]:
    """The remote records, in memory and in a real Redis (a test's own prefix)."""
    if request.param == "memory":
        yield MemoryRemoteStore()
        return
    import redis.asyncio as aioredis

    from sinks import RedisRemoteStore

    url = request.getfixturevalue("redis_url")
    prefix = request.getfixturevalue("redis_prefix")
    client = aioredis.from_url(url)
    yield RedisRemoteStore(client, prefix=prefix)
    await client.aclose()
