"""A real Prometheus on 127.0.0.1: start, reload, query, stop."""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import yaml


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(path: str, rule_file: str | None, evaluation_interval: str, exporter_port: int | None,
                 scrape_interval: str) -> None:
    config: dict = {"global": {"scrape_interval": scrape_interval, "evaluation_interval": evaluation_interval}}
    if rule_file:
        config["rule_files"] = [rule_file]
    if exporter_port:
        config["scrape_configs"] = [{
            "job_name": "synthetic",
            "honor_labels": True,
            "static_configs": [{"targets": [f"127.0.0.1:{exporter_port}"]}],
            # The history has no job/instance labels; drop them so scrapes continue the same series.
            "metric_relabel_configs": [{"action": "labeldrop", "regex": "job|instance"}],
        }]
    with open(path, "w") as f:
        yaml.safe_dump(config, f, sort_keys=False)


class Prometheus:
    """`with Prometheus(...) as p:` runs the server and always stops it."""

    def __init__(self, data_dir: str, config_file: str, log_file: str, max_block: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = ["prometheus", f"--config.file={config_file}", f"--storage.tsdb.path={data_dir}",
                     "--storage.tsdb.retention.time=10y",
                     # Keep the history's blocks as they are: no compaction into longer blocks mid-run.
                     f"--storage.tsdb.max-block-duration={max_block}",
                     f"--web.listen-address=127.0.0.1:{self.port}", "--web.enable-lifecycle",
                     "--web.enable-admin-api",
                     # The recorded history's catch-up goes into the head, where production has its last hours.
                     "--web.enable-remote-write-receiver",
                     # The backfill's range queries over days of tiled windows may pass the default 2 minutes.
                     "--query.timeout=5m"]
        self.log_file = log_file
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "Prometheus":
        log = open(self.log_file, "a")
        self.proc = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        try:
            self._wait_ready(120)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited with {self.proc.returncode}; see {self.log_file}")
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"prometheus not ready after {timeout}s; see {self.log_file}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def get(self, path: str, **params: str) -> dict:
        url = self.url + path + ("?" + urllib.parse.urlencode(params) if params else "")
        for attempt in range(3):
            try:
                with urllib.request.urlopen(url, timeout=360) as r:
                    body = json.load(r)
                break
            except urllib.error.HTTPError as e:
                # 503: a query timed out (or the TSDB was reloading blocks); one that fails thrice is a failure.
                if e.code != 503 or attempt == 2:
                    raise
                time.sleep(5 * (attempt + 1))
        if body.get("status") != "success":
            raise RuntimeError(f"{path}: {body}")
        return body["data"]

    def metrics(self) -> str:
        with urllib.request.urlopen(self.url + "/metrics", timeout=30) as r:
            return r.read().decode()

    def reload(self) -> None:
        req = urllib.request.Request(self.url + "/-/reload", method="POST")
        with urllib.request.urlopen(req, timeout=120) as r:
            if r.status != 200:
                raise RuntimeError(f"reload failed: {r.status}")

    def delete_series(self, selector: str) -> None:
        """Delete the series' samples and compact the deletion out of the blocks. The head keeps the
        series in its index until it is compacted (tombstones hide their samples): selectors still
        match them there, which costs the reader a little more, never less."""
        for path, params in (("delete_series", {"match[]": selector}), ("clean_tombstones", {})):
            url = f"{self.url}/api/v1/admin/tsdb/{path}" + ("?" + urllib.parse.urlencode(params) if params else "")
            with urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=600) as r:
                if r.status not in (200, 204):
                    raise RuntimeError(f"{path} failed: {r.status}")

    def query(self, expr: str) -> list:
        return self.get("/api/v1/query", query=expr)["result"]

    def remote_write(self, series: list[tuple[dict[str, str], list[tuple[int, float]]]], batch: int = 50_000) -> None:
        """Append samples to the head, as a remote-write client would: (labels with __name__,
        [(unix seconds, value)]) each, a series' samples in time order and newer than its last."""
        pending: list[bytes] = []
        size = 0
        for labels, points in series:
            pending.append(_time_series(labels, points))
            size += len(points)
            if size >= batch:
                self._post_write(pending)
                pending, size = [], 0
        if pending:
            self._post_write(pending)

    def _post_write(self, encoded: list[bytes]) -> None:
        body = _snappy_block(b"".join(_field(1, ts) for ts in encoded))
        req = urllib.request.Request(self.url + "/api/v1/write", data=body, method="POST", headers={
            "Content-Encoding": "snappy", "Content-Type": "application/x-protobuf",
            "X-Prometheus-Remote-Write-Version": "0.1.0"})
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                r.read()
        except urllib.error.HTTPError as e:
            # 400 names the first sample the TSDB refused (out of order, out of bounds): nothing of the request is kept.
            raise RuntimeError(f"remote write refused: {e.code} {e.read().decode(errors='replace').strip()}") from e


# The remote-write request (prompb.WriteRequest, Prometheus' remote-write spec 1.0) encoded by hand:
# four messages of strings, doubles and varints need no protobuf runtime.
def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _time_series(labels: dict[str, str], points: list[tuple[int, float]]) -> bytes:
    encoded = [_field(1, _field(1, k.encode()) + _field(2, v.encode())) for k, v in sorted(labels.items())]
    for t, v in points:
        # Sample: 1 value (double, wire type 1), 2 timestamp in ms (int64 varint).
        encoded.append(_field(2, b"\x09" + struct.pack("<d", v) + b"\x10" + _varint(int(t * 1000))))
    return b"".join(encoded)


def _snappy_block(data: bytes) -> bytes:
    """Snappy's block format with literals only (a valid stream, uncompressed): the length, then
    literal elements of up to 64 KiB, each a tag of 61 << 2 and its length - 1 in two bytes."""
    out = [_varint(len(data))]
    for i in range(0, len(data), 1 << 16):
        chunk = data[i:i + (1 << 16)]
        out.append(bytes([61 << 2]) + struct.pack("<H", len(chunk) - 1) + chunk)
    return b"".join(out)


def overlapping_blocks(data_dir: str) -> int:
    """Blocks whose time range overlaps another's (the TSDB compacts those in the background)."""
    ranges = []
    for name in os.listdir(data_dir):
        meta = os.path.join(data_dir, name, "meta.json")
        if os.path.exists(meta):
            with open(meta) as f:
                m = json.load(f)
            ranges.append((m["minTime"], m["maxTime"]))
    ranges.sort()
    overlaps, reach = 0, None
    for low, high in ranges:
        if reach is not None and low < reach:
            overlaps += 1
        reach = high if reach is None else max(reach, high)
    return overlaps
