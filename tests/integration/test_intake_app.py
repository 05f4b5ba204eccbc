"""The intake inside a real App: the open-routes warning, config checks of secrets."""

from __future__ import annotations

from pathlib import Path

import pytest
from structlog.testing import capture_logs

from stormwatch.app import App
from stormwatch.config import load_config, redacted
from stormwatch.errors import ConfigError
from tests.conftest import pick_free_port


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "stormwatch.yaml"
    path.write_text(text)
    return path


async def test_open_routes_beyond_loopback_are_named_in_a_warning(tmp_path: Path) -> None:
    port = pick_free_port()
    config = load_config(
        env={},
        listen=f"0.0.0.0:{port}",
        incidents_jsonl=str(tmp_path / "i.jsonl"),
    )
    with capture_logs() as logs:
        async with App(config):
            pass
    (warning,) = [e for e in logs if e["event"] == "routes_unauthenticated"]
    assert warning["log_level"] == "warning"
    assert "POST /api/v2/alerts" in warning["routes"]
    assert "POST /webhook/wazuh" in warning["routes"]
    assert "/api/v1/..." in warning["routes"]


async def test_no_warning_on_loopback_or_when_everything_is_protected(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("t0ken\n")
    path = _config(
        tmp_path,
        f"""
ingest:
  auth:
    default: {{type: bearer, token_file: {token}}}
    api: {{type: bearer, token_file: {token}}}
""",
    )
    for listen in (f"127.0.0.1:{pick_free_port()}", f"0.0.0.0:{pick_free_port()}"):
        config = load_config(path, env={}, listen=listen, incidents_jsonl=str(tmp_path / "i.jsonl"))
        with capture_logs() as logs:
            async with App(config):
                pass
        assert not [e for e in logs if e["event"] == "routes_unauthenticated"]


def test_config_check_reads_secrets_and_redacts_nothing_it_should_not(tmp_path: Path) -> None:
    path = _config(
        tmp_path,
        """
ingest:
  auth:
    sources:
      grafana: {type: hmac, secret_env: GRAFANA_HMAC}
    api: {type: basic, username: ops, password_env: API_PW}
""",
    )
    with pytest.raises(ConfigError) as info:
        load_config(path, env={"API_PW": "x"})
    assert str(path) in str(info.value) and "GRAFANA_HMAC" in str(info.value)
    config = load_config(path, env={"API_PW": "pw-value", "GRAFANA_HMAC": "hmac-value"})
    shown = str(redacted(config))
    assert "pw-value" not in shown and "hmac-value" not in shown
    assert "GRAFANA_HMAC" in shown and "API_PW" in shown  # where the secret is, not what
