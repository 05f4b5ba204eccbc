"""What every HTTP sink shares: one session, the status table, errors translated once."""

from __future__ import annotations

from typing import Any

import aiohttp
import msgspec

from sinks.base import classify_status, translate_client_error
from stormwatch.errors import ConfigError, PermanentSinkError, SinkError

__all__ = ["HttpClient", "optional_secret", "read_secret"]

_enc = msgspec.json.Encoder()


def read_secret(value: str | None, file: str | None, *, sink: str, name: str) -> str:
    """A secret given inline or in a file (a mounted secret); exactly one of the two,
    as Alertmanager requires for `routing_key` and `routing_key_file`."""
    if (value is None) == (file is None):
        msg = f"exactly one of {name} and {name}_file must be configured"
        raise ConfigError(msg, field=f"sinks[{sink}].{name}")
    if value is not None:
        return value
    try:
        with open(file or "") as fh:
            return fh.read().strip()
    except OSError as err:
        msg = f"cannot read {name}_file: {err.strerror}"
        raise ConfigError(msg, field=f"sinks[{sink}].{name}_file") from err


def optional_secret(value: str | None, file: str | None, *, sink: str, name: str) -> str | None:
    """A secret that may be left out (a webhook's): at most one of the two forms."""
    if value is None and file is None:
        return None
    return read_secret(value, file, sink=sink, name=name)


class HttpClient:
    """One aiohttp session per sink, created inside the running loop when first used."""

    def __init__(self, sink: str, timeout: float, headers: dict[str, str] | None = None) -> None:
        self.sink = sink
        self._timeout = timeout
        self._headers = headers or {}
        self._session: aiohttp.ClientSession | None = None

    async def request(self, method: str, url: str, body: Any = None, **kw: Any) -> tuple[int, str]:
        """Send `body` as JSON; return (status, text) for a 2xx, raise SinkError otherwise."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._timeout), headers=self._headers
            )
        data = (
            body if isinstance(body, bytes) else (_enc.encode(body) if body is not None else None)
        )
        headers = {"Content-Type": "application/json", **kw.pop("headers", {})}
        try:
            async with self._session.request(method, url, data=data, headers=headers, **kw) as resp:
                text = await resp.text()
                classify_status(self.sink, resp.status, text, resp.headers.get("Retry-After"))
                return resp.status, text
        except SinkError:
            raise
        except (aiohttp.ClientError, TimeoutError) as err:
            raise translate_client_error(self.sink, err) from err

    async def request_json(
        self, method: str, url: str, body: Any = None, **kw: Any
    ) -> tuple[int, Any]:
        status, text = await self.request(method, url, body, **kw)
        try:
            return status, msgspec.json.decode(text) if text else {}
        except msgspec.DecodeError as err:
            raise PermanentSinkError(f"{self.sink}: not JSON from {url}", sink=self.sink) from err

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
