"""Paths into decoded JSON: `a.b[0].c`, `$.a.b`, `a["key with.dots"]`.

A dotted name also finds flattened keys, as Elasticsearch documents mix them with
nested objects: `kibana.alert.rule.name` finds `{"kibana.alert.rule.name": ...}`,
`{"kibana": {"alert": {"rule": {"name": ...}}}}` and any mix of the two. A nested
object wins over a flattened key when both exist.

Dotted paths and `[n]` indexes cover what webhook payloads need, so no JSONPath
library is pulled in for filters and wildcards nobody maps alerts with.
"""

from __future__ import annotations

import re
from typing import Any, TypeAlias

__all__ = ["Path", "lookup", "parse_path"]

Path: TypeAlias = tuple[str | int, ...]

_TOKEN = re.compile(
    r"""\.?(?P<name>[^.\[\]"']+)
      |\[(?P<index>-?\d+)\]
      |\[(?P<q>["'])(?P<quoted>(?:(?!(?P=q))[^\\]|\\.)*)(?P=q)\]""",
    re.VERBOSE,
)


def parse_path(text: str) -> Path:
    """Parse a path once (mappings do it when the config loads).

    Raises:
        ValueError: the text is not a path; the message points at the bad part.
    """
    body = text.strip()
    if body.startswith("$"):
        body = body[1:]
    segments: list[str | int] = []
    pos = 0
    while pos < len(body):
        m = _TOKEN.match(body, pos)
        if m is None or (m.group("name") is not None and pos > 0 and body[pos] != "."):
            msg = f"invalid path {text!r} at {body[pos:]!r}: use a.b, a[0] or a['key']"
            raise ValueError(msg)
        if m.group("name") is not None:
            segments.append(m.group("name"))
        elif m.group("index") is not None:
            segments.append(int(m.group("index")))
        else:
            segments.append(re.sub(r"\\(.)", r"\1", m.group("quoted")))
        pos = m.end()
    if not segments and text.strip() != "$":
        msg = f"invalid path {text!r}: it names nothing (`$` is the whole item)"
        raise ValueError(msg)
    return tuple(segments)


def lookup(node: Any, path: Path) -> Any:
    """The value at `path`, or None when any step is missing."""
    if not path:
        return node
    head = path[0]
    if isinstance(head, int):
        if isinstance(node, list) and -len(node) <= head < len(node):
            return lookup(node[head], path[1:])
        return None
    if not isinstance(node, dict):
        return None
    if head in node:
        found = lookup(node[head], path[1:])
        if found is not None:
            return found
    # Flattened keys: "a.b" for the path a, b (Elasticsearch, ECS, Splunk's `tag::x`).
    key = head
    for n in range(1, len(path)):
        step = path[n]
        if not isinstance(step, str):
            break
        key = f"{key}.{step}"
        if key in node:
            found = lookup(node[key], path[n + 1 :])
            if found is not None:
                return found
    return None
