"""Syslog headers: RFC 5424 and RFC 3164 (BSD), and the plain log lines files hold.

`parse_line` never fails: a line with no header it knows is all message. What it reads:

| form | example | time |
| --- | --- | --- |
| RFC 5424 | `<34>1 2026-08-09T06:07:46.1Z web1 sshd 9911 - [origin ip="10.0.0.1"] Failed ...` | its timestamp |
| RFC 3164 | `<38>Aug  9 06:07:46 web1 sshd[9911]: Failed ...` | none (no year, no zone) |
| rsyslog file format | `2026-08-09T06:07:46.123+02:00 web1 sshd[9911]: Failed ...` | its timestamp |
| traditional file format | `Aug  9 06:07:46 web1 sshd[9911]: Failed ...` | none |

A time without a zone is not trusted (the sender's zone is unknown): the source uses the
arrival time instead. RFC 5424's NILVALUE (`-`) is an empty field, its structured data is
parsed (`SD-ID` -> params) and a leading BOM is dropped from the message.
"""

from __future__ import annotations

import re
from datetime import datetime

import msgspec

__all__ = ["LogLine", "parse_line"]


class LogLine(msgspec.Struct, kw_only=True, frozen=True, gc=False):
    message: str
    host: str = ""
    program: str = ""
    pid: str = ""
    msgid: str = ""
    timestamp: float | None = None
    """Epoch seconds, only when the line's time names its zone."""
    facility: int | None = None
    severity: int | None = None
    """Syslog's 0 (emergency) .. 7 (debug), from the PRI."""
    structured_data: dict[str, dict[str, str]] = {}


_PRI = re.compile(r"<(\d{1,3})>")
_RFC5424 = re.compile(r"1 (\S+) (\S+) (\S+) (\S+) (\S+) ?(.*)", re.DOTALL)
_BSD_TIME = re.compile(r"[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d ")
_ISO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)? ")
_TAG = re.compile(r"([^\s:\[\]]{1,64})(?:\[([^\]\s]{1,32})\])?: ?")
_SD_ELEMENT = re.compile(r'\[([^\s\]=]+)((?:\s+[^\s\]=]+="(?:[^"\\]|\\.)*")*)\s*\]')
_SD_PARAM = re.compile(r'([^\s\]=]+)="((?:[^"\\]|\\.)*)"')


def _iso(text: str) -> float | None:
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when.timestamp() if when.tzinfo is not None else None


def _nil(field: str) -> str:
    return "" if field == "-" else field


def _structured(text: str) -> tuple[dict[str, dict[str, str]], str]:
    """RFC 5424 STRUCTURED-DATA at the start of `text`, and the message after it."""
    if text.startswith("- ") or text == "-":
        return {}, text[2:]
    out: dict[str, dict[str, str]] = {}
    pos = 0
    while True:
        m = _SD_ELEMENT.match(text, pos)
        if m is None:
            break
        params = {k: re.sub(r"\\(.)", r"\1", v) for k, v in _SD_PARAM.findall(m.group(2))}
        out.setdefault(m.group(1), {}).update(params)
        pos = m.end()
    if pos == 0:
        return {}, text  # not structured data after all: keep it as message
    return out, text[pos:].removeprefix(" ")


def _rfc5424(pri: int, rest: str) -> LogLine | None:
    m = _RFC5424.fullmatch(rest)
    if m is None:
        return None
    stamp, host, app, procid, msgid, tail = m.groups()
    sd, message = _structured(tail)
    return LogLine(
        message=message.removeprefix("\ufeff"),
        host=_nil(host),
        program=_nil(app),
        pid=_nil(procid),
        msgid=_nil(msgid),
        timestamp=None if stamp == "-" else _iso(stamp),
        facility=pri >> 3,
        severity=pri & 7,
        structured_data=sd,
    )


def _bsd(rest: str, pri: int | None) -> LogLine | None:
    """RFC 3164 after the PRI, or a file line: TIMESTAMP [HOSTNAME] TAG[PID]: MSG."""
    timestamp: float | None = None
    m = _BSD_TIME.match(rest)
    if m is None:
        m = _ISO_TIME.match(rest)
        if m is None:
            return None
        timestamp = _iso(m.group(0).strip())
    body, host = rest[m.end() :], ""
    tag = _TAG.match(body)
    if tag is None:  # not `sshd[1]: ...` straight away: the first word is the host
        host, _, body = body.partition(" ")
        tag = _TAG.match(body)
    facility, severity = (None, None) if pri is None else (pri >> 3, pri & 7)
    if tag is None:
        return LogLine(
            message=body, host=host, timestamp=timestamp, facility=facility, severity=severity
        )
    return LogLine(
        message=body[tag.end() :],
        host=host,
        program=tag.group(1),
        pid=tag.group(2) or "",
        timestamp=timestamp,
        facility=facility,
        severity=severity,
    )


def parse_line(text: str) -> LogLine:
    """Read a syslog message or a log file line (already cleaned of NULs and bad UTF-8)."""
    pri: int | None = None
    rest = text
    m = _PRI.match(text)
    if m is not None and int(m.group(1)) <= 191:
        pri = int(m.group(1))
        rest = text[m.end() :]
        parsed = _rfc5424(pri, rest) if rest.startswith("1 ") else None
        if parsed is not None:
            return parsed
    parsed = _bsd(rest, pri)
    if parsed is not None:
        return parsed
    return LogLine(
        message=rest,
        facility=None if pri is None else pri >> 3,
        severity=None if pri is None else pri & 7,
    )
