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
    if "{" not in template and "}" not in template:
        return template

    def fill(m: re.Match[str]) -> str:
        token = m.group(0)
        if token in ("{{", "}}"):
            return token[0]
        name = m.group(1)
        key = unquote(name[1:-1]) if name.startswith('"') else name.strip()
        value = values.get(key)
        return token if value is None else value

    return _PLACEHOLDER.sub(fill, template)
