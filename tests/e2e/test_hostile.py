"""Hostile HTTP against a real `stormwatch run`: what the client sees on the wire, and
that every line the daemon logs, aiohttp's own included, is one JSON object."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

from tests.conftest import Daemon


def _exchange(daemon: Daemon, data: bytes, timeout: float = 10.0) -> bytes:
    host, port = daemon.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        while b"\r\n\r\n" not in out:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
        head, _, body = out.partition(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            ),
            0,
        )
        while len(body) < length:
            chunk = s.recv(65536)
            if not chunk:
                break
            body += chunk
        return head + b"\r\n\r\n" + body


def test_hostile_http_gets_clear_answers_and_json_logs(daemon_factory: Any) -> None:
    daemon: Daemon = daemon_factory()
    huge = (
        b"POST /api/v2/alerts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 104857600\r\n\r\n" + b"[" * 65536
    )
    answer = _exchange(daemon, huge)
    assert answer.startswith(b"HTTP/1.1 413") and b"Connection: close" in answer
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"] == "too_large"

    deep = b"[" * 1000 + b"]" * 1000
    status, body, _ = daemon.post("/api/v2/alerts", deep)
    assert status == 400 and json.loads(body)["error"] == "too_deep"

    # Broken HTTP is aiohttp's to answer; its error log must still be one of our lines,
    # and a client repeating it must not repeat the line (one per 10 s gets through).
    for _ in range(5):
        bad = _exchange(daemon, b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n")
        assert bad.startswith(b"HTTP/1.") and b" 400 " in bad.split(b"\r\n")[0]
    assert daemon.post("/api/v2/alerts", b'[{"labels": {"alertname": "after"}}]')[0] == 200

    _, metrics = daemon.get("/metrics")
    text = metrics.decode()
    assert 'stormwatch_alerts_rejected_total{reason="too_deep",source="alertmanager"} 1.0' in text
    assert 'stormwatch_http_server_errors_total{status="500"} 0.0' in text

    deadline = time.monotonic() + 10
    while b"aiohttp.server" not in daemon.log.read_bytes() and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = [line for line in daemon.log.read_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is JSON, none is a bare traceback
    (aiohttp_error,) = [r for r in records if r.get("logger") == "aiohttp.server"]
    assert (
        aiohttp_error["level"] == "error"
        and aiohttp_error["exception"][0]["exc_type"] == "BadHttpMessage"
    )
