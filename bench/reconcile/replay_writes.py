"""The physical floor: replay recorded API writes as raw HTTP requests, as fast as one process can.

Run by bench_reconcile.py in a subprocess (so that, like the operator, it does not share the
emulator's interpreter): replay_writes.py SERVER WRITES.json THREADS TOKEN -> prints the seconds taken.
TOKEN is the operator's bearer token, so the replay is authorized as the operator's writes were.
"""

from __future__ import annotations

import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import urllib3


def main() -> None:
    server, path, threads, token = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    with open(path) as f:
        writes = json.load(f)
    http = urllib3.PoolManager(maxsize=threads)

    def send(write: dict) -> None:
        response = http.request(write["method"], server + write["path"], body=write["body"],
                                headers={"Authorization": f"Bearer {token}",
                                         **({"Content-Type": write["contentType"]} if write["contentType"] else {})})
        if response.status >= 400:
            raise RuntimeError(f"{write['method']} {write['path']}: {response.status} {response.data[:300]!r}")

    # Writes to one object keep their order (a create before its replace); objects spread over threads.
    lanes: dict[str, list[dict]] = {}
    for write in writes:
        lanes.setdefault(object_of(write), []).append(write)

    def send_lane(lane: list[dict]) -> None:
        for write in lane:
            try:
                send(write)
            except RuntimeError as e:
                raise RuntimeError(f"{e}; lane: {[(w['method'], w['path']) for w in lane]}") from None

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(send_lane, lanes.values()))
    print(f"{time.perf_counter() - started:.4f}")


def object_of(write: dict) -> str:
    """The object a write is about: its URL, or for a create the collection URL and the new name."""
    path = write["path"].split("?")[0]
    if write["method"] == "POST":
        name = (json.loads(write["body"]).get("metadata") or {}).get("name") if write["body"] else None
        return f"{path}/{name}" if name else f"{path}#{id(write)}"
    return path.removesuffix("/status")


if __name__ == "__main__":
    main()
