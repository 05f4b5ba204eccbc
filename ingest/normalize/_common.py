"""What every normaliser shares: msgspec error translation and label checks."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, TypeVar

import msgspec

from stormwatch.errors import PayloadError, split_validation_message

__all__ = ["ZERO_TIME", "check_labels", "decode", "epoch"]

T = TypeVar("T")

_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
ZERO_TIME = -62135596800.0
"""Go's zero time (0001-01-01T00:00:00Z) as epoch seconds: Alertmanager's "unset"."""


def decode(decoder: msgspec.json.Decoder[T], body: bytes, source: str) -> T:
    """Decode with a prebuilt decoder, turning msgspec's errors into PayloadError."""
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as err:
        message, path = split_validation_message(str(err))
        if "[...]" in path:
            path = _name_the_key(body, path)
        raise PayloadError(message, source=source, field=path, reason="invalid_payload") from err
    except msgspec.DecodeError as err:
        raise PayloadError(f"malformed JSON: {err}", source=source, reason="invalid_json") from err


def _name_the_key(body: bytes, path: str) -> str:
    """msgspec writes a bad dict value's key as `[...]`; find the key, so the error says
    `$[0].labels.alertname` rather than `$[0].labels[...]`. Error path only."""
    try:
        node: Any = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return path
    out = "$"
    for index, key, dots in re.findall(
        r"\[(\d+)\]|\.([^.\[]+)|(\[\.\.\.\])", path.removeprefix("$")
    ):
        if index and isinstance(node, list) and int(index) < len(node):
            node, out = node[int(index)], f"{out}[{index}]"
        elif key and isinstance(node, dict) and key in node:
            node, out = node[key], f"{out}.{key}"
        elif dots and isinstance(node, dict):
            bad = next((k for k, v in node.items() if not isinstance(v, str)), None)
            if bad is None:
                return path
            node, out = node[bad], f"{out}.{bad}"
        else:
            return path
    return out


def epoch(value: datetime | None, default: float | None) -> float | None:
    """A decoded timestamp as epoch seconds; Go's zero time counts as unset."""
    if value is None:
        return default
    ts = value.timestamp()
    return default if ts <= ZERO_TIME + 1 else ts


_valid_names: set[str] = set()
"""Label names already checked: a fleet uses a few dozen, so the regex runs once each
(bench/test_bench_decode.py::test_decode_alertmanager_batch_of_100). Bounded below."""


def check_labels(labels: dict[str, str], source: str, path: str) -> None:
    """Alertmanager's label rules: at least one label, names `[a-zA-Z_][a-zA-Z0-9_]*`."""
    if not labels:
        raise PayloadError("at least one label is required", source=source, field=path)
    valid = _valid_names
    for name in labels:
        if name in valid:
            continue
        if not _LABEL_NAME.fullmatch(name):
            msg = f"invalid label name {name!r}: must match [a-zA-Z_][a-zA-Z0-9_]*"
            raise PayloadError(msg, source=source, field=f"{path}.{name}")
        if len(valid) < 10_000:
            valid.add(name)
