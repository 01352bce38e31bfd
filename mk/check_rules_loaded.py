"""e2e check: every rule group of Observatory's PrometheusRules is loaded by Prometheus.

Usage: check_rules_loaded.py PROMETHEUSRULES_JSON PROMETHEUS_URL [--timeout SECONDS]
PROMETHEUSRULES_JSON is `kubectl get prometheusrules -o json` output. Prometheus picks rules up
only after prometheus-operator regenerates its rule files and the config reloader fires, so the
check polls /api/v1/rules until every group shows up or the timeout passes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.request


def expected_groups(prometheusrules: dict) -> set[str]:
    return {g["name"] for item in prometheusrules.get("items", []) for g in item["spec"].get("groups", [])}


def loaded_groups(rules_api_response: dict) -> set[str]:
    if rules_api_response.get("status") != "success":
        raise ValueError(f"Prometheus /api/v1/rules answered {rules_api_response.get('status')!r}")
    return {g["name"] for g in rules_api_response["data"]["groups"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prometheusrules_json")
    parser.add_argument("prometheus_url")
    parser.add_argument("--timeout", type=float, default=180.0)
    parser.add_argument("--interval", type=float, default=3.0)
    args = parser.parse_args(argv)
    with open(args.prometheusrules_json) as f:
        expected = expected_groups(json.load(f))
    if not expected:
        print("error: no PrometheusRule managed by observatory exists; did apply-examples run?", file=sys.stderr)
        return 1
    deadline = time.monotonic() + args.timeout
    missing = expected
    while True:
        try:
            with urllib.request.urlopen(f"{args.prometheus_url.rstrip('/')}/api/v1/rules", timeout=10) as rsp:
                missing = expected - loaded_groups(json.load(rsp))
        except OSError as e:  # the port-forward may still be starting
            print(f"waiting for Prometheus: {e}", file=sys.stderr)
        if not missing:
            print(f"ok: all {len(expected)} rule group(s) are loaded by Prometheus")
            return 0
        if time.monotonic() > deadline:
            print(f"error: rule group(s) not loaded by Prometheus after {args.timeout:.0f}s: "
                  f"{', '.join(sorted(missing))} (check the Prometheus ruleSelector and "
                  "ruleNamespaceSelector against the PrometheusRules' labels)", file=sys.stderr)
            return 1
        time.sleep(args.interval)


if __name__ == "__main__":
    sys.exit(main())
