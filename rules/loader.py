"""Rule files -> a checked `RuleSet`, or every error with file, line, rule and field.

msgspec decodes each file into `rules.schema.RuleFile` and reports a bad field as a
`$[2].correlation.timespan` path with no line number; PyYAML's node tree (composed
once, with the C loader when available) maps that path back to a line. All files are
read and every error is collected before anything is raised, so `rules check` shows
them all and a reload is refused whole.
"""

from __future__ import annotations

import copy
import re
import string
from collections.abc import Iterable, Sequence
from pathlib import Path

import msgspec
import yaml

from rules.files import rule_files, rule_test_files
from rules.hints import has_stand_in, hint_for, path_parts, stand_in
from rules.matchers import MatcherError, parse_matchers
from rules.ruleset import Origin, RuleSet
from rules.schema import Rule, Temporal, TemporalOrdered, ValueCount
from stormwatch.errors import RuleError, split_validation_message
from stormwatch.wire import decode_hook

__all__ = ["RuleErrors", "collect_rules", "load_rules", "rule_files", "rule_test_files"]

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_PATH_PART = re.compile(r"\[(\d+|\.\.\.)\]|\.([^.\[]+)")


class RuleErrors(RuleError):
    """Several rule errors at once; `errors` lists them, `str()` prints one per line."""

    def __init__(self, errors: list[RuleError]) -> None:
        super().__init__(f"{len(errors)} errors")
        self.errors = errors

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)


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


def _decode_error(
    file: str, doc: _Doc, message: str, path: str, index: int, item: object
) -> RuleError:
    full = f"$[{index}]" + path.removeprefix("$")
    unknown = re.match(r"Object contains unknown field `(.+)`", message)
    if unknown:
        line = doc.key_line(full, unknown.group(1))
        full = f"{full}.{unknown.group(1)}"
    else:
        line = doc.line(full)
    message += hint_for(message, path, item)
    return RuleError(message, file=file, line=line, rule=doc.rule_name(full), field=_field(full))


_MAX_ERRORS_PER_RULE = 20
_MISSING = re.compile(r"Object missing required field `(.+)`")


def _parent(work: object, parts: list[str | int]) -> object:
    node = work
    for part in parts[:-1]:
        if isinstance(part, int):
            node = node[part] if isinstance(node, list) and part < len(node) else None
        else:
            node = node.get(part) if isinstance(node, dict) else None
    return node


def _pop(work: object, parts: list[str | int]) -> bool:
    """Delete the value at `parts` inside `work`; False when it cannot be taken out."""
    if not parts or isinstance(parts[-1], int):
        return False  # a list item: taking it out would shift the next items' lines
    parent = _parent(work, parts)
    if not isinstance(parent, dict) or parts[-1] not in parent:
        return False
    del parent[parts[-1]]
    return True


def _put(work: object, parts: list[str | int], value: object) -> bool:
    """Replace the value at `parts` inside `work`; False when there is none to replace."""
    parent = _parent(work, parts)
    last = parts[-1] if parts else None
    if isinstance(parent, dict) and isinstance(last, str) and last in parent:
        parent[last] = value
        return True
    if isinstance(parent, list) and isinstance(last, int) and last < len(parent):
        parent[last] = value
        return True
    return False


