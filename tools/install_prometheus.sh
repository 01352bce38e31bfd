#!/usr/bin/env bash
# Ensure promtool, prometheus, alertmanager and amtool are on PATH, from Debian's packages.
# Not version-pinned: Debian drops superseded point releases, so a pin would break fresh machines;
# tests/test_tooling.py asserts the major versions instead.
set -euo pipefail

have_all() {
    command -v promtool && command -v prometheus && command -v amtool &&
        command -v prometheus-alertmanager
} >/dev/null

if ! have_all; then
    sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || { echo "install_prometheus: need root or sudo for apt-get" >&2; exit 1; }
        sudo=(sudo)
    fi
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -q </dev/null
    # The packages' postinst may try to start their services, which fails without an init
    # system; that is harmless here, so its exit code is ignored and the binaries checked below.
    "${sudo[@]}" apt-get install -y -q --no-install-recommends \
        prometheus prometheus-alertmanager </dev/null || true
fi

have_all || { echo "install_prometheus: promtool/prometheus/alertmanager/amtool still missing" >&2; exit 1; }
promtool --version 2>&1 | head -n1
