"""JSON from any tool, mapped by config: `POST /webhook/<name>` for each mapping.

```yaml
ingest:
  mapping_files: [deploy/mappings/datadog.yaml]   # files of {name: mapping}
  mappings:
    inhouse:                            # served at POST /webhook/inhouse
      items: data.alerts                # where the alerts are; default: the body
      labels:                           # label -> path (required; missing paths are left out)
        alertname: check.name
        host: target.host
        service: {path: title, regex: '^\\[(\\w+)\\]'}   # the first group of a regex
      static_labels: {team: platform}
      annotations: {summary: message, runbook: 'links[0].href'}   # quote [ in YAML
      status: {path: state, map: {OK: resolved, CRITICAL: firing}, default: firing}
      severity: {path: level, map: {"5": critical, "4": high}}   # then the shared table
      starts_at: {path: time, format: epoch_ms}   # auto, epoch_s, epoch_ms, rfc3339
      ends_at: resolved_at
      fingerprint: id                   # the tool's own alert id; else `identity`
      identity: [alertname, host]       # labels that make the fingerprint; default all
      generator_url: link
```

Paths are `ingest.normalize.paths` paths (`a.b[0].c`, flattened keys found too), each
relative to one item. Value maps compare case-insensitively; a status with no map entry
and no default is taken as it is when it says firing or resolved, else firing. A time is read as
`format` says; `auto` takes numbers as epoch seconds (milliseconds when too large to
be seconds) and strings as either. A resolved alert without `ends_at` ends on arrival.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path as FilePath
from typing import Any, Literal

import msgspec

from ingest.normalize._common import (
    check_labels,
    decode,
    event_times,
    label_value,
    parse_time,
    vendor_fingerprint,
)
from ingest.normalize.paths import Path, lookup, parse_path
from ingest.normalize.severity import SEVERITIES, normalize_severity
from stormwatch.errors import ConfigError, PayloadError, split_validation_message
from stormwatch.wire import Alert, decode_hook

__all__ = ["MappingConfig", "MappingNormalizer", "load_mappings"]

_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_any = msgspec.json.Decoder()
_encode = msgspec.json.Encoder().encode


def _check_path(text: str) -> None:
    parse_path(text)  # raises ValueError naming the bad part


class Extract(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """A path, and optionally the part of its value a regex's first group captures."""

    path: str
    regex: str | None = None

    def __post_init__(self) -> None:
        _check_path(self.path)
        if self.regex is not None:
            try:
                compiled = re.compile(self.regex)
            except re.error as err:
                msg = f"invalid regex {self.regex!r}: {err}"
                raise ValueError(msg) from err
            if compiled.groups < 1:
                msg = f"regex {self.regex!r} needs a group to capture the value"
                raise ValueError(msg)


