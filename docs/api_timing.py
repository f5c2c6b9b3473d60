"""Timing of the Python API (docs/api.md, "Timing").

Run as ``env -u CI -u CONVCHECK_PROFILE -u CONVCHECK_MAX_EXAMPLES python docs/api_timing.py``.

The whole default run (profile fast, every operation, numpy_fast): ``convcheck.check`` against
``convcheck run --impl numpy_fast`` in one warm process (torch imported first). One warm-up of
each, then for seeds 0-3 both with the same seed, the order alternated pair by pair. Also the
seconds from the call to the first finished check.
"""

import contextlib
import io
import statistics
import time

import torch

import convcheck
from convcheck import cli

assert torch.get_num_threads() > 0  # a warm kernel: torch is imported before the first call


def api(seed: int) -> tuple[float, float]:
    start = time.perf_counter()
    result = convcheck.check("numpy_fast", seed=seed, progress=False)
    return time.perf_counter() - start, result.first_result_s or float("nan")


def run_cli(seed: int) -> float:
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        cli.main(["run", "--impl", "numpy_fast", "--seed", str(seed)])
    return time.perf_counter() - start


def main() -> None:
    took, first = api(100)
    print(f"warm-up: api {took:.1f} s (first check {first:.2f} s after the call), cli {run_cli(100):.1f} s")
    api_s, cli_s, firsts = [], [], []
    for seed in range(4):
        if seed % 2 == 0:
            (took, first), other = api(seed), run_cli(seed)
        else:
            other = run_cli(seed)
            took, first = api(seed)
        api_s.append(took)
        cli_s.append(other)
        firsts.append(first)
        print(f"seed {seed}: api {took:.1f} s, cli {other:.1f} s, api first check {first:.2f} s", flush=True)
    paired = statistics.median(x - y for x, y in zip(api_s, cli_s, strict=True))
    print(
        f"median: api {statistics.median(api_s):.1f} s, cli {statistics.median(cli_s):.1f} s, "
        f"median paired difference (api - cli) {paired:+.1f} s, median first check {statistics.median(firsts):.2f} s"
    )


if __name__ == "__main__":
    main()
