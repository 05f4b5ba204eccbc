"""Rule files -> a checked `RuleSet`, or every error with file, line, rule and field.

msgspec decodes each file into `rules.schema.RuleFile` and reports a bad field as a
`$[2].correlation.timespan` path with no line number; PyYAML's node tree (composed
once, with the C loader when available) maps that path back to a line. All files are
read and every error is collected before anything is raised, so `rules check` shows
them all and a reload is refused whole.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Sequence
from pathlib import Path

import msgspec
import yaml

from rules.matchers import MatcherError, parse_matchers
from rules.ruleset import Origin, RuleSet
from rules.schema import Rule, Temporal, TemporalOrdered, ValueCount
from stormwatch.errors import RuleError, split_validation_message
from stormwatch.wire import decode_hook

__all__ = ["RuleErrors", "load_rules", "rule_files"]

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_PATH_PART = re.compile(r"\[(\d+|\.\.\.)\]|\.([^.\[]+)")


class RuleErrors(RuleError):
    """Several rule errors at once; `errors` lists them, `str()` prints one per line."""

    def __init__(self, errors: list[RuleError]) -> None:
        super().__init__(f"{len(errors)} errors")
        self.errors = errors

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)


def rule_files(paths: Iterable[str | Path]) -> list[Path]:
    """The YAML files named by `paths`: files as given, folders' *.yaml / *.yml sorted."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(
                sorted(f for f in p.iterdir() if f.suffix in (".yaml", ".yml") and f.is_file())
            )
        else:
            out.append(p)
    return out


class _Doc:
    """One file's YAML node tree, to turn `$.paths` into line numbers."""

    def __init__(self, text: str) -> None:
        try:
            self.root: yaml.Node | None = yaml.compose(text, Loader=_Loader)
        except yaml.YAMLError:
            self.root = None

    def node(self, path: str) -> yaml.Node | None:
        node, best = self.root, self.root
        for index, key in _PATH_PART.findall(path.removeprefix("$")):
            if node is None:
                break
            if index:
                if index == "..." or not isinstance(node, yaml.SequenceNode):
                    break
                i = int(index)
                node = node.value[i] if i < len(node.value) else None
            else:
                if not isinstance(node, yaml.MappingNode):
                    break
                node = next((v for k, v in node.value if getattr(k, "value", None) == key), None)
            if node is not None:
                best = node
        return best

    def key_line(self, path: str, key: str) -> int | None:
        """The line of `key` inside the mapping at `path` (for unknown-field errors)."""
        node = self.node(path)
        if isinstance(node, yaml.MappingNode):
            for k, _ in node.value:
                if getattr(k, "value", None) == key:
                    return int(k.start_mark.line) + 1
        return self.line(path)

    def line(self, path: str) -> int | None:
        node = self.node(path)
        return int(node.start_mark.line) + 1 if node is not None else None

    def rule_name(self, path: str) -> str:
        m = re.match(r"\$\[(\d+)\]", path)
        if not m or not isinstance(self.root, yaml.SequenceNode):
            return ""
        i = int(m.group(1))
        if i >= len(self.root.value) or not isinstance(self.root.value[i], yaml.MappingNode):
            return ""
        for k, v in self.root.value[i].value:
            if getattr(k, "value", None) == "name" and isinstance(v, yaml.ScalarNode):
                return str(v.value)
        return ""


def _decode_error(file: str, doc: _Doc, err: msgspec.ValidationError, prefix: str) -> RuleError:
    message, path = split_validation_message(str(err))
    path = prefix + path.removeprefix("$")
    unknown = re.match(r"Object contains unknown field `(.+)`", message)
    if unknown:
        line = doc.key_line(path, unknown.group(1))
        path = f"{path}.{unknown.group(1)}"
    else:
        line = doc.line(path)
    return RuleError(message, file=file, line=line, rule=doc.rule_name(path), field=_field(path))


def _field(path: str) -> str:
    """`$[2].correlation.timespan` -> `correlation.timespan` (the rule is named apart)."""
    return re.sub(r"^\$\[\d+\]\.?", "", path) or path


def _template_fields(template: str) -> list[str]:
    return [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]


