"""How grading scales on Dask: the shipped buggy implementations graded as a class, on a LocalCluster
of 2 workers and of 1 (and on the thread pool with ``--thread-pool``), in one run.
First, what starting a LocalCluster costs against the thread pool.

Run as ``env -u CI python docs/dask_grading_timing.py [--limit N] [--ops OPS] [--max-examples N]``.

The class has one folder per plant of ``impls/buggy`` (``<plant>/submission.py`` importing it).
Each configuration grades it with ``convcheck grade --cluster local:W`` (a new process, as a user
types it), timed from start to exit. Printed per configuration: the wall time, the sum of the
children's own run times (``grade.json``'s ``seconds``), and the per-submission engine
overhead, ``(W * wall - sum of child seconds) / submissions``: the worker time each submission
costs beyond its child (cluster start-up, scheduling, judging, publishing, and workers idle at
the end). Then the speed-up of 2 workers over 1, and the load average before and after, since
the machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from convcheck.impls.buggy import BUGGY


def make_class(folder: Path, limit: int | None) -> list[str]:
    """One folder per buggy plant (the first ``limit``, sorted), each with a ``submission.py``."""
    plants = sorted(BUGGY)[:limit]
    for plant in plants:
        (folder / plant).mkdir(parents=True)
        (folder / plant / "submission.py").write_text(f"from convcheck.impls.buggy.{plant} import *\n")
    return plants


def grade(subs: Path, out: Path, where: list[str], options: list[str]) -> tuple[float, float]:
    """``(wall seconds, sum of the children's seconds)`` of one ``convcheck grade`` run."""
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "convcheck", "grade", str(subs), "--report", str(out), *where, *options]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    child = sum(json.loads(p.read_text())["seconds"] for p in out.glob("*/grade.json"))
    return wall, child


def startup_overhead(workers: int = 2) -> tuple[float, float]:
    """``(thread pool, LocalCluster)`` seconds to start ``workers`` workers, run one task, and stop."""
    from concurrent.futures import ThreadPoolExecutor

    from convcheck.grading.cluster import ClusterSpec, open_cluster

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pool.submit(os.getpid).result()
    threads = time.perf_counter() - start
    start = time.perf_counter()
    with open_cluster(ClusterSpec(local_workers=workers), retries=1) as client:
        assert client is not None
        client.submit(os.getpid).result()
    return threads, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="grade only the first N plants")
    parser.add_argument("--ops", default="conv2d,max_pool2d,avg_pool2d")
    parser.add_argument("--max-examples", default="5")
    parser.add_argument("--thread-pool", action="store_true", help="also time the thread pool (-j 2)")
    args = parser.parse_args()
    options = ["--ops", args.ops, "--max-examples", args.max_examples, "--submission-timeout", "900"]
    configs = {"local:2": ["--cluster", "local:2"], "local:1": ["--cluster", "local:1"]}
    if args.thread_pool:
        configs["threads -j 2"] = ["-j", "2"]
    with tempfile.TemporaryDirectory() as tmp:
        plants = make_class(Path(tmp) / "subs", args.limit)
        n = len(plants)
        print(f"{n} submissions (impls/buggy), {' '.join(options)}; cores: {os.cpu_count()}")
        load_before = os.getloadavg()
        threads, local = startup_overhead()
        print(f"start, one task, stop: thread pool {threads:.3f} s, LocalCluster of 2 {local:.2f} s")
        walls = {}
        for name, where in configs.items():
            wall, child = grade(Path(tmp) / "subs", Path(tmp) / "out", where, options)
            workers = 1 if name == "local:1" else 2
            walls[name] = wall
            overhead = (workers * wall - child) / n
            print(
                f"{name:>13}: wall {wall:7.1f} s, children {child:7.1f} s, "
                f"{wall / n:5.1f} s per submission, engine overhead {overhead:5.2f} s per submission"
            )
        load_after = os.getloadavg()
    print(f"speed-up of 2 workers over 1: {walls['local:1'] / walls['local:2']:.2f}x")
    print(f"load average (1, 5, 15 min) before {load_before}, after {load_after}")


if __name__ == "__main__":
    main()
