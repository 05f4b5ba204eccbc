"""A request body, taken in defensively: bounded in size, time and nesting.

| what                                              | reason                   | status |
| ------------------------------------------------- | ------------------------ | ------ |
| Content-Length or the bytes read over `max_bytes` | too_large                | 413    |
| no complete body within `timeout` (slow, stalled) | timeout                  | 408    |
| the client went away mid-body, broken chunking    | incomplete_body          | 400    |
| `Content-Encoding` other than gzip/deflate/identity | unsupported_media_type | 415    |
| gzip/deflate that does not decompress             | invalid_encoding         | 400    |
| decompressed over `max_bytes` (a zip bomb)        | too_large                | 413    |
| JSON nested deeper than `max_depth`               | too_deep                 | 400    |

The server runs with aiohttp's `auto_decompress` off, so the raw bytes are what the
sender signed (HMAC is checked on them) and decompression happens here, a chunk at a
time, stopping at the size limit instead of inflating a bomb whole.
"""

from __future__ import annotations

import asyncio
import re
import zlib
from itertools import accumulate

import msgspec
from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

from stormwatch.errors import PayloadError
from stormwatch.wire import Duration

__all__ = ["BodyLimits", "check_depth", "decode_content", "read_body"]

_CHUNK = 65536


class BodyLimits(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """What a request body may cost (`ingest.max_body_bytes`, `body_timeout`, `max_json_depth`)."""

    max_bytes: int = 4 * 1024 * 1024
    """After decompression; larger: 413."""
    timeout: Duration = Duration(10)
    """The whole body must arrive within this; a slow or stalled one gets 408."""
    max_depth: int = 64
    """JSON nesting (arrays and objects); deeper: 400. Real payloads nest under 15."""


async def read_body(request: web.BaseRequest, limits: BodyLimits, source: str) -> bytes:
    """The raw body as sent (still compressed, if it was). Raises PayloadError."""
    declared = request.content_length
    if declared is not None and declared > limits.max_bytes:
        raise _too_large(limits, source)
    content = request.content
    chunks: list[bytes] = []
    size = 0
    try:
        if content.is_eof():
            # It all came with the request (a batch of alerts nearly always does): read
            # what is buffered, with no timer to set and cancel (bench/README.md).
            body = content.read_nowait(-1)
            if len(body) > limits.max_bytes:
                raise _too_large(limits, source)
            return body
        async with asyncio.timeout(limits.timeout):
            async for chunk in content.iter_chunked(_CHUNK):
                size += len(chunk)
                if size > limits.max_bytes:
                    raise _too_large(limits, source)
                chunks.append(chunk)
    except TimeoutError as err:
        msg = f"the body did not arrive within {limits.timeout:g}s (ingest.body_timeout)"
        raise PayloadError(msg, source=source, reason="timeout") from err
    except (RequestPayloadError, ConnectionError) as err:
        msg = f"the body ended early or is malformed: {err}"
        raise PayloadError(msg, source=source, reason="incomplete_body") from err
    return b"".join(chunks)


def _too_large(limits: BodyLimits, source: str) -> PayloadError:
    msg = f"request body exceeds {limits.max_bytes} bytes (ingest.max_body_bytes)"
    return PayloadError(msg, source=source, reason="too_large")


def _inflate(data: bytes, wbits: int, max_bytes: int, coding: str, source: str) -> bytes:
    """Decompress every member (gzip allows several back to back), never past max_bytes."""
    out: list[bytes] = []
    size = 0
    while data:
        inflater = zlib.decompressobj(wbits)
        try:
            part = inflater.decompress(data, max_bytes - size + 1)
        except zlib.error as err:
            msg = f"the body is not valid {coding}: {err}"
            raise PayloadError(msg, source=source, reason="invalid_encoding") from err
        size += len(part)
        if size > max_bytes:
            msg = f"decompressed body exceeds {max_bytes} bytes (ingest.max_body_bytes)"
            raise PayloadError(msg, source=source, reason="too_large")
        if not inflater.eof:
            msg = f"the {coding} body is truncated"
            raise PayloadError(msg, source=source, reason="invalid_encoding")
        out.append(part)
        data = inflater.unused_data
    return b"".join(out)


def decode_content(raw: bytes, content_encoding: str, max_bytes: int, source: str) -> bytes:
    """Undo `Content-Encoding` (gzip, x-gzip, deflate, identity; listed in the order they
    were applied). Raises PayloadError: 415 for another coding, 400 if broken, 413 past
    `max_bytes`."""
    codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip()]
    data = raw
    for coding in reversed(codings):
        if coding == "identity":
            continue
        if coding in ("gzip", "x-gzip"):
            data = _inflate(data, 16 + zlib.MAX_WBITS, max_bytes, coding, source)
        elif coding == "deflate":
            # RFC 9110's deflate is zlib-wrapped; some senders send it raw.
            wbits = zlib.MAX_WBITS if data[:1] and data[0] & 0x0F == 8 else -zlib.MAX_WBITS
            data = _inflate(data, wbits, max_bytes, coding, source)
        else:
            msg = f"Content-Encoding {coding!r} is not supported; send gzip, deflate or none"
            raise PayloadError(
                msg, source=source, field="Content-Encoding", reason="unsupported_media_type"
            )
    return data


_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'"[]{}')
_STRING = re.compile(rb'"[^"]*+(?:"|\Z)')
"""Possessive and anchored at the end, so an unterminated string cannot make the scan
quadratic (hostile bodies are exactly the ones that do not parse)."""
_STEP = [0] * 256
for _open in b"[{":
    _STEP[_open] = 1
for _close in b"]}":
    _STEP[_close] = -1


def check_depth(body: bytes, limit: int, source: str) -> None:
    """Refuse JSON whose arrays and objects nest deeper than `limit`, counted before
    decoding (the decoder, and any code walking the result, would recurse): escapes
    dropped, then everything but quotes and brackets, then strings, then a running sum;
    all C loops, linear in the body. A body with no more brackets than `limit` cannot
    exceed it and is not scanned at all."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return
    if b"\\" in body:
        body = _ESCAPE.sub(b"", body)
    brackets = _STRING.sub(b"", body.translate(None, _NOT_STRUCTURE))
    depth = max(accumulate(map(_STEP.__getitem__, brackets)), default=0)
    if depth > limit:
        msg = f"JSON nests {depth} levels deep; at most {limit} (ingest.max_json_depth)"
        raise PayloadError(msg, source=source, reason="too_deep")
