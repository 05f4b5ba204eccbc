"""A bare HTTP/1.1 client for tests that care about the bytes on one connection:
pipelined requests, half-sent bodies, and whether the server closed afterwards."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    closed_after: bool = False
    """The server closed the connection after this answer (and sent nothing else)."""
    raw: bytes = field(default=b"", repr=False)


async def _read_response(reader: asyncio.StreamReader) -> RawResponse | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return RawResponse(status=status, headers=headers, body=body, raw=head + body)


async def raw_exchange(
    server: Any,
    request: bytes,
    *,
    answers: int,
    keep_open: bool = False,
    check_close: bool = False,
    timeout: float = 10.0,
) -> list[RawResponse]:
    """Send `request` (one or more requests, as bytes) on one connection and read up to
    `answers` responses, within `timeout`. The client keeps its side open until then,
    as a stalled sender would; `keep_open` only documents that intent at the call. With
    `check_close`, the last answer's `closed_after` says whether the server hung up."""
    reader, writer = await asyncio.open_connection(server.host, server.port)
    out: list[RawResponse] = []
    try:
        writer.write(request)
        await writer.drain()
        async with asyncio.timeout(timeout):
            while len(out) < answers:
                resp = await _read_response(reader)
                if resp is None:
                    break
                out.append(resp)
        if out and check_close:  # a server that closes does so right after its answer
            try:
                async with asyncio.timeout(0.2):
                    out[-1].closed_after = await reader.read(1) == b""
            except TimeoutError:
                out[-1].closed_after = False
    finally:
        writer.close()  # only now: with `keep_open` the body stayed unfinished until here
    return out
