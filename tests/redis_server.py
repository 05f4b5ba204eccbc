"""A redis-server of the test's own, on a free port, to stop and start at will (outage
tests must never touch the machine's server on 6379, which other tests share)."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import redis

from tests.conftest import missing_service, pick_free_port


class OwnRedis:
    """`start()` a server on `port` keeping its data in `dir` (an append-only file, so
    a restart "with its data" has every write); `stop()` shuts it down (SHUTDOWN
    saves it), `wipe()` deletes the data so the next start is empty."""

    def __init__(self, dir: Path, port: int | None = None) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            missing_service("redis-server not found: apt-get install -y redis-server")
        self.binary = str(binary)
        self.dir = dir
        self.port = port or pick_free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        log = (self.dir / "redis.log").open("ab")
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.dir),
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                client.ping()
                return
            except redis.exceptions.RedisError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        missing_service(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: redis-server flushes its append-only file
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def wipe(self) -> None:
        for name in ("appendonlydir", "appendonly.aof", "dump.rdb"):
            path = self.dir / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
