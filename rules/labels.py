"""Label names as Prometheus 3 and Alertmanager 0.27+ write them: any UTF-8 text.

A classic name (`[a-zA-Z_][a-zA-Z0-9_]*`) is written as it is; any other name, such as
OpenTelemetry's `service.name`, may be written in double quotes with Go's escapes, as
Alertmanager does: `"service.name"="checkout"`. The same quoting works in `{label}`
placeholders of incident titles: `{service.name}` or `{"service.name"}`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["fill_placeholders", "is_classic_name", "quote", "unquote"]

_CLASSIC = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}
_PLACEHOLDER = re.compile(r'\{\{|\}\}|\{("(?:[^"\\]|\\.)*"|[^{}"]+)\}')


def is_classic_name(name: str) -> bool:
    """True for a name every Prometheus version accepts unquoted."""
    return _CLASSIC.fullmatch(name) is not None


def quote(text: str) -> str:
    """`text` in double quotes, escaped so `unquote` reads it back."""
    escaped = (
        text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    )
    return f'"{escaped}"'


def unquote(text: str) -> str:
    """The inside of a double-quoted string, escapes resolved (`\\"`, `\\\\`, `\\n`, `\\t`);
    an unknown escape keeps its backslash, as regex values need (`"a\\.b"`)."""
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), "\\" + m.group(1)), text)


def fill_placeholders(template: str, values: Mapping[str, str]) -> str:
    """Fill `{label}` and `{"label name"}` placeholders; one with no value stays as
    written, and `{{` / `}}` are literal braces.

    >>> fill_placeholders('{service.name}: {count} alerts', {"service.name": "checkout", "count": "3"})
    'checkout: 3 alerts'
    """
    parts = _parsed.get(template)
    if parts is None:
        parts = _parse(template)
    if not parts:
        return template
    get = values.get
    return "".join([text if key is None else get(key, text) for text, key in parts])


_Parts = tuple[tuple[str, str | None], ...]
_parsed: dict[str, _Parts] = {}
"""Templates parsed once: a rule's title and summary are filled for every event."""
_PARSED_MAX = 4096


def _parse(template: str) -> _Parts:
    """(literal, None) and (as written, label name) pieces; () when nothing is filled."""
    parts: list[tuple[str, str | None]] = []
    at, filled = 0, False
    for m in _PLACEHOLDER.finditer(template):
        if m.start() > at:
            parts.append((template[at : m.start()], None))
        token = m.group(0)
        if token in ("{{", "}}"):
            parts.append((token[0], None))
            filled = True  # the doubled brace is written once
        else:
            name = m.group(1)
            key = unquote(name[1:-1]) if name.startswith('"') else name.strip()
            parts.append((token, key))
            filled = True
        at = m.end()
    if at < len(template):
        parts.append((template[at:], None))
    result: _Parts = tuple(parts) if filled else ()
    if len(_parsed) >= _PARSED_MAX:
        _parsed.clear()  # templates come from rule files: a bound, not an expected case
    _parsed[template] = result
    return result
