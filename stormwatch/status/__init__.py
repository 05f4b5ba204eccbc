"""The status page: server-rendered HTML for the people who run stormwatch.

`GET /` lists open and recent incidents; `/status/incidents/{key}` shows one with its
alerts, timeline and explanation; `/status/silences` lists, creates and expires
silences; `/status/health` shows intake per source and each sink's health;
`/status/rules` the rules loaded and the last reload. Works with JavaScript off
(plain forms, POST then redirect) and reloads itself with `<meta http-equiv=refresh>`.
"""

from stormwatch.status.routes import status_routes

__all__ = ["status_routes"]
