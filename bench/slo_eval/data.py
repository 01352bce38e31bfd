"""The synthetic history as TSDB blocks: OpenMetrics per time chunk, imported with promtool.

Each chunk covers exactly one aligned block range, so promtool parses its file once and the blocks
do not overlap (overlapping blocks would make Prometheus compact them while we measure).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import asdict, dataclass

from . import synth

BLOCK_SECONDS = 18 * 3600  # one of the TSDB's compaction ranges (2h * 3^2)
BLOCK_FLAG = "18h"


@dataclass(frozen=True)
class Dataset:
    services: int
    pods: int
    step: int  # scrape interval of the history, seconds
    origin: int  # first sample
    end: int  # last sample is before this

    @property
    def series(self) -> int:
        return synth.series_count(self.services, self.pods)

    @property
    def samples(self) -> int:
        return self.series * ((self.end - self.origin) // self.step)


def _chunk(args: tuple[Dataset, int, int, str, str]) -> int:
    ds, start, end, blocks_dir, workdir = args
    path = os.path.join(workdir, f"chunk-{start}.om")
    count = synth.write_openmetrics(path, ds.services, ds.pods, ds.origin, ds.step, start, end)
    import_openmetrics([path], blocks_dir, 1)
    return count


def build(ds: Dataset, blocks_dir: str, workdir: str, workers: int = 2) -> dict:
    """Write the history of `ds` as blocks into `blocks_dir` (created empty)."""
    shutil.rmtree(blocks_dir, ignore_errors=True)
    os.makedirs(blocks_dir)
    first = ds.origin - ds.origin % BLOCK_SECONDS
    chunks = [(ds, max(s, ds.origin), min(s + BLOCK_SECONDS, ds.end), blocks_dir, workdir)
              for s in range(first, ds.end, BLOCK_SECONDS)]
    began = time.monotonic()
    with ProcessPoolExecutor(workers) as pool:
        done = list(pool.map(_chunk, chunks))
    return {**asdict(ds), "samples": sum(done), "series": ds.series,
            "build_seconds": round(time.monotonic() - began, 1)}


def import_openmetrics(paths: list[str], blocks_dir: str, workers: int = 2) -> None:
    """Turn OpenMetrics files (each within one aligned block range) into blocks, then drop them."""
    def one(path: str) -> None:
        subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", "--quiet",
                        f"--max-block-duration={BLOCK_FLAG}", path, blocks_dir], check=True)
        os.remove(path)

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, paths))
