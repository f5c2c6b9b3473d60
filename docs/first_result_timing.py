"""Time to the first finished check: from a notebook cell and from the command line, side by side.

Run as ``env -u CI -u CONVCHECK_PROFILE -u CONVCHECK_MAX_EXAMPLES python docs/first_result_timing.py``.

- Notebook: a real Jupyter kernel (nbclient + ipykernel) that has imported torch and convcheck
  (a warm kernel) runs ``convcheck.check(...)`` in a cell; the time is ``first_result_s``, from
  the call to the first check's verdict, and the whole call.
- Command line: ``convcheck run --impl ... --results FILE`` started as a user types it (a new
  process: Python, torch and the suite start up); the time is from the start of the process to
  the first line of the results file, which the run writes as each check finishes, and the whole
  command.

Both on the same targets: the shipped ``numpy_fast`` and ``examples/my_layers.py`` (as a file on
the command line, as the functions of a cell's ``globals()`` in the kernel). Rounds alternate
which side goes first; the medians of ``ROUNDS`` rounds are printed.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
MY_LAYERS = ROOT / "examples" / "my_layers.py"
ROUNDS = 3
TARGETS = {"numpy_fast": ("numpy_fast", '"numpy_fast"'), "my_layers": (str(MY_LAYERS), "globals()")}
"""name -> (what ``--impl`` gets, the expression the notebook cell passes to ``convcheck.check``)."""


def cli(impl: str, seed: int) -> tuple[float, float]:
    """``(seconds to the first result line, seconds to the end)`` of ``convcheck run``."""
    with tempfile.TemporaryDirectory() as tmp:
        results = Path(tmp) / "results.jsonl"
        start = time.perf_counter()
        proc = subprocess.Popen(
            ["convcheck", "run", "--impl", impl, "--seed", str(seed), "--results", str(results)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        first = None
        while proc.poll() is None:
            if first is None and results.is_file() and results.stat().st_size > 0:
                first = time.perf_counter() - start
            time.sleep(0.02)
        return first if first is not None else float("nan"), time.perf_counter() - start


def kernel_client() -> tuple[NotebookClient, nbformat.NotebookNode]:
    """A started kernel, warm: torch, convcheck and the API imported, my_layers' functions defined."""
    nb = nbformat.v4.new_notebook()
    client = NotebookClient(nb, timeout=600, kernel_name="python3")
    client.km = client.create_kernel_manager()
    client.start_new_kernel()
    client.start_new_kernel_client()
    run_cell(client, nb, "import torch, convcheck, convcheck.api")
    run_cell(client, nb, MY_LAYERS.read_text())  # the layers typed into a cell
    return client, nb


def run_cell(client: NotebookClient, nb: nbformat.NotebookNode, source: str) -> str:
    """Execute ``source`` as a new cell; its standard output."""
    nb.cells.append(nbformat.v4.new_code_cell(source))
    index = len(nb.cells) - 1
    client.execute_cell(nb.cells[index], index)
    return "".join(o.get("text", "") for o in nb.cells[index].outputs if o.output_type == "stream")


def notebook(
    client: NotebookClient, nb: nbformat.NotebookNode, target: str, seed: int
) -> tuple[float, float]:
    """``(first_result_s, seconds of the whole call)`` of ``convcheck.check`` in the kernel."""
    out = run_cell(
        client,
        nb,
        "import json, time\n"
        "start = time.perf_counter()\n"
        f"r = convcheck.check({target}, seed={seed}, progress=True)\n"
        'print("TIMING " + json.dumps([r.first_result_s, time.perf_counter() - start]))',
    )
    first, whole = json.loads(out.split("TIMING ", 1)[1].splitlines()[0])
    return first, whole


def main() -> None:
    os.environ.pop("CI", None)
    client, nb = kernel_client()
    try:
        for name, (impl, target) in TARGETS.items():
            rows: dict[str, list[tuple[float, float]]] = {"notebook": [], "cli": []}
            for seed in range(ROUNDS):
                sides = [("notebook", lambda t=target, s=seed: notebook(client, nb, t, s))]
                sides.append(("cli", lambda i=impl, s=seed: cli(i, s)))
                for side, measure in sides if seed % 2 == 0 else sides[::-1]:
                    rows[side].append(measure())
                    first, whole = rows[side][-1]
                    print(
                        f"{name} seed {seed} {side}: first result {first:.2f} s, whole run {whole:.1f} s",
                        flush=True,
                    )
            for side, values in rows.items():
                first = statistics.median(v[0] for v in values)
                whole = statistics.median(v[1] for v in values)
                print(f"{name} {side}: median first result {first:.2f} s, median whole run {whole:.1f} s")
    finally:
        client._cleanup_kernel()


if __name__ == "__main__":
    sys.exit(main())
