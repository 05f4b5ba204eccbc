"""Alertmanager's label matcher syntax: `name="value"`, `!=`, `=~` and `!~`.

Regexes are anchored at both ends, as in Alertmanager (`=~"crit.*"` matches the whole
value). A missing label matches as the empty string, also as in Alertmanager, so
`team!=""` means "has a team". Label names are UTF-8, as in Alertmanager 0.27+: a name
other than `[a-zA-Z_][a-zA-Z0-9_]*` is written in double quotes (`"service.name"="checkout"`);
an unquoted name may hold anything but spaces and `{}!=~,"'` (`service.name="checkout"`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from rules.labels import is_classic_name, quote, unquote

__all__ = ["Matcher", "MatcherError", "Op", "parse_matcher", "parse_matchers"]

Op: TypeAlias = Literal["=", "!=", "=~", "!~"]

_MATCHER = re.compile(
    r"""^\s*(?:"(?P<qname>(?:[^"\\]|\\.)*)"|(?P<name>[^\s{}!=~,"'`\\]+))\s*
        (?P<op>=~|!~|!=|=)\s*
        (?:"(?P<quoted>(?:[^"\\]|\\.)*)"|(?P<bare>[^\s"',{}]*))\s*$""",
    re.VERBOSE,
)


class MatcherError(ValueError):
    """A matcher string could not be parsed or its regex does not compile."""


@dataclass(frozen=True, slots=True)
class Matcher:
    """One compiled matcher; the regex is compiled once, when the rules load."""

    name: str
    op: Op
    value: str
    _regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.op in ("=~", "!~"):
            try:
                # The bare value first: an error's position is then the author's own
                # (inside the anchoring wrapper it would count the wrapper too).
                re.compile(self.value)
                compiled = re.compile(f"(?:{self.value})\\Z")
            except re.error as err:
                raise MatcherError(_regex_message(self.value, err)) from err
            object.__setattr__(self, "_regex", compiled)

    @property
    def is_equality(self) -> bool:
        return self.op == "="

    def matches(self, labels: dict[str, str]) -> bool:
        value = labels.get(self.name, "")
        if self.op == "=":
            return value == self.value
        if self.op == "!=":
            return value != self.value
        assert self._regex is not None
        hit = self._regex.match(value) is not None
        return hit if self.op == "=~" else not hit

    def __str__(self) -> str:
        name = self.name if is_classic_name(self.name) else quote(self.name)
        return f"{name}{self.op}{quote(self.value)}"


def _regex_message(value: str, err: re.error) -> str:
    msg = f"invalid regex {value!r}: {err.msg}"
    if err.pos is None:
        return msg
    return (
        f"{msg} at position {err.pos} (after {value[: err.pos]!r})"
        if err.pos
        else f"{msg} at position 0"
    )


def parse_matcher(text: str) -> Matcher:
    """Parse one matcher, e.g. `severity=~"critical|warning"`.

    Raises:
        MatcherError: the text is not a matcher, or its regex does not compile.
    """
    m = _MATCHER.match(text)
    if m is None:
        msg = f'invalid matcher {text!r}: expected name, one of = != =~ !~, and a value, e.g. severity="critical"'
        raise MatcherError(msg)
    qname, quoted = m.group("qname"), m.group("quoted")
    name = unquote(qname) if qname is not None else m.group("name")
    if not name:
        msg = f"invalid matcher {text!r}: the label name is empty"
        raise MatcherError(msg)
    value = unquote(quoted) if quoted is not None else m.group("bare")
    return Matcher(name=name, op=m.group("op"), value=value)  # type: ignore[arg-type]


def _split_braces(text: str) -> list[str]:
    """Split `{a="x,y", b=~"z"}` on the commas outside quotes."""
    body = text.strip()[1:-1]
    parts, buf, in_quote, escaped = [], [], False, False
    for ch in body:
        if escaped:
            buf.append(ch)
            escaped = False
        elif ch == "\\":
            buf.append(ch)
            escaped = True
        elif ch == '"':
            buf.append(ch)
            in_quote = not in_quote
        elif ch == "," and not in_quote:
            parts.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
    if "".join(buf).strip():
        parts.append("".join(buf))
    return parts


def parse_matchers(items: list[str]) -> list[Matcher]:
    """Parse a rule's `match` list; an item may also be a `{a="b", c=~"d"}` selector."""
    out: list[Matcher] = []
    for item in items:
        stripped = item.strip()
        if stripped.startswith("{") and stripped.endswith("}"):
            out.extend(parse_matcher(p) for p in _split_braces(stripped))
        else:
            out.append(parse_matcher(stripped))
    return out
