"""The intake inside a real App: the open-routes warning, config checks of secrets."""

from __future__ import annotations

from pathlib import Path

import pytest
from structlog.testing import capture_logs

from stormwatch.app import App
from stormwatch.config import check_secrets, load_config, redacted
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
    config = load_config(path, env={})  # replay reads configs like this: no secrets needed
    with pytest.raises(ConfigError) as info:
        check_secrets(config, str(path), env={"API_PW": "x"})
    assert str(path) in str(info.value) and "GRAFANA_HMAC" in str(info.value)
    check_secrets(config, str(path), env={"API_PW": "pw-value", "GRAFANA_HMAC": "hmac-value"})
    with pytest.raises(ConfigError, match="GRAFANA_HMAC"):
        App(config)  # the daemon reads them at start, from its environment
    shown = str(redacted(config))
    assert "pw-value" not in shown and "hmac-value" not in shown
    assert "GRAFANA_HMAC" in shown and "API_PW" in shown  # where the secret is, not what


def test_config_check_command_names_a_missing_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from stormwatch.cli import main

    path = _config(
        tmp_path, "ingest:\n  auth:\n    api: {type: bearer, token_env: TEST_API_TOKEN_X}\n"
    )
    monkeypatch.delenv("TEST_API_TOKEN_X", raising=False)
    assert main(["config", "check", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "$.ingest.auth.api.token_env" in err and "TEST_API_TOKEN_X" in err
    monkeypatch.setenv("TEST_API_TOKEN_X", "the-token-value")
    assert main(["config", "check", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "TEST_API_TOKEN_X" in out and "the-token-value" not in out


async def test_a_syslog_address_in_use_stops_the_start(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        path = _config(
            tmp_path,
            f"ingest:\n  syslog:\n    tcp: 127.0.0.1:{port}\n    patterns: [{{alertname: A, regex: x}}]\n",
        )
        config = load_config(
            path,
            env={},
            listen=f"127.0.0.1:{pick_free_port()}",
            incidents_jsonl=str(tmp_path / "i"),
        )
        app = App(config)
        with pytest.raises(OSError, match=str(port)):
            await app.start()
        await app.stop()