def _semantic_errors(file: str, doc: _Doc, index: int, rule: Rule) -> Iterable[RuleError]:
    def err(field: str, message: str) -> RuleError:
        path = f"$[{index}]" + (f".{field}" if field else "")
        return RuleError(message, file=file, line=doc.line(path), rule=rule.name, field=field)

    for i, text in enumerate(rule.match):
        try:
            parse_matchers([text])
        except MatcherError as e:
            yield err(f"match[{i}]", str(e))
    for name in ("title", "summary"):
        template = getattr(rule.incident, name) or ""
        try:
            _template_fields(template)
        except ValueError as e:
            yield err(f"incident.{name}", f"bad placeholder in {template!r}: {e}")
    for i, case in enumerate(rule.classify):
        for j, text in enumerate(case.when.match):
            try:
                parse_matchers([text])
            except MatcherError as e:
                yield err(f"classify[{i}].when.match[{j}]", str(e))
    corr = rule.correlation
    condition = getattr(corr, "condition", None)
    if condition is not None and all(
        getattr(condition, b) is None for b in ("gt", "gte", "lt", "lte", "eq", "neq")
    ):
        yield err(
            "correlation.condition", "condition sets no bound: use gt, gte, lt, lte, eq or neq"
        )
    if isinstance(corr, ValueCount) and not corr.condition.field:
        yield err(
            "correlation.condition.field",
            "value_count needs condition.field: the label whose distinct values are counted",
        )
    if isinstance(corr, Temporal | TemporalOrdered) and len(corr.rules) < 2:
        yield err(
            "correlation.rules", f"{corr.__struct_config__.tag} needs at least 2 rules to join"
        )
    if rule.resolve is not None and (rule.resolve.condition is None) != (
        rule.resolve.timespan is None
    ):
        yield err("resolve", "resolve.condition and resolve.timespan go together")


def _load_file(path: Path) -> tuple[list[tuple[Rule, int | None]], list[RuleError]]:
    file = str(path)
    try:
        text = path.read_text()
    except OSError as e:
        return [], [RuleError(f"cannot read: {e.strerror}", file=file)]
    try:
        yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark
        line = mark.line + 1 if mark is not None else None
        return [], [RuleError(f"invalid YAML: {e.problem}", file=file, line=line)]
    except yaml.YAMLError as e:
        return [], [RuleError(f"invalid YAML: {e}", file=file)]
    doc = _Doc(text)
    try:
        items = msgspec.yaml.decode(text.encode()) if text.strip() else []
    except msgspec.DecodeError as e:
        return [], [RuleError(f"invalid YAML: {e}", file=file)]
    if items is None:
        items = []
    if not isinstance(items, list):
        return [], [RuleError("a rule file is a YAML list of rules", file=file, line=doc.line("$"))]
    rules: list[tuple[Rule, int | None]] = []
    errors: list[RuleError] = []
    # Rule by rule, so one bad rule does not hide the errors of the next.
    for i, item in enumerate(items):
        try:
            rule = msgspec.convert(item, Rule, dec_hook=decode_hook)
        except msgspec.ValidationError as e:
            errors.append(_decode_error(file, doc, e, f"$[{i}]"))
            continue
        errors.extend(_semantic_errors(file, doc, i, rule))
        rules.append((rule, doc.line(f"$[{i}]")))
    return rules, errors


def load_rules(paths: Sequence[str | Path]) -> RuleSet:
    """Load and check every rule file under `paths`.

    Raises:
        RuleError: one error; `RuleErrors` (a RuleError) when there are several.
    """
    errors: list[RuleError] = []
    loaded: list[Rule] = []
    origins: dict[str, Origin] = {}
    files = rule_files(paths)
    for path in files:
        if not path.exists():
            errors.append(RuleError("no such file or folder", file=str(path)))
            continue
        rules, file_errors = _load_file(path)
        errors.extend(file_errors)
        for rule, line in rules:
            if rule.name in origins:
                first = origins[rule.name]
                errors.append(
                    RuleError(
                        f"duplicate rule name; first defined at {first.file}:{first.line}",
                        file=str(path),
                        line=line,
                        rule=rule.name,
                        field="name",
                    )
                )
                continue
            origins[rule.name] = Origin(file=str(path), line=line)
            loaded.append(rule)
    names = {r.name: r for r in loaded}
    for rule in loaded:
        corr = rule.correlation
        if corr is not None and getattr(corr, "rules", None):
            for step in corr.rules:  # type: ignore[union-attr]
                if step not in names:
                    o = origins[rule.name]
                    errors.append(
                        RuleError(
                            f"joins unknown rule {step!r}",
                            file=o.file,
                            line=o.line,
                            rule=rule.name,
                            field="correlation.rules",
                        )
                    )
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise RuleErrors(errors)
    return RuleSet(rules=tuple(loaded), origins=origins)
