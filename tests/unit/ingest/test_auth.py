"""Credentials per source and for the API, and rate limits, through a real server."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiohttp.test_utils import TestClient
from structlog.testing import capture_logs

from ingest.auth import AuthConfig, Authenticator
from ingest.limits import RateLimit, RateLimitConfig, TokenBuckets
from stormwatch.errors import ConfigError
from stormwatch.metrics import Metrics
from stormwatch.wire import decode_hook
from tests.unit.ingest.test_http_source import GOOD, JSON, Recorder, build, rejected

TOKEN = "s3cr3t-token-for-tests"
SECRET = "hmac-key-for-tests"


def auth_config(tmp_path: Path) -> AuthConfig:
    tokens = tmp_path / "tokens"
    tokens.write_text(f"old-token\n{TOKEN}\n")
    return msgspec.convert(
        {
            "default": {"type": "bearer", "token_file": str(tokens)},
            "sources": {
                "grafana": {
                    "type": "hmac",
                    "secret_env": "TEST_HMAC",
                    "signature_header": "X-Grafana-Alert-Signature",
                    "timestamp_header": "X-Grafana-Alerting-Timestamp",
                    "window": "5m",
                },
                "wazuh": {"type": "basic", "username": "wazuh", "password_env": "TEST_PW"},
            },
            "api": {"type": "bearer", "token_env": "TEST_API"},
        },
        AuthConfig,
        dec_hook=decode_hook,
    )


ENV = {"TEST_HMAC": SECRET, "TEST_PW": "pa:ss", "TEST_API": "api-token"}


@pytest.fixture
async def guarded(tmp_path: Path) -> AsyncIterator[tuple[TestClient[Any, Any], Recorder, Metrics]]:
    recorder, metrics = Recorder(), Metrics()
    server = build(recorder, metrics, auth=auth_config(tmp_path), environ=ENV)
    async with TestClient(server) as client:
        yield client, recorder, metrics


def sign(body: bytes, stamp: str, key: str = SECRET) -> str:
    return hmac.new(key.encode(), stamp.encode() + b":" + body, hashlib.sha256).hexdigest()


async def test_bearer_tokens_any_line_of_the_file(guarded: Any) -> None:
    client, recorder, _metrics = guarded
    for token in (TOKEN, "old-token"):
        resp = await client.post(
            "/api/v2/alerts", data=GOOD, headers={**JSON, "Authorization": f"Bearer {token}"}
        )
        assert resp.status == 200
    assert len(recorder.batches) == 2


@pytest.mark.parametrize(
    "header", [None, "Bearer wrong", "Basic " + base64.b64encode(b"a:b").decode(), "Bearer "]
)
async def test_missing_or_wrong_bearer_is_401_json_and_counted(
    guarded: Any, header: str | None
) -> None:
    client, recorder, metrics = guarded
    headers = {**JSON, **({"Authorization": header} if header else {})}
    with capture_logs() as logs:
        resp = await client.post("/api/v2/alerts", data=GOOD, headers=headers)
    assert resp.status == 401
    body = await resp.json()
    assert set(body) == {"error", "field", "message"} and body["error"] == "unauthorized"
    assert body["field"] == "Authorization"
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert recorder.batches == []
    assert rejected(metrics, "unauthorized") == 1
    assert TOKEN not in json.dumps(logs) and "old-token" not in json.dumps(logs)


async def test_basic_auth(guarded: Any) -> None:
    client, _recorder, metrics = guarded
    good = "Basic " + base64.b64encode(b"wazuh:pa:ss").decode()
    bad = "Basic " + base64.b64encode(b"wazuh:nope").decode()
    body = b'{"rule": {"id": "1", "level": 3}}'
    ok = await client.post("/webhook/wazuh", data=body, headers={**JSON, "Authorization": good})
    assert ok.status == 200
    no = await client.post("/webhook/wazuh", data=body, headers={**JSON, "Authorization": bad})
    assert no.status == 401 and no.headers["WWW-Authenticate"].startswith("Basic")
    assert rejected(metrics, "unauthorized", "wazuh") == 1


async def test_hmac_signature_window_and_replay(guarded: Any) -> None:
    client, recorder, metrics = guarded
    body = b'{"alerts": [{"status": "firing", "labels": {"alertname": "g"}}]}'
    stamp = str(int(time.time()))
    headers = {
        **JSON,
        "X-Grafana-Alerting-Timestamp": stamp,
        "X-Grafana-Alert-Signature": sign(body, stamp),
    }
    assert (await client.post("/webhook/grafana", data=body, headers=headers)).status == 200
    replay = await client.post("/webhook/grafana", data=body, headers=headers)
    assert replay.status == 401 and "replay" in (await replay.json())["message"]
    old = str(int(time.time()) - 3600)
    stale = {
        **headers,
        "X-Grafana-Alerting-Timestamp": old,
        "X-Grafana-Alert-Signature": sign(body, old),
    }
    resp = await client.post("/webhook/grafana", data=body, headers=stale)
    assert resp.status == 401 and (await resp.json())["field"] == "X-Grafana-Alerting-Timestamp"
    forged = {**headers, "X-Grafana-Alert-Signature": "sha256=" + sign(body + b" ", stamp)}
    resp = await client.post("/webhook/grafana", data=body, headers=forged)
    assert resp.status == 401 and (await resp.json())["field"] == "X-Grafana-Alert-Signature"
    assert len(recorder.batches) == 1
    assert rejected(metrics, "unauthorized", "grafana") == 3


async def test_the_signature_covers_the_raw_body_even_compressed(guarded: Any) -> None:
    import gzip

    client, recorder, _ = guarded
    raw = gzip.compress(b'{"alerts": [{"labels": {"alertname": "z"}}]}')
    stamp = str(int(time.time()))
    headers = {
        **JSON,
        "Content-Encoding": "gzip",
        "X-Grafana-Alerting-Timestamp": stamp,
        "X-Grafana-Alert-Signature": sign(raw, stamp),
    }
    assert (await client.post("/webhook/grafana", data=raw, headers=headers)).status == 200
    assert recorder.batches[0][0].labels == {"alertname": "z"}


async def test_the_api_takes_its_own_token(guarded: Any) -> None:
    client, _, metrics = guarded
    assert (await client.get("/api/v1/incidents")).status == 401
    ingest_token = {"Authorization": f"Bearer {TOKEN}"}
    assert (await client.get("/api/v1/incidents", headers=ingest_token)).status == 401
    ok = await client.get("/api/v1/incidents", headers={"Authorization": "Bearer api-token"})
    assert ok.status == 200
    assert rejected(metrics, "unauthorized", "api") == 2


def test_secrets_come_from_files_or_the_environment_and_missing_ones_are_config_errors(
    tmp_path: Path,
) -> None:
    config = auth_config(tmp_path)
    with pytest.raises(ConfigError) as info:
        Authenticator(config, {})
    assert info.value.field.endswith("_env")
    with pytest.raises(msgspec.ValidationError, match="exactly one of token_file and token_env"):
        msgspec.convert({"default": {"type": "bearer"}}, AuthConfig)
    with pytest.raises(msgspec.ValidationError, match="token"):
        msgspec.convert({"default": {"type": "bearer", "token": "inline"}}, AuthConfig)
    missing = msgspec.convert(
        {"default": {"type": "bearer", "token_file": str(tmp_path / "no")}}, AuthConfig
    )
    with pytest.raises(ConfigError) as info:
        Authenticator(missing, {})
    assert info.value.field == "$.ingest.auth.default.token_file"


async def test_rate_limit_per_client_is_429_with_retry_after() -> None:
    recorder, metrics = Recorder(), Metrics()
    limits = RateLimitConfig(per_client=RateLimit(rate=0.5, burst=2))
    async with TestClient(build(recorder, metrics, rate_limit=limits)) as client:
        statuses = []
        for _ in range(4):
            resp = await client.post("/api/v2/alerts", data=GOOD, headers=JSON)
            statuses.append(resp.status)
        assert statuses == [200, 200, 429, 429]
        assert int(resp.headers["Retry-After"]) >= 1
        assert (await resp.json())["error"] == "rate_limited"
        assert rejected(metrics, "rate_limited") == 2
        assert (await client.get("/api/v1/incidents")).status == 429  # the same client
        assert len(recorder.batches) == 2


async def test_rate_limit_per_token(tmp_path: Path) -> None:
    recorder, metrics = Recorder(), Metrics()
    limits = RateLimitConfig(per_token=RateLimit(rate=0.1, burst=1))
    server = build(recorder, metrics, auth=auth_config(tmp_path), environ=ENV, rate_limit=limits)
    async with TestClient(server) as client:
        for token, expected in ((TOKEN, 200), (TOKEN, 429), ("old-token", 200)):
            resp = await client.post(
                "/api/v2/alerts", data=GOOD, headers={**JSON, "Authorization": f"Bearer {token}"}
            )
            assert resp.status == expected


def test_token_buckets_refill_and_stay_bounded() -> None:
    buckets = TokenBuckets(RateLimit(rate=2, burst=2), max_tracked=3)
    assert [buckets.take("a", 0.0) for _ in range(3)] == [0.0, 0.0, 0.5]
    assert buckets.take("a", 0.5) == 0.0  # refilled one token in 0.5 s
    for key in "bcdefg":
        buckets.take(key, 1.0)
    assert len(buckets) == 3