def _convert(file: str, doc: _Doc, index: int, item: object) -> tuple[Rule | None, list[RuleError]]:
    """Decode one rule, reporting every field error, not only msgspec's first.

    After each error the offending key is taken out of a copy and the rule decoded
    again; a required field taken out that way takes its parent with it (the parent was
    already reported, through its field). Semantic checks then run on what decoded.
    """
    work = copy.deepcopy(item)
    errors: list[RuleError] = []
    dropped: set[tuple[str | int, ...]] = set()
    replaced: set[str] = set()
    for _ in range(_MAX_ERRORS_PER_RULE):
        try:
            rule = msgspec.convert(work, Rule, dec_hook=decode_hook)
        except msgspec.ValidationError as e:
            message, path = split_validation_message(str(e))
            parts = path_parts(path)
            missing = _MISSING.match(message)
            unknown = re.match(r"Object contains unknown field `(.+)`", message)
            if missing and (*parts, missing.group(1)) in dropped:
                target = parts  # silent: its own bad value was the error
            elif path in replaced:
                target = parts  # the stand-in did not fit either: take it out
            else:
                errors.append(_decode_error(file, doc, message, path, index, item))
                target = [*parts, unknown.group(1)] if unknown else parts
                value = stand_in(path, item) if not (unknown or missing) else None
                if not (unknown or missing) and has_stand_in(value) and _put(work, parts, value):
                    replaced.add(path)
                    continue
            if not _pop(work, target):
                return None, errors
            dropped.add(tuple(target))
            continue
        errors.extend(_semantic_errors(file, doc, index, rule))
        return rule, errors  # with errors: what decoded, for warnings only
    return None, errors


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


def _load_file(path: Path) -> tuple[list[tuple[Rule, int | None, bool]], list[RuleError]]:
    """The file's rules as (rule, line, loaded without error), and its errors."""
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
    rules: list[tuple[Rule, int | None, bool]] = []
    errors: list[RuleError] = []
    # Rule by rule, so one bad rule does not hide the errors of the next.
    for i, item in enumerate(items):
        rule, rule_errors = _convert(file, doc, i, item)
        errors.extend(rule_errors)
        if rule is not None:
            rules.append((rule, doc.line(f"$[{i}]"), not rule_errors))
    return rules, errors


def collect_rules(
    paths: Sequence[str | Path], *, allow_empty: bool = False
) -> tuple[RuleSet, list[RuleError], RuleSet]:
    """Every rule that loads from `paths`, every error of every file, and (for warnings)
    the rules that loaded and what decoded of the rules that did not; in one pass.

    No rule file, or no rule in them, is an error unless `allow_empty`: a daemon that
    correlates nothing because a path was wrong should say so, not start.
    """
    errors: list[RuleError] = []
    loaded: list[Rule] = []
    partial: list[Rule] = []
    origins: dict[str, Origin] = {}
    files = rule_files(paths)
    if not files and not allow_empty:
        where = ", ".join(map(str, paths)) or "(no path given)"
        msg = (
            f"no rule files in {where}: folders are searched recursively for *.yaml and "
            "*.yml (rule tests, *_test.yaml, are not rule files); --allow-empty to run without rules"
        )
        errors.append(RuleError(msg, file=where))
    for path in files:
        if not path.exists():
            errors.append(RuleError("no such file or folder", file=str(path)))
            continue
        rules, file_errors = _load_file(path)
        errors.extend(sorted(file_errors, key=lambda e: e.line or 0))
        for rule, line, ok in rules:
            if not ok:
                partial.append(rule)
                origins.setdefault(rule.name, Origin(file=str(path), line=line))
                continue
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
    names = {r.name for r in loaded} | {e.rule for e in errors if e.rule}
    for rule in (*loaded, *partial):
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
    if not errors and not loaded and files and not allow_empty:
        msg = f"0 rules in {len(files)} file(s); --allow-empty to run without rules"
        errors.append(RuleError(msg, file=", ".join(map(str, files))))
    names_ok = {r.name for r in loaded}
    ruleset = RuleSet(
        rules=tuple(loaded),
        origins={k: v for k, v in origins.items() if k in names_ok},
        files=tuple(str(f) for f in files),
    )
    checked = RuleSet(
        rules=(*loaded, *(r for r in partial if r.name not in names_ok)), origins=origins
    )
    return ruleset, errors, checked


def load_rules(paths: Sequence[str | Path], *, allow_empty: bool = False) -> RuleSet:
    """Load and check every rule file under `paths` (see `collect_rules`).

    Raises:
        RuleError: one error; `RuleErrors` (a RuleError) when there are several.
    """
    ruleset, errors, _ = collect_rules(paths, allow_empty=allow_empty)
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise RuleErrors(errors)
    return ruleset
