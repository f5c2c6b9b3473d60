"""Thread counts of NumPy's BLAS and of PyTorch: read them for the report, set them for ``--threads``,
and hold every checking process to one (``limit_threads``).

PyTorch: ``torch.get_num_threads`` / ``torch.set_num_threads`` (its intra-op
pool, which its convolutions use).

NumPy's BLAS, in order of preference:

1. ``threadpoolctl`` when it is installed (it knows OpenBLAS, MKL and BLIS);
2. otherwise, for OpenBLAS (what NumPy's wheels bundle), the library's own
   ``openblas_get_num_threads`` / ``openblas_set_num_threads`` found in the
   process's loaded libraries (``/proc/self/maps``, Linux) under any of the
   symbol names the wheels use (``scipy_openblas_*64_``, ``openblas_*64_``,
   plain);
3. otherwise the count cannot be read or set, and the report says so with the
   relevant environment variables (``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``,
   ``MKL_NUM_THREADS``), which a user can set before starting convcheck.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import sys
from dataclasses import dataclass
from typing import Any

ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

_PREFIXES = ("scipy_openblas_", "openblas_")
_SUFFIXES = ("64_", "_64_", "")


@dataclass
class OpenBLAS:
    """One loaded OpenBLAS library and its thread-count functions."""

    path: str
    get: Any
    set: Any


def _loaded_openblas() -> list[OpenBLAS]:
    """OpenBLAS libraries mapped into this process (Linux only; empty elsewhere)."""
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            paths = sorted({line.split()[-1] for line in maps if "openblas" in line.lower() and "/" in line})
    except OSError:
        return []
    found = []
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in _PREFIXES:
            for suffix in _SUFFIXES:
                get = getattr(lib, f"{prefix}get_num_threads{suffix}", None)
                set_ = getattr(lib, f"{prefix}set_num_threads{suffix}", None)
                if get is not None and set_ is not None:
                    get.restype, get.argtypes = ctypes.c_int, []
                    set_.restype, set_.argtypes = None, [ctypes.c_int]
                    found.append(OpenBLAS(path, get, set_))
                    break
            else:
                continue
            break
    return found


def _has_threadpoolctl() -> bool:
    return importlib.util.find_spec("threadpoolctl") is not None


def blas_threads() -> tuple[int | None, str]:
    """``(threads, how it was read)`` for NumPy's BLAS; ``(None, why not)`` when it cannot be read."""
    import numpy  # noqa: F401  (loads the BLAS library so that it can be found)

    if _has_threadpoolctl():
        from threadpoolctl import threadpool_info

        blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        if blas:
            return int(blas[0]["num_threads"]), f"threadpoolctl ({blas[0].get('internal_api')})"
    libs = sorted(_loaded_openblas(), key=lambda lib: "numpy" not in lib.path)  # NumPy's own first
    if libs:
        return int(libs[0].get()), f"OpenBLAS ({os.path.basename(libs[0].path)})"
    return None, "unknown (no threadpoolctl, no OpenBLAS found); see the environment variables"


def set_blas_threads(n: int) -> bool:
    """Set NumPy's BLAS threads to ``n``; ``False`` when no way to set them is available."""
    import numpy  # noqa: F401

    if _has_threadpoolctl():
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=n, user_api="blas")
        return True
    libs = _loaded_openblas()
    for lib in libs:
        lib.set(n)
    return bool(libs)


def set_threads(n: int) -> None:
    """Use ``n`` threads in NumPy's BLAS and in PyTorch (``--threads``).

    Raises ``ValueError`` for ``n < 1`` and ``RuntimeError`` when NumPy's BLAS
    cannot be told (then set ``OPENBLAS_NUM_THREADS`` / ``OMP_NUM_THREADS``
    before starting convcheck instead).
    """
    import torch

    if n < 1:
        raise ValueError(f"--threads={n} must be at least 1")
    torch.set_num_threads(n)
    if not set_blas_threads(n):
        raise RuntimeError(
            f"cannot set NumPy's BLAS threads to {n}: threadpoolctl is not installed and no OpenBLAS "
            "library was found; set OPENBLAS_NUM_THREADS / OMP_NUM_THREADS before starting convcheck"
        )


def limit_threads(n: int = 1) -> int | None:
    """Use ``n`` threads per process for checking: PyTorch's pool, NumPy's BLAS where it can be
    told, and the environment (``ENV_VARS``) that child processes (sandbox workers, nested runs)
    start from.

    Conformance inputs are small, so threads within one call buy nothing, while threads beyond
    the free cores (xdist workers, a busy machine) make every call wait on spinning pools: on
    a loaded 2-core machine one torch-backed property took 24 s with the default pool and
    8.7 s with one thread. Parallel checking comes from ``-n`` workers instead. A user who set
    any of ``ENV_VARS`` keeps that choice; then nothing changes and ``None`` is returned.
    """
    if any(os.environ.get(name) for name in ENV_VARS):
        return None
    os.environ.update({name: str(n) for name in ENV_VARS})
    if "torch" in sys.modules:  # torch reads the environment when imported; an imported one is told
        sys.modules["torch"].set_num_threads(n)
    if "numpy" in sys.modules:
        set_blas_threads(n)
    return n


def snapshot(requested: int | None = None) -> dict[str, Any]:
    """The thread counts as the report records them."""
    import torch

    blas, how = blas_threads()
    return {
        "requested": requested,
        "torch": torch.get_num_threads(),
        "numpy_blas": blas,
        "numpy_blas_source": how,
        "cpu_count": os.cpu_count(),
        "environment": {k: os.environ.get(k) for k in ENV_VARS},
    }


__all__ = ["ENV_VARS", "blas_threads", "set_blas_threads", "set_threads", "limit_threads", "snapshot"]
