"""e2e check: an alert fires in Prometheus and Alertmanager routes it to an AlertmanagerConfig's receiver.

Usage: check_alert_routed.py ALERTMANAGERCONFIGS_JSON ALERT PROMETHEUS_URL ALERTMANAGER_URL [--timeout SECONDS]
ALERTMANAGERCONFIGS_JSON is `kubectl get alertmanagerconfigs -o json` of the alert's namespace. prometheus-operator
names an AlertmanagerConfig's receivers `<namespace>/<config name>/<receiver>` in the configuration it generates
(pkg/alertmanager/amcfg.go, makeNamespacedString; older releases joined them with `-`), and Alertmanager's API v2 lists, per alert, the receivers its
routing tree chose (GET /api/v2/alerts, `receivers[].name`): so routing is checked without any delivery.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.parse
import urllib.request

NULL_RECEIVER = "observatory-null"  # the catch-all receiver of Observatory's routes (compile/routing.py)


def expected_receivers(alertmanagerconfigs: dict) -> set[str]:
    return {separator.join((item["metadata"]["namespace"], item["metadata"]["name"], receiver["name"]))
            for item in alertmanagerconfigs.get("items", []) for receiver in item["spec"].get("receivers", [])
            if receiver["name"] != NULL_RECEIVER for separator in "/-"}


def firing(prometheus_alerts: dict, alert: str) -> bool:
    return any(a["labels"].get("alertname") == alert and a["state"] == "firing"
               for a in prometheus_alerts.get("data", {}).get("alerts", []))


def routed_to(alertmanager_alerts: list, alert: str) -> set[str]:
    return {r["name"] for a in alertmanager_alerts if a["labels"].get("alertname") == alert
            and a["status"]["state"] == "active" for r in a["receivers"]}


def _get(url: str) -> object:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.load(answer)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("alertmanagerconfigs_json")
    parser.add_argument("alert")
    parser.add_argument("prometheus_url")
    parser.add_argument("alertmanager_url")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--interval", type=float, default=3.0)
    args = parser.parse_args(argv)
    with open(args.alertmanagerconfigs_json) as f:
        expected = expected_receivers(json.load(f))
    if not expected:
        print("error: no AlertmanagerConfig with a receiver found; did the AlertRule reconcile?", file=sys.stderr)
        return 1
    query = urllib.parse.urlencode({"filter": f'alertname="{args.alert}"'})
    deadline = time.monotonic() + args.timeout
    state = "not firing in Prometheus"
    while time.monotonic() < deadline:
        try:
            if not firing(_get(f"{args.prometheus_url.rstrip('/')}/api/v1/alerts"), args.alert):
                state = "not firing in Prometheus"
            else:
                receivers = routed_to(_get(f"{args.alertmanager_url.rstrip('/')}/api/v2/alerts?{query}"), args.alert)
                if receivers & expected:
                    print(f"ok: {args.alert} fires and Alertmanager routes it to {', '.join(sorted(receivers & expected))}")
                    return 0
                state = f"in Alertmanager routed to {sorted(receivers) or 'nothing yet'}, not to {sorted(expected)}"
        except OSError as e:  # a port-forward may still be starting
            state = f"unreachable: {e}"
        time.sleep(args.interval)
    print(f"error: after {args.timeout:.0f}s {args.alert} is {state}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
