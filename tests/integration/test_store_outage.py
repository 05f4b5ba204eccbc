"""The state store going away under a running daemon (in-process): 503 while it is
down, `/readyz` 503, one log line each way, and a retry that writes what failed merged
with what came after, not the whole state. Redis restarted empty gets the whole state
again. The outage tests run a redis-server of their own (tests/redis_server.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from structlog.testing import capture_logs

from correlate.delta import StateDelta
from correlate.store.redis import RedisStore
from stormwatch.app import App
from stormwatch.config import load_config
from stormwatch.errors import StoreReset, StoreUnavailable
from tests.conftest import pick_free_port
from tests.integration.test_app import RULES, Client, alerts
from tests.property.test_engine_properties import _same_state
from tests.redis_server import OwnRedis

pytestmark = pytest.mark.redis


class CountingStore(RedisStore):
    """A RedisStore that can be made to fail, and records every delta it writes."""

    down = False
    written: list[StateDelta]

    async def commit(
        self, shard: str, delta: StateDelta, outbox: dict[str, list[bytes]] | None = None
    ) -> None:
        if self.down:
            raise StoreUnavailable("down for the test")
        await super().commit(shard, delta, outbox)
        self.written.append(delta)


def make_app(tmp_path: Path, url: str, prefix: str, store: RedisStore | None = None) -> App:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES.replace("THRESHOLD", "3"))
    cfg = tmp_path / "stormwatch.yaml"
    cfg.write_text(
        f"listen: 127.0.0.1:{pick_free_port()}\nrules: [{rules}]\ntick_interval: 100ms\n"
        f"state: {{backend: redis, url: '{url}', key_prefix: '{prefix}'}}\n"
        f"sinks: [{{type: file, name: jsonl, path: {tmp_path / 'incidents.jsonl'}}}]\n"
    )
    return App(load_config(cfg, env={}), store=store)


async def post_until_taken(c: Client, body: bytes, seconds: float = 20) -> list[int]:
    """Post like a sender that honours 503: again until 200; the statuses seen."""
    seen: list[int] = []
    for _ in range(int(seconds / 0.05)):
        status, _ = await c.post("/api/v2/alerts", body)
        seen.append(status)
        if status == 200:
            return seen
        assert status == 503, seen
        await asyncio.sleep(0.05)
    raise AssertionError(f"never taken: {seen[-5:]}")


def events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == name]


async def test_a_failed_commit_is_retried_as_its_delta_merged_not_the_whole_state(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    store = CountingStore(redis_url, prefix=redis_prefix)
    store.written = []
    app = make_app(tmp_path, redis_url, redis_prefix, store)
    with capture_logs() as logs:
        async with app, aiohttp.ClientSession() as session:
            c = Client(app, session)
            for i in range(20):  # a state of 200 alerts
                names = [f"a{i}-{j}" for j in range(10)]
                assert (await c.post("/api/v2/alerts", alerts("steady", *names)))[0] == 200
            store.down = True
            status, body = await c.post("/api/v2/alerts", alerts("steady", "late"))
            assert (status, body["error"]) == (503, "store_unavailable")
            assert (await c.get("/readyz"))[0] == 503
            # While down, intake refuses at once: nothing more is correlated.
            assert (await c.post("/api/v2/alerts", alerts("steady", "later")))[0] == 503
            before = len(store.written)
            store.down = False
            await post_until_taken(c, alerts("steady", "later"))
            assert (await c.get("/readyz"))[0] == 200
            retried = store.written[before]
            # The failed batch's one alert (plus clock and rule state), not 200 alerts.
            late = [
                fp for fp, t in app.engine.state.tracked.items() if t.label("alertname") == "late"
            ]
            assert not retried.full and list(retried.tracked) == late
            # Under the correlator's lock: no tick is between its engine step and its commit.
            async with app.pipeline.settled():
                loaded = await store.load("0")
                assert loaded is not None and _same_state(loaded, app.engine.state)
    assert len(events(logs, "store_unavailable")) == 1
    recovered = events(logs, "store_recovered")
    assert len(recovered) == 1 and recovered[0]["duration_s"] > 0
    assert events(logs, "batch_failed") == []


async def test_a_delta_is_refused_on_a_shard_that_is_not_as_we_saved_it(
    redis_url: str, redis_prefix: str
) -> None:
    import redis.asyncio as aioredis

    from tests.support import alert, engine

    store = RedisStore(redis_url, prefix=redis_prefix)
    eng = engine()
    eng.process([alert("A", t=1.0)], 1.0)
    await store.commit("0", eng.take_delta())  # full: the first save
    eng.process([alert("B", t=2.0)], 2.0)
    await store.commit("0", eng.take_delta())
    # Redis comes back from an older snapshot: our last commit is not there.
    raw = aioredis.from_url(redis_url)
    await raw.hset(f"{redis_prefix}:0:meta", "writer", b"older")
    eng.process([alert("C", t=3.0)], 3.0)
    delta = eng.take_delta()
    inbox = f"{redis_prefix}:outbox:test"
    with pytest.raises(StoreReset):
        await store.commit("0", delta, {inbox: [b'{"event": "opened"}']})
    loaded = await store.load("0")
    assert loaded is not None and len(loaded.tracked) == 2  # nothing of it was written
    assert not await raw.exists(inbox)  # nor the outbox entries that came with it
    await raw.aclose()
    await store.close()


@pytest.mark.parametrize("restart", ["empty", "with_data"])
async def test_redis_restarted_under_a_running_daemon_loses_nothing(
    tmp_path: Path, restart: str
) -> None:
    server = OwnRedis(tmp_path / "redis")
    server.start()
    app = make_app(tmp_path, server.url, "outage")
    try:
        with capture_logs() as logs:
            async with app, aiohttp.ClientSession() as session:
                c = Client(app, session)
                assert (await c.post("/api/v2/alerts", alerts("burst", "a", "b")))[0] == 200
                server.stop()
                status, body = await c.post("/api/v2/alerts", alerts("burst", "c"))
                assert (status, body["error"]) == (503, "store_unavailable")
                assert (await c.get("/readyz"))[0] == 503
                if restart == "empty":
                    server.wipe()
                server.start()
                await post_until_taken(c, alerts("burst", "c"))
                await post_until_taken(c, alerts("steady", "x"))
                assert (await c.get("/readyz"))[0] == 200
                await c.opened(1)
                # Under the correlator's lock: no tick is between its engine step and its commit.
                async with app.pipeline.settled():
                    store = RedisStore(server.url, prefix="outage")
                    loaded = await store.load("0")
                    await store.close()
                    assert loaded is not None and _same_state(loaded, app.engine.state)
                assert len(loaded.tracked) == 4
    finally:
        server.stop()
    assert len(events(logs, "store_unavailable")) == 1
    assert len(events(logs, "store_recovered")) == 1
    assert len(events(logs, "store_reset")) == (1 if restart == "empty" else 0)
    assert [e["incident"]["rule"] for e in await c.opened(1)] == ["burst"]
