"""Credentials through a real `stormwatch run`, and the CLI that calls its API."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.conftest import Daemon


def _request(
    daemon: Daemon, path: str, body: bytes | None = None, **headers: str
) -> tuple[int, Any]:
    req = urllib.request.Request(
        daemon.url + path,
        data=body,
        method="POST" if body is not None else "GET",
        headers={"Content-Type": "application/json", **headers},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def test_sources_and_the_api_take_their_credentials(daemon_factory: Any, tmp_path: Path) -> None:
    token = tmp_path / "ingest-token"
    token.write_text("ingest-t0ken\n")
    config = tmp_path / "stormwatch.yaml"
    config.write_text(
        f"""
ingest:
  auth:
    default: {{type: bearer, token_file: {token}}}
    sources:
      grafana: {{type: hmac, secret_env: GRAFANA_HMAC, signature_header: X-Grafana-Alert-Signature,
                timestamp_header: X-Grafana-Alerting-Timestamp}}
    api: {{type: bearer, token_env: STORMWATCH_API_TOKEN}}
"""
    )
    env = {"GRAFANA_HMAC": "grafana-key", "STORMWATCH_API_TOKEN": "api-t0ken"}
    daemon: Daemon = daemon_factory("--config", str(config), env=env)
    alert = json.dumps([{"labels": {"alertname": "Authed"}}]).encode()
    status, body = _request(daemon, "/api/v2/alerts", alert)
    assert status == 401 and body["error"] == "unauthorized"
    assert _request(daemon, "/api/v2/alerts", alert, Authorization="Bearer ingest-t0ken")[0] == 200

    grafana = json.dumps({"alerts": [{"status": "firing", "labels": {"alertname": "G"}}]}).encode()
    stamp = str(int(time.time()))
    signature = hmac.new(
        b"grafana-key", stamp.encode() + b":" + grafana, hashlib.sha256
    ).hexdigest()
    signed = {"X-Grafana-Alerting-Timestamp": stamp, "X-Grafana-Alert-Signature": signature}
    assert _request(daemon, "/webhook/grafana", grafana, **signed)[0] == 200
    assert _request(daemon, "/webhook/grafana", grafana, **signed)[0] == 401  # a replay

    assert _request(daemon, "/api/v1/incidents")[0] == 401
    assert _request(daemon, "/api/v1/incidents", Authorization="Bearer ingest-t0ken")[0] == 401
    assert _request(daemon, "/api/v1/incidents", Authorization="Bearer api-t0ken")[0] == 200
    assert _request(daemon, "/-/reload", b"")[0] == 401
    assert daemon.get("/metrics")[0] == 200  # scrapers need no token

    cli = [
        sys.executable,
        "-m",
        "stormwatch.cli",
        "deadletters",
        "list",
        "jsonl",
        "--url",
        daemon.url,
    ]
    base_env = {k: v for k, v in os.environ.items() if k != "STORMWATCH_API_TOKEN"}
    refused = subprocess.run(cli, capture_output=True, text=True, env=base_env, check=False)
    assert refused.returncode == 1 and "bearer" in refused.stderr.lower()
    ok = subprocess.run(cli, capture_output=True, text=True, env={**base_env, **env}, check=False)
    assert ok.returncode == 0, ok.stderr
    assert "0 dead letters" in ok.stdout

    log = daemon.log.read_text()
    for secret in ("ingest-t0ken", "grafana-key", "api-t0ken"):
        assert secret not in log
