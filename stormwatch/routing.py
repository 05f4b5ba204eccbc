"""Which sinks an incident event goes to: a routing tree, as Alertmanager's.

```yaml
route:
  sink: [jsonl]                       # the root: where everything goes by default
  routes:
    - match: ['severity="P1"']        # matchers over the incident (below)
      sink: [oncall]
      continue: true                  # keep looking at the next siblings too
    - match: ['category="security"']
      sink: [soc-jira]
```

A node's children are tried in order; the first that matches takes the event (and,
with `continue: true`, its later siblings may too); when no child matches, the node's
own sinks do. Matchers see the incident as labels: `severity`, `category`, `priority`,
`rule`, `status`, `event` (opened, updated, resolved), and its group and shared alert
labels. Without a `route`, every sink gets every event.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from rules import Matcher, parse_matchers
from stormwatch.errors import ConfigError
from stormwatch.wire import IncidentEvent

__all__ = ["Route", "Router"]


class Route(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    sink: list[str] = []
    match: list[str] = []
    routes: list[Route] = []
    continue_: bool = msgspec.field(default=False, name="continue")


def _labels(event: IncidentEvent) -> dict[str, str]:
    inc = event.incident
    labels = dict(inc.labels)
    labels.update(inc.group)
    labels.update(
        {
            "severity": inc.severity,
            "category": inc.category,
            "priority": str(inc.priority),
            "rule": inc.rule,
            "status": inc.status,
            "event": event.event,
        }
    )
    return labels


class _Node:
    __slots__ = ("children", "cont", "matchers", "sinks")

    def __init__(self, route: Route, known: set[str], path: str) -> None:
        try:
            self.matchers: list[Matcher] = parse_matchers(route.match)
        except ValueError as err:
            raise ConfigError(str(err), field=f"{path}.match") from err
        unknown = [s for s in route.sink if s not in known]
        if unknown:
            msg = f"unknown sink {unknown[0]!r}; configured sinks: {', '.join(sorted(known))}"
            raise ConfigError(msg, field=f"{path}.sink")
        self.sinks = route.sink
        self.cont = route.continue_
        self.children = [_Node(r, known, f"{path}.routes[{i}]") for i, r in enumerate(route.routes)]

    def matches(self, labels: dict[str, str]) -> bool:
        return all(m.matches(labels) for m in self.matchers)

    def collect(self, labels: dict[str, str], out: dict[str, None]) -> None:
        matched = False
        for child in self.children:
            if child.matches(labels):
                child.collect(labels, out)
                matched = True
                if not child.cont:
                    break
        if not matched:
            out.update(dict.fromkeys(self.sinks))


class Router:
    """Compiled once per config; `sinks_for` runs per incident event."""

    def __init__(self, route: Route | None, sinks: Iterable[str]) -> None:
        self.all = list(sinks)
        self._root = _Node(route, set(self.all), "$.route") if route is not None else None

    def sinks_for(self, event: IncidentEvent) -> list[str]:
        if self._root is None:
            return self.all
        out: dict[str, None] = {}
        self._root.collect(_labels(event), out)
        return list(out)
