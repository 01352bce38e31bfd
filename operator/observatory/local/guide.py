"""Where things are on a running local stack: the UIs that exist, the APIs where they do not, the
logs, the notifications the receivers were sent and the dashboards to import.

Debian's builds (what `make setup` installs) serve no web application for Alertmanager (its root
page says so and points to amtool and the HTTP API), and Prometheus only its classic UI: `/alerts`
and `/rules` answer 404, `/classic/alerts` and `/classic/rules` do (tests/local/test_local_guide.py
checks every address printed here against the real processes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .stack import StackInfo

NOTIFICATIONS_FILE = Path("receiver") / "notifications.jsonl"
DASHBOARDS_DIR = "dashboards"


@dataclass(frozen=True)
class Place:
    what: str
    where: str  # a URL or a path
    note: str = ""


def places(info: StackInfo) -> list[Place]:
    urls, data = info.urls, Path(info.data_dir)
    found = []
    if "phoenix" in urls:
        found.append(Place("Phoenix", urls["phoenix"], "traces and spans per project, web UI"))
    if "prometheus" in urls:
        prometheus = urls["prometheus"]
        found += [Place("Prometheus", f"{prometheus}/classic/graph", "queries (Debian's build has only the classic UI)"),
                  Place("alerts", f"{prometheus}/classic/alerts", "pending and firing alerts (/alerts answers 404 here)"),
                  Place("rules", f"{prometheus}/classic/rules", "every loaded rule and its last evaluation")]
    if "alertmanager" in urls:
        alertmanager = urls["alertmanager"]
        found.append(Place("Alertmanager", f"{alertmanager}/api/v2/alerts",
                           f"no web UI in Debian's build: its HTTP API, or amtool --alertmanager.url={alertmanager}"))
    found.append(Place("notifications", f"{urls['receiver']}/notifications",
                       f"what the receivers were sent, also appended to {data / NOTIFICATIONS_FILE}"))
    found += [Place(f"{name} log", path) for name, path in sorted(info.logs.items())]
    if info.dashboards:
        found.append(Place("dashboards", str(data / DASHBOARDS_DIR),
                           "Grafana dashboards as JSON, to import into a Grafana with this Prometheus as data source"))
    return found


def print_places(info: StackInfo, out: Callable[[str], None], indent: str = "  ") -> None:
    for place in places(info):
        out(f"{indent}{place.what:<17} {place.where}" + (f"  — {place.note}" if place.note else ""))