class ValueMap(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    path: str
    map: dict[str, str] = {}
    default: str | None = None

    def __post_init__(self) -> None:
        _check_path(self.path)


class TimeField(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    path: str
    format: Literal["auto", "epoch_s", "epoch_ms", "rfc3339"] = "auto"

    def __post_init__(self) -> None:
        _check_path(self.path)


class MappingConfig(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    labels: dict[str, str | Extract]
    items: str | None = None
    static_labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    status: ValueMap | None = None
    severity: ValueMap | None = None
    starts_at: str | TimeField | None = None
    ends_at: str | TimeField | None = None
    fingerprint: str | None = None
    identity: list[str] = []
    generator_url: str | None = None

    def __post_init__(self) -> None:
        if not self.labels:
            raise ValueError("labels: map at least one label to a path")
        for text in (self.items, self.fingerprint, self.generator_url, *self.annotations.values()):
            if text is not None:
                _check_path(text)
        for value in self.labels.values():
            if isinstance(value, str):
                _check_path(value)
        for field in (self.starts_at, self.ends_at):
            if isinstance(field, str):
                _check_path(field)
        if self.status is not None:
            bad = {v for v in (*self.status.map.values(), self.status.default) if v} - {
                "firing",
                "resolved",
            }
            if bad:
                msg = f"status: map to firing or resolved, not {', '.join(sorted(bad))}"
                raise ValueError(msg)
        if self.severity is not None:
            values = (*self.severity.map.values(), self.severity.default)
            bad = {v for v in values if v} - set(SEVERITIES)
            if bad:
                msg = f"severity: map to {', '.join(SEVERITIES)}, not {', '.join(sorted(bad))}"
                raise ValueError(msg)
        unknown = set(self.identity) - set(self.labels) - set(self.static_labels)
        if unknown:
            msg = f"identity names labels the mapping does not set: {', '.join(sorted(unknown))}"
            raise ValueError(msg)


class _Map:
    __slots__ = ("default", "path", "table", "text")

    def __init__(self, spec: ValueMap) -> None:
        self.text = spec.path
        self.path = parse_path(spec.path)
        self.table = {k.lower(): v for k, v in spec.map.items()}
        self.default = spec.default

    def read(self, item: Any) -> tuple[str, str | None]:
        """(the raw value, what it maps to or the default)."""
        raw = label_value(lookup(item, self.path))
        return raw, self.table.get(raw.lower(), self.default)


def _time_spec(spec: str | TimeField | None) -> tuple[Path, str, str] | None:
    if spec is None:
        return None
    field = TimeField(path=spec) if isinstance(spec, str) else spec
    return parse_path(field.path), field.format, field.path


class MappingNormalizer:
    """A `Normalizer` built from one mapping; `source` is the mapping's name."""

    def __init__(self, name: str, config: MappingConfig) -> None:
        self.source = name
        self.config = config
        self._items = parse_path(config.items) if config.items else None
        self._labels: list[tuple[str, Path, re.Pattern[str] | None, str]] = []
        for label, spec in config.labels.items():
            extract = Extract(path=spec) if isinstance(spec, str) else spec
            regex = re.compile(extract.regex) if extract.regex else None
            self._labels.append((label, parse_path(extract.path), regex, extract.path))
        self._annotations = [(k, parse_path(v)) for k, v in config.annotations.items()]
        self._status = _Map(config.status) if config.status else None
        self._severity = _Map(config.severity) if config.severity else None
        self._starts = _time_spec(config.starts_at)
        self._ends = _time_spec(config.ends_at)
        self._fingerprint = parse_path(config.fingerprint) if config.fingerprint else None
        self._url = parse_path(config.generator_url) if config.generator_url else None

    def __call__(self, body: bytes, received_at: float) -> list[Alert]:
        doc = decode(_any, body, self.source)
        items: Any = lookup(doc, self._items) if self._items is not None else doc
        where = f"$.{self.config.items}".replace("$.$", "$") if self._items else "$"
        if items is None:
            msg = f"no {self.config.items!r} in the body"
            raise PayloadError(msg, source=self.source, field=where)
        if isinstance(items, list):
            return [self._alert(item, f"{where}[{n}]", received_at) for n, item in enumerate(items)]
        return [self._alert(items, where, received_at)]

    def _time(self, spec: tuple[Path, str, str] | None, item: Any, at: str) -> float | None:
        if spec is None:
            return None
        path, unit, text = spec
        return parse_time(lookup(item, path), source=self.source, field=f"{at}.{text}", unit=unit)

    def _alert(self, item: Any, at: str, received_at: float) -> Alert:
        source = self.source
        if not isinstance(item, dict):
            raise PayloadError("an alert must be a JSON object", source=source, field=at)
        labels = dict(self.config.static_labels)
        for label, path, regex, _ in self._labels:
            value = label_value(lookup(item, path))
            if regex is not None and value:
                m = regex.search(value)
                value = (m.group(1) or "") if m else value
            if value:
                labels[label] = value
        if not set(labels) - set(self.config.static_labels):
            paths = ", ".join(text for *_, text in self._labels)
            msg = f"none of the mapped label paths ({paths}) is in the item"
            raise PayloadError(msg, source=source, field=at)
        check_labels(labels, source, f"{at}.labels")
        status = "firing"
        if self._status is not None:
            raw, mapped = self._status.read(item)
            status = mapped or (raw.lower() if raw.lower() in ("firing", "resolved") else "firing")
        severity_raw, severity = (
            self._severity.read(item) if self._severity is not None else ("", None)
        )
        ends = self._time(self._ends, item, at)
        starts_at, ends_at = event_times(
            self._time(self._starts, item, at),
            (ends if ends is not None else received_at) if status == "resolved" else ends,
            received_at,
            source=source,
            at=at,
            starts=self._starts[2] if self._starts else "starts_at",
            ends=self._ends[2] if self._ends else "ends_at",
        )
        identity = {k: labels[k] for k in self.config.identity if k in labels} or labels
        vendor_id = label_value(lookup(item, self._fingerprint)) if self._fingerprint else ""
        annotations = {}
        for name, path in self._annotations:
            value = lookup(item, path)
            text = _encode(value).decode() if isinstance(value, dict) else label_value(value)
            if text:
                annotations[name] = text
        return Alert(
            source=source,
            fingerprint=vendor_fingerprint("id", vendor_id, identity),
            status="resolved" if status == "resolved" else "firing",
            labels=labels,
            severity=normalize_severity(severity or severity_raw or labels.get("severity")),
            annotations=annotations,
            starts_at=starts_at,
            ends_at=ends_at,
            received_at=received_at,
            generator_url=label_value(lookup(item, self._url)) if self._url else "",
            raw=msgspec.Raw(_encode(item)),
        )


def _config(spec: Any, path: str, field: str) -> MappingConfig:
    try:
        return msgspec.convert(spec, MappingConfig, dec_hook=decode_hook)
    except msgspec.ValidationError as err:
        message, where = split_validation_message(str(err))
        raise ConfigError(message, path=path, field=field + where.removeprefix("$")) from err


def load_mappings(
    inline: Mapping[str, Any], files: list[str], builtin: set[str]
) -> dict[str, MappingNormalizer]:
    """The mappings of the config (`ingest.mappings`, as decoded YAML) and of its
    `mapping_files`, checked: each a valid mapping, names URL path segments, unique, and
    not a built-in format. Raises ConfigError naming the file and the `$.path`."""
    found: dict[str, tuple[Any, str, str]] = {
        name: (spec, "", f"$.ingest.mappings.{name}") for name, spec in inline.items()
    }
    for file in files:
        try:
            loaded = msgspec.yaml.decode(FilePath(file).read_bytes() or b"{}")
        except OSError as err:
            msg = f"cannot read mapping file: {err.strerror}"
            raise ConfigError(msg, path=file) from err
        except msgspec.DecodeError as err:
            raise ConfigError(f"not valid YAML: {err}", path=file) from err
        if not isinstance(loaded, dict):
            raise ConfigError("a mapping file holds {name: mapping}", path=file, field="$")
        for name, spec in loaded.items():
            if name in found:
                msg = (
                    f"mapping {name!r} is defined twice (also in {found[name][1] or 'the config'})"
                )
                raise ConfigError(msg, path=file, field=f"$.{name}")
            found[name] = (spec, file, f"$.{name}")
    out = {}
    for name, (spec, file, field) in found.items():
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            msg = f"mapping name {name!r}: use letters, digits, '.', '_' and '-' (it is a URL path)"
            raise ConfigError(msg, path=file, field=field)
        if name in builtin:
            msg = f"mapping name {name!r} is a built-in format; choose another"
            raise ConfigError(msg, path=file, field=field)
        out[name] = MappingNormalizer(name, _config(spec, file, field))
    return out
