"""What a rule author needs next to an error: "did you mean", and the valid values.

msgspec says `Object contains unknown field `group_by`` or `Invalid enum value 'P5'`
and where; it does not say what would have been right. The schema knows, so this walks
`rules.schema.Rule`'s type tree along the error's `$.path` (choosing a tagged union's
member by the `type` the file gave) and names the fields or values allowed there.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from msgspec import inspect as mi

from rules.schema import Rule

__all__ = ["hint_for", "path_parts"]

_PART = re.compile(r"\[(\d+)\]|\.([^.\[]+)")
_RULE_TYPE = mi.type_info(Rule)


def path_parts(path: str) -> list[str | int]:
    """`$.correlation.rules[1]` -> ["correlation", "rules", 1]."""
    return [int(index) if index else key for index, key in _PART.findall(path.removeprefix("$"))]


def _unwrap(t: mi.Type) -> mi.Type:
    while isinstance(t, mi.Metadata):
        t = t.type
    return t


def _structs(t: mi.Type, data: Any) -> list[mi.StructType]:
    """The Struct types `t` may be for `data`; a tagged union picks by its tag."""
    t = _unwrap(t)
    if isinstance(t, mi.StructType):
        return [t]
    if isinstance(t, mi.UnionType):
        members = [s for m in t.types for s in _structs(m, data)]
        tagged = [s for s in members if s.tag_field and isinstance(data, dict)]
        if tagged:
            chosen = [s for s in tagged if data.get(s.tag_field) == s.tag]
            return chosen or tagged
        return members
    return []


def _walk(parts: list[str | int], data: Any) -> tuple[mi.Type | None, Any]:
    """The schema type at `parts`, and the data found there (None where absent)."""
    t: mi.Type | None = _RULE_TYPE
    for part in parts:
        if t is None:
            return None, None
        t = _unwrap(t)
        if isinstance(t, mi.UnionType):  # `X | None`: the non-None member
            rest = [m for m in t.types if not isinstance(_unwrap(m), mi.NoneType)]
            structs = _structs(t, data)
            t = structs[0] if structs else (rest[0] if len(rest) == 1 else None)
            if t is None:
                return None, None
        if isinstance(part, int):
            if isinstance(t, mi.ListType | mi.SetType | mi.FrozenSetType | mi.VarTupleType):
                t = t.item_type
            else:
                return None, None
            data = data[part] if isinstance(data, list) and part < len(data) else None
            continue
        if isinstance(t, mi.DictType):
            t = t.value_type
        elif isinstance(t, mi.StructType):
            field = next((f for f in t.fields if f.encode_name == part), None)
            if field is None:
                return None, None
            t = field.type
        else:
            return None, None
        data = data.get(part) if isinstance(data, dict) else None
    return t, data


def _choices(values: list[str]) -> str:
    return ", ".join(values)


def hint_for(message: str, path: str, item: Any) -> str:
    """A sentence to append to msgspec's `message` at `path` in one rule (`item`), or ""."""
    unknown = re.match(r"Object contains unknown field `(.+)`", message)
    if unknown:
        t, data = _walk(path_parts(path), item)
        names = [f.encode_name for s in _structs(t, data) for f in s.fields] if t else []
        if not names:
            return ""
        key = unknown.group(1)
        close = difflib.get_close_matches(key, names, n=1, cutoff=0.6) or difflib.get_close_matches(
            key.replace("_", "-"), names, n=1, cutoff=0.8
        )
        if close:
            return f"; did you mean `{close[0]}`?"
        return f"; known fields here: {_choices(sorted(set(names)))}"
    if message.startswith(("Invalid enum value", "Invalid value")):
        parts = path_parts(path)
        if parts and parts[-1] == "type":  # the tag of the correlation union
            parent, data = _walk(parts[:-1], item)
            tags = [str(s.tag) for s in _structs(parent, {})] if parent else []
            return f"; valid types: {_choices(tags)}" if tags else ""
        t, _ = _walk(parts, item)
        t = _unwrap(t) if t is not None else None
        if isinstance(t, mi.UnionType):
            t = next((_unwrap(m) for m in t.types if isinstance(_unwrap(m), mi.LiteralType)), t)
        if isinstance(t, mi.LiteralType):
            return f"; valid values: {_choices([str(v) for v in t.values])}"
    return ""


_NO_VALUE = object()


def stand_in(path: str, item: Any) -> Any:
    """A valid value of the schema type at `path`, to put in place of a bad one so the
    rest of the rule still gets checked; `_NO_VALUE` when there is no simple one."""
    t, _ = _walk(path_parts(path), item)
    t = _unwrap(t) if t is not None else None
    if isinstance(t, mi.UnionType):
        members = [_unwrap(m) for m in t.types if not isinstance(_unwrap(m), mi.NoneType)]
        t = members[0] if members else None
    if isinstance(t, mi.LiteralType):
        return t.values[0]
    if isinstance(t, mi.CustomType):
        return 60  # Duration, the one custom scalar: 60 seconds
    simple: dict[type, Any] = {
        mi.StrType: "invalid",
        mi.IntType: 1,
        mi.FloatType: 1.0,
        mi.BoolType: False,
        mi.ListType: [],
        mi.DictType: {},
    }
    return simple.get(type(t), _NO_VALUE)


def has_stand_in(value: Any) -> bool:
    return value is not _NO_VALUE
