"""Small HTTP helpers on the standard library (the local stack talks only to 127.0.0.1)."""

from __future__ import annotations

import json
import socket
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any


def get_json(url: str, params: Mapping[str, Any] | None = None, timeout: float = 10) -> Any:
    if params:
        url += "?" + urllib.parse.urlencode(params, doseq=True)
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.load(response)


def is_up(url: str, timeout: float = 2) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return 200 <= response.status < 300
    except (OSError, ValueError):
        return False


def free_port() -> int:
    """A port nothing listens on right now (the caller binds it soon after)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def prometheus_query(base_url: str, query: str, time: float | None = None) -> list[dict[str, Any]]:
    """Instant query; the result vector (raises on a Prometheus error)."""
    params = {"query": query, **({"time": time} if time is not None else {})}
    body = get_json(f"{base_url.rstrip('/')}/api/v1/query", params)
    if body.get("status") != "success":
        raise RuntimeError(f"Prometheus query failed: {body.get('error')}")
    return body["data"]["result"]


def prometheus_range(base_url: str, query: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
    """Range query; the result matrix (raises on a Prometheus error)."""
    body = get_json(f"{base_url.rstrip('/')}/api/v1/query_range", {"query": query, "start": start, "end": end, "step": step})
    if body.get("status") != "success":
        raise RuntimeError(f"Prometheus query failed: {body.get('error')}")
    return body["data"]["result"]
