"""The Redis state store against a real Redis (REDIS_URL, default 127.0.0.1:6379)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import pytest

from correlate.store.keys import ShardKeys
from correlate.store.redis import RedisStore
from stormwatch.app import App
from stormwatch.config import load_config
from stormwatch.errors import StoreUnavailable
from tests.conftest import pick_free_port
from tests.integration.test_app import RULES, Client, alerts, app_config
from tests.property.test_engine_properties import _all_types, _same_state
from tests.support import alert, engine

pytestmark = pytest.mark.redis


async def test_deltas_saved_batch_by_batch_load_back_as_the_same_state(
    redis_url: str, redis_prefix: str
) -> None:
    store = RedisStore(redis_url, prefix=redis_prefix)
    eng = engine(*_all_types())  # type: ignore[arg-type]
    stream = [
        alert(n, t=float(i * 7), service=f"s{i % 3}", instance=str(i % 5))
        for i, n in enumerate("ABCDABCDEFABCD" * 3)
    ]
    for i in range(0, len(stream), 5):
        batch = stream[i : i + 5]
        now = max(a.received_at for a in batch)
        eng.process(batch, now)
        eng.tick(now + 20)
        await store.commit("0", eng.take_delta())
    loaded = await store.load("0")
    assert loaded is not None and _same_state(loaded, eng.state)
    assert await store.load("other-shard") is None
    await store.close()


async def test_a_delta_larger_than_one_script_command_loads_back_whole(
    redis_url: str, redis_prefix: str
) -> None:
    """A batch of thousands of alerts: more fields than Lua's unpack takes at once, so
    the script gets them as several HSETs; every one must land."""
    store = RedisStore(redis_url, prefix=redis_prefix)
    eng = engine(*_all_types())  # type: ignore[arg-type]
    eng.process([alert("seed", t=0.0)], 0.0)
    await store.commit("0", eng.take_delta())  # the first save is whole
    fresh = [alert(f"n{i}", t=1.0, service=f"s{i % 40}", instance=str(i)) for i in range(4500)]
    eng.process(fresh, 1.0)
    first = eng.take_delta()
    assert not first.full and len(first.tracked) == 4500
    await store.commit("0", first)
    again = [alert(f"n{i}", t=2.0, service=f"s{i % 40}", instance=str(i)) for i in range(4500)]
    eng.process(again, 2.0)
    beats = eng.take_delta()
    assert not beats.full and len(beats.beats) == 4500
    await store.commit("0", beats)
    loaded = await store.load("0")
    assert loaded is not None and _same_state(loaded, eng.state)
    await store.close()


async def test_an_unreachable_redis_is_store_unavailable() -> None:
    store = RedisStore(f"redis://127.0.0.1:{pick_free_port()}/0")
    with pytest.raises(StoreUnavailable, match="cannot save shard 0"):
        await store.commit("0", engine().take_delta())
    await store.close()


async def test_a_restart_with_redis_resumes_windows_and_incidents(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES.replace("THRESHOLD", "3"))

    def make() -> App:
        cfg = tmp_path / "stormwatch.yaml"
        cfg.write_text(
            f"listen: 127.0.0.1:{pick_free_port()}\nrules: [{rules}]\n"
            f"state: {{backend: redis, url: '{redis_url}', key_prefix: '{redis_prefix}'}}\n"
            f"sinks: [{{type: file, name: jsonl, path: {tmp_path / 'incidents.jsonl'}}}]\n"
        )
        return App(load_config(cfg, env={}))

    async with make() as first, aiohttp.ClientSession() as session:
        c = Client(first, session)
        await c.post("/api/v2/alerts", alerts("burst", "a", "b"))  # 2 of 3: only in Redis now
        await c.post("/api/v2/alerts", alerts("steady", "x", "y", "z"))
        await c.opened(1)
    async with make() as second, aiohttp.ClientSession() as session:
        c = Client(second, session)
        await c.post("/api/v2/alerts", alerts("steady", "x"))  # a re-send: no second incident
        await c.post("/api/v2/alerts", alerts("burst", "c"))  # completes the window from Redis
        await c.opened(2)
        await asyncio.sleep(0.1)
    opened = [json.loads(x) for x in (tmp_path / "incidents.jsonl").read_text().splitlines()]
    assert [e["incident"]["rule"] for e in opened if e["event"] == "opened"] == ["steady", "burst"]


async def test_redis_down_mid_run_is_503_until_a_retry_saves_what_failed(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    good = RedisStore(redis_url, prefix=redis_prefix)
    bad = RedisStore(f"redis://127.0.0.1:{pick_free_port()}/0", prefix=redis_prefix)
    app = App(app_config(tmp_path), store=good)
    async with app, aiohttp.ClientSession() as session:
        c = Client(app, session)
        assert (await c.post("/api/v2/alerts", alerts("burst", "a")))[0] == 200
        app.store = bad
        status, body = await c.post("/api/v2/alerts", alerts("burst", "b"))
        assert status == 503 and body["error"] == "store_unavailable"
        assert (await c.get("/readyz"))[0] == 503
        app.store = good
        # The correlator retries the failed commit once per tick; intake resumes then.
        for _ in range(100):
            status, _ = await c.post("/api/v2/alerts", alerts("burst", "c"))
            if status == 200:
                break
            assert status == 503
            await asyncio.sleep(0.05)
        assert status == 200 and (await c.get("/readyz"))[0] == 200
        # Under the correlator's lock: no tick is between its engine step and its commit.
        async with app.pipeline.settled():
            loaded = await good.load("0")
            assert loaded is not None and _same_state(loaded, app.engine.state)
    await bad.close()


async def test_a_commit_whose_answer_was_lost_is_not_mistaken_for_a_reset(
    redis_url: str, redis_prefix: str
) -> None:
    """Redis applied the transaction and the reply was lost (it stopped, the network
    broke). The retry finds the lost commit's own mark: it must go on with the delta,
    not take the shard for one written by someone else and rewrite it whole."""
    import redis.asyncio as aioredis

    from tests.tcp_proxy import LosingProxy

    port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    proxy = LosingProxy(port)
    await proxy.start()
    direct = aioredis.from_url(redis_url)
    store = RedisStore(f"redis://127.0.0.1:{proxy.port}/0", prefix=redis_prefix)
    meta = ShardKeys(redis_prefix, "0").meta
    eng = engine(*_all_types())  # type: ignore[arg-type]
    try:
        eng.process([alert("A", t=0.0, service="s0")], 0.0)
        await store.commit("0", eng.take_delta())
        before = await direct.hget(meta, "writer")

        async def landed() -> bool:
            return await direct.hget(meta, "writer") != before

        proxy.landed = landed
        proxy.lose_after = b"EVALSHA"
        eng.process([alert("B", t=5.0, service="s1")], 5.0)
        delta = eng.take_delta()
        assert not delta.full
        await store.commit("0", delta)  # lost once, then taken on a fresh connection
        assert proxy.lost == 1
        loaded = await store.load("0")
        assert loaded is not None and _same_state(loaded, eng.state)
    finally:
        await store.close()
        await direct.aclose()
        await proxy.stop()
