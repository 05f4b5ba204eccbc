"""Every door in, built from the `ingest:` config: the HTTP routes with their guard,
credentials and rate limits, the configured JSON mappings, and the log sources.

The shell builds one `Intake`, mounts `http.routes()` and `guard`, runs each of
`background` as a task, and logs `unprotected_routes()` at start when it listens beyond
loopback.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Callable, Mapping, Sequence

from ingest.auth import AuthConfig, Authenticator
from ingest.body import BodyLimits
from ingest.file_source import FileSource, FileSourceConfig
from ingest.guard import API_PREFIXES, http_guard
from ingest.http_source import HttpSource
from ingest.limits import InflightBudget, RateLimitConfig, RateLimiter
from ingest.normalize import Normalizer
from ingest.source import Source, Submit
from ingest.syslog_source import SyslogConfig, SyslogSource
from stormwatch.metrics import Metrics

__all__ = ["Intake", "is_loopback"]


def is_loopback(host: str) -> bool:
    """True for an address only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


class Intake:
    def __init__(
        self,
        submit: Submit,
        metrics: Metrics,
        *,
        limits: BodyLimits,
        auth: AuthConfig | None = None,
        rate_limit: RateLimitConfig | None = None,
        mappings: Mapping[str, Normalizer] | None = None,
        syslog: SyslogConfig | None = None,
        files: Sequence[FileSourceConfig] = (),
        environ: Mapping[str, str] | None = None,
        budget: InflightBudget | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.auth = Authenticator(auth, environ)
        self.rate = (
            RateLimiter(rate_limit)
            if rate_limit is not None and (rate_limit.per_client or rate_limit.per_token)
            else None
        )
        self.http = HttpSource(
            submit,
            metrics,
            limits,
            normalizers=mappings,
            auth=self.auth,
            rate_limiter=self.rate,
            budget=budget,
            clock=clock,
        )
        self.guard = http_guard(self.auth, self.rate, metrics)
        self.syslog = SyslogSource(syslog, metrics, clock) if syslog is not None else None
        self.files = [FileSource(f, metrics, clock) for f in files]
        self.background: list[Source] = [*([self.syslog] if self.syslog else []), *self.files]
        """Sources that run as tasks (syslog, file tails)."""

    @property
    def server_options(self) -> Mapping[str, object]:
        """Keyword arguments for aiohttp's `AppRunner` that the routes need."""
        return HttpSource.SERVER_OPTIONS

    def unprotected_routes(self) -> list[str]:
        """The routes anyone who reaches the port may call."""
        out = [
            "POST /api/v2/alerts" if s == "alertmanager" else f"POST /webhook/{s}"
            for s in self.http.sources
            if not self.auth.protects(s)
        ]
        if not self.auth.protects_api:
            out.extend(f"{p}..." for p in API_PREFIXES)
        return out

    @staticmethod
    async def wait_listening(
        source: Source, task: asyncio.Task[None], timeout: float = 10.0
    ) -> None:
        """Return once a listening source (syslog) has bound its sockets; raise what made
        it fail instead (an address in use), so the daemon does not start without it."""
        listening = getattr(source, "listening", None)
        if not isinstance(listening, asyncio.Event):
            return
        waiter = asyncio.ensure_future(listening.wait())
        try:
            await asyncio.wait({waiter, task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        if task.done() and not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
