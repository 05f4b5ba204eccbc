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

`Dispatcher` applies the tree to a batch's events with two rules of its own, so one
incident stays one ticket from its opening to its close (which sinks have which open
incident is kept in memory; after a restart, the sinks' own records tell):
- a sink's first event of an incident is an `opened`: when an `updated` is the first
  event the tree gives a sink (the incident escalated into a route: P4 -> P1 with a
  `severity="P1"` route), the sink gets an `opened` with the incident as it is now;
- a sink that has an incident gets its resolution and its acknowledgement even when
  the tree would no longer send them there (a P1 that calmed down to P2 still closes
  its P1 ticket).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import msgspec

from rules import Matcher, parse_matchers
from stormwatch.errors import ConfigError
from stormwatch.wire import Incident, IncidentEvent

__all__ = ["Dispatcher", "Route", "Router"]


class Route(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    sink: list[str] = []
    match: list[str] = []
    routes: list[Route] = []
    continue_: bool = msgspec.field(default=False, name="continue")


def _labels(event: IncidentEvent) -> dict[str, str]:
    inc = event.incident
    labels = dict(inc.labels)  # group + shared alert labels: compact updates carry them too
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


class Dispatcher:
    """Routes incident events to sinks, remembering which sinks have which open incident
    (in memory: `seed` rebuilds it at start from the open incidents' current routes)."""

    def __init__(self, router: Router, full_view: Callable[[str], Incident | None]) -> None:
        self.router = router
        self._full_view = full_view
        self._following: dict[str, set[str]] = {}

    def seed(self, incidents: Iterable[Incident]) -> None:
        for inc in incidents:
            if inc.status == "open":
                probe = IncidentEvent(event="opened", at=0.0, reason="", sequence=0, incident=inc)
                self._following[inc.key] = set(self.router.sinks_for(probe))

    def following(self, key: str) -> set[str]:
        return set(self._following.get(key, ()))

    @staticmethod
    def closing(event: IncidentEvent) -> bool:
        """An event every sink that has the incident must get."""
        return event.event == "resolved" or "acknowledged" in event.reason.split(",")

    def route(
        self, events: Iterable[IncidentEvent], holding: dict[str, set[str]] | None = None
    ) -> dict[str, list[IncidentEvent]]:
        """`holding`: incident key -> sinks known (from their records) to have it, for
        what memory lost in a restart."""
        out: dict[str, list[IncidentEvent]] = {name: [] for name in self.router.all}
        for event in events:
            key = event.incident.key
            has = self._following.get(key, set()) | (holding or {}).get(key, set())
            targets = set(self.router.sinks_for(event))
            if self.closing(event):
                targets |= has
            for name in self.router.all:
                if name not in targets:
                    continue
                if event.event == "updated" and name not in has:
                    out[name].append(self._opened_late(event))
                else:
                    out[name].append(event)
            if event.event == "resolved":
                self._following.pop(key, None)
            else:
                self._following[key] = has | targets
        return out

    def _opened_late(self, event: IncidentEvent) -> IncidentEvent:
        inc = event.incident
        if not inc.alerts:  # a compact update: the sink needs the whole incident
            inc = self._full_view(inc.key) or inc
        return msgspec.structs.replace(
            event,
            event="opened",
            incident=inc,
            changes=None,
            reason=f"route matched: {event.reason}",
        )
