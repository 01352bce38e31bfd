"""Synthetic request counters: history as OpenMetrics (for promtool) and a live exporter.

Every service has a request rate with a daily cycle and two short wiggles (so that sample deltas
vary like real traffic and chunks do not compress unrealistically well) and an error ratio that is
a small background burn plus incidents of different burn rates. Incidents are drawn per absolute
UTC day, so the same service behaves the same whichever "now" the data is generated for.

Counters are integrals of those rates on the scrape grid; the exporter continues the very same
counters past the generated history, so Prometheus sees one continuous series per label set.
"""

from __future__ import annotations

import math
import random
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NAMESPACE = "bench"
METRIC = "http_requests_total"
BUDGET = 0.001  # every synthetic SLO is 99.9 %
ROUTES = (("/api/items", 0.7), ("/api/orders", 0.3))
INCIDENT_MINUTES = (5, 15, 30, 60, 180, 480, 1200)
INCIDENT_BURNS = (0.5, 2.0, 4.0, 8.0, 16.0, 30.0)
DAY = 86400


def service_name(index: int) -> str:
    return f"svc-{index}"


@dataclass
class Service:
    """Rates of one service and its counters accumulated on the scrape grid from `origin`."""

    index: int
    origin: int
    step: int
    pods: int
    rate: float = 0.0
    diurnal: float = 0.0
    phases: tuple[float, float, float] = (0.0, 0.0, 0.0)
    background_burn: float = 0.0
    client_errors: float = 0.0
    # cumulative (requests, errors) at origin + k * step
    totals: list[float] = field(default_factory=lambda: [0.0])
    errors: list[float] = field(default_factory=lambda: [0.0])

    def __post_init__(self) -> None:
        rng = random.Random(f"service:{self.index}")
        self.rate = math.exp(rng.uniform(math.log(2), math.log(200)))
        self.diurnal = rng.uniform(0.2, 0.6)
        self.phases = (rng.uniform(0, 2 * math.pi), rng.uniform(0, 2 * math.pi), rng.uniform(0, 2 * math.pi))
        self.background_burn = rng.uniform(0.05, 0.6)
        self.client_errors = rng.uniform(0.01, 0.05)
        self._incidents: dict[int, list[tuple[int, int, float]]] = {}

    def requests_per_second(self, t: float) -> float:
        p0, p1, p2 = self.phases
        return self.rate * (1 + self.diurnal * math.sin(2 * math.pi * t / DAY + p0)) * (
            1 + 0.05 * math.sin(2 * math.pi * t / 437 + p1) + 0.05 * math.sin(2 * math.pi * t / 3181 + p2))

    def incidents(self, day: int) -> list[tuple[int, int, float]]:
        if day not in self._incidents:
            rng = random.Random(f"incidents:{self.index}:{day}")
            found = []
            for _ in range(rng.choice((0, 0, 1, 1, 2))):
                start = day * DAY + rng.randrange(0, DAY, 60)
                found.append((start, start + 60 * rng.choice(INCIDENT_MINUTES), rng.choice(INCIDENT_BURNS)))
            self._incidents[day] = found
        return self._incidents[day]

    def burn(self, t: float) -> float:
        """Error ratio at `t` as a multiple of the error budget."""
        day = int(t // DAY)
        active = [b for d in (day - 1, day) for s, e, b in self.incidents(d) if s <= t < e]
        return max([self.background_burn, *active])

    def _extend(self, k: int) -> None:
        while len(self.totals) <= k:
            t = self.origin + (len(self.totals) - 1) * self.step
            requests = self.requests_per_second(t + self.step / 2) * self.step
            self.totals.append(self.totals[-1] + requests)
            self.errors.append(self.errors[-1] + requests * min(1.0, BUDGET * self.burn(t)))

    def cumulative(self, t: float) -> tuple[float, float]:
        """(requests, errors) since `origin`, interpolated inside a grid step."""
        k = int((t - self.origin) // self.step)
        self._extend(k + 1)
        frac = (t - self.origin - k * self.step) / self.step
        total = self.totals[k] + frac * (self.totals[k + 1] - self.totals[k])
        errors = self.errors[k] + frac * (self.errors[k + 1] - self.errors[k])
        return total, errors

    def series(self) -> list[tuple[str, float, str]]:
        """(label text, share of requests, kind) per series; kind is ok, client or error."""
        name = service_name(self.index)
        out = []
        for route, weight in ROUTES:
            for pod in range(self.pods):
                for code, kind in (("200", "ok"), ("404", "client"), ("500", "error")):
                    labels = (f'namespace="{NAMESPACE}",service="{name}",route="{route}",'
                              f'pod="{name}-{pod}",code="{code}"')
                    out.append((labels, weight / self.pods, kind))
        return out

    def values(self, total: float, errors: float) -> dict[str, float]:
        client = total * self.client_errors
        return {"ok": total - errors - client, "client": client, "error": errors}


def series_count(services: int, pods: int) -> int:
    return services * len(ROUTES) * pods * 3


def write_openmetrics(path: str, services: int, pods: int, origin: int, step: int, start: int, end: int) -> int:
    """Samples at origin + k*step in [start, end) of every series, as an OpenMetrics file; returns the count."""
    first = origin + max(0, -(-(start - origin) // step)) * step
    stamps = list(range(first, end, step))
    count = 0
    with open(path, "w") as out:
        out.write("# TYPE http_requests counter\n")
        for index in range(1, services + 1):
            svc = Service(index, origin, step, pods)
            points = [svc.values(*svc.cumulative(t)) for t in stamps]
            for labels, share, kind in svc.series():
                prefix = f"{METRIC}{{{labels}}} "
                # Counters are whole numbers of requests, as real ones are.
                out.write("".join(f"{prefix}{int(p[kind] * share)} {t}\n" for p, t in zip(points, stamps)))
                count += len(stamps)
        out.write("# EOF\n")
    return count


class Exporter:
    """Serves the counters' current values on 127.0.0.1 so that Prometheus continues the history.

    It serves from construction on; `close()` stops it."""

    def __init__(self, services: int, pods: int, origin: int, step: int) -> None:
        self.models = [Service(i, origin, step, pods) for i in range(1, services + 1)]
        self.lock = threading.Lock()
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                body = exporter.render().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def render(self) -> str:
        t = time.time()
        lines = ["# TYPE http_requests_total counter"]
        with self.lock:
            for svc in self.models:
                point = svc.values(*svc.cumulative(t))
                lines.extend(f"{METRIC}{{{labels}}} {int(point[kind] * share)}" for labels, share, kind in svc.series())
        return "\n".join(lines) + "\n"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
