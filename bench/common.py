"""Shared plumbing for the benchmarks: cached data, the bench dbt project, isolated workers.

Every timed method runs in its own Python process (``python bench/<script>.py --worker NAME``)
so peak RSS is per method and nothing warms anything else, ``--repeat`` times (the median
counts); the parent collects ``{"seconds": s, "rss_mb": m}`` from each worker's last stdout
line and checks the outputs (written to parquet after the clock stops) agree.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
CACHE = BENCH / ".cache"


def cached(path: Path, make) -> Path:
    """``make(tmp_path)`` once; later runs reuse ``path``."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp" + path.suffix)
        make(tmp)
        tmp.rename(path)
    return path


def build_views(cache: Path, select: str) -> Path:
    """`dbt deps` + `dbt build --select SELECT` of bench/dbt_project (views over the cached
    parquet)."""
    db = cache / "bench.duckdb"
    env = {
        **os.environ,
        "DBT_PROFILES_DIR": str(BENCH / "dbt_project"),
        "BENCH_DUCKDB": str(db),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_LOG_PATH": str(cache / "logs"),
    }
    dbt = str(Path(sys.executable).parent / "dbt")
    for args in (
        ["deps"],
        [
            "build",
            "--select",
            select,
            "--target-path",
            str(cache / "target"),
            "--vars",
            json.dumps({"bench_dir": str(cache)}),
        ],
    ):
        proc = subprocess.run(
            [dbt, *args], cwd=BENCH / "dbt_project", env=env, capture_output=True, text=True
        )
        if proc.returncode != 0:
            raise SystemExit(f"dbt {args[0]} failed:\n{proc.stdout[-3000:]}")
    return db


def run_worker(script: Path, name: str, *args: str, repeat: int = 1) -> dict:
    """Run one timed method ``repeat`` times, each in a fresh process; the median run's seconds
    and the largest peak RSS (a 2-core machine is noisy: one run can be off by 20%)."""
    runs = []
    for _ in range(repeat):
        proc = subprocess.run(
            [sys.executable, str(script), "--worker", name, *args], capture_output=True, text=True
        )
        if proc.returncode != 0:
            raise SystemExit(f"worker {name} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    runs.sort(key=lambda r: r["seconds"])
    return {**runs[len(runs) // 2], "rss_mb": max(r["rss_mb"] for r in runs)}


class Clock:
    """``with Clock() as c: ...`` then ``c.report()`` prints the worker's JSON line."""

    def __enter__(self) -> "Clock":
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.start

    def report(self, **extra) -> None:
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps({"seconds": self.seconds, "rss_mb": rss_mb, **extra}))


def line(name: str, value) -> None:
    """One figure, `name: value`."""
    if isinstance(value, float):
        value = f"{value:.3f}"
    print(f"{name}: {value}", flush=True)
