#!/usr/bin/env bash
# `make bench-slo-eval`: SLO rule evaluation cost and alerting equivalence, Observatory vs Sloth-structured rules.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
command -v prometheus >/dev/null && command -v promtool >/dev/null || {
    echo "needs prometheus and promtool 2.x on PATH (apt-get install -y prometheus)" >&2; exit 1; }
exec .venv/bin/python -m bench.slo_eval "$@"
