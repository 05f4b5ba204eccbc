"""Write the seeded workload as an alert archive for `stormwatch replay`: `Alert` lines
with their arrival times (what `ingest.archive` writes), or Alertmanager API objects.

python -m bench.archive 1000000 > /tmp/alerts.jsonl             # Alert lines
python -m bench.archive 1000000 --alertmanager > /tmp/am.jsonl  # Alertmanager API objects
"""

from __future__ import annotations

import argparse
import sys

import msgspec
import orjson

from bench.workload import Workload
from stormwatch.wire import iso8601


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("n", type=int)
    p.add_argument(
        "--alertmanager",
        action="store_true",
        help="Alertmanager API objects instead of Alert lines",
    )
    p.add_argument("--seed", type=int, default=42)
    args = p.parse_args()
    out = sys.stdout.buffer
    enc = msgspec.json.Encoder()
    for request in Workload(seed=args.seed).requests(args.n):
        for a in request:
            if args.alertmanager:
                item: dict[str, object] = {
                    "labels": a.labels,
                    "annotations": a.annotations,
                    "startsAt": iso8601(a.starts_at),
                }
                if a.status == "resolved":
                    item["status"] = "resolved"
                    item["endsAt"] = iso8601(a.ends_at or a.received_at)
                out.write(orjson.dumps(item) + b"\n")
            else:
                out.write(enc.encode(a) + b"\n")


if __name__ == "__main__":
    main()
