"""The small-scope sweep's cases: every small geometry of a window operation, in size order.

Most defects show on small inputs (the small-scope hypothesis), and the small
space is covered completely far more cheaply than random draws cover it: a
defect that lives in one narrow region (batch 2, one input channel, stride
``(1, 2)``, a one-column output) is found in every run, by its smallest case.

For each window operation (conv, max-pool, avg-pool in 1, 2 and 3-D) the
bounded space is the product of the values in ``BOUNDS``: batch, channels,
groups where they divide, and per spatial axis the input length, kernel,
stride, low and high padding and dilation (the operation's own
hyper-parameters, ``Operation.hyperparameters``), ``ceil_mode`` and
``count_include_pad`` both ways, with and without a bias. Too large to run
whole, it is covered by two deterministic parts:

* *full enumeration of the smallest plain geometries*: every geometry without
  padding, dilation or groups whose axes are at most ``Bounds.full_size`` long
  with kernels up to ``Bounds.full_kernel``, every batch, channel count and
  stride (and ``ceil_mode`` both ways) included;
* *a pairwise covering design* over the whole bounded space: every pair of
  per-feature values (the per-axis output length counted as a feature, so
  "stride 1 on one axis, a one-column output" is a pair) that some valid
  geometry shows appears in at least one chosen geometry. It is built greedily
  from a pool of valid geometries: ``Bounds.pool`` drawn with a seed derived
  from the operation's name (the same in every run), plus constructed rows
  holding every global value beside every value of each axis, and every value
  of one axis beside every value of another (``_seed_rows``). Pairs within one
  axis come from the drawn part; ``meta_tests/test_sweep.py`` checks the
  coverage against a brute force of the whole conv1d space.

Validity comes from the spec (``Operation.check``; the per-axis pre-filter uses
the same family's 1-D operation, whose rules are the per-axis rules) and
admission from the capabilities declaration (``Capabilities.admits``). The
geometries come back sorted by size (elements of ``x`` and ``w``, then how far
the hyper-parameters are from the simplest), so the first failing one is a
minimal case.
"""

from __future__ import annotations

import itertools
import random
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from convcheck.spec import OPERATIONS, Capabilities, InvalidConfiguration, Operation
from convcheck.spec.ops import geometry_of
from convcheck.spec.params import Params

Shapes = dict[str, tuple[int, ...] | None]
AxisConfig = tuple[int, int, int, int, int, int]
"""One spatial axis: ``(length, kernel, stride, low padding, high padding, dilation)``."""

FAMILIES = ("distinct_exact", "ties")
"""Value families of every sweep case: tie-free and tied. Both hold small integers in every
array, so a case's arrays are the same in float32 and float64 and one float64 oracle answer
serves every dtype (``tests/values.py``)."""

SEED = 0
"""The values' seed of every sweep case (``make_case``): a case is named by its geometry."""


@dataclass(frozen=True)
class Bounds:
    """The bounded space of one dimensionality, and the part of it enumerated in full."""

    batch: tuple[int, ...] = (1, 2)
    channels: tuple[int, ...] = (1, 2)
    groups: tuple[int, ...] = (1, 2)
    size: tuple[int, ...] = (1, 2, 3, 4)
    kernel: tuple[int, ...] = (1, 2, 3)
    stride: tuple[int, ...] = (1, 2)
    pad: tuple[int, ...] = (0, 1)
    dilation: tuple[int, ...] = (1, 2)
    full_size: int = 3
    full_kernel: int = 2
    pool: int = 400


BOUNDS = {
    1: Bounds(size=(1, 2, 3, 4, 5), full_size=4, full_kernel=3),
    2: Bounds(full_size=2, full_kernel=2),
    3: Bounds(size=(1, 2, 3), kernel=(1, 2), full_size=1, full_kernel=1, pool=300),
}
"""Per number of spatial axes. Chosen from the measured budget (README, "Small-scope sweep"):
the sweep adds at most a tenth to the ``ci`` run of a correct implementation."""


@dataclass(frozen=True)
class Geometry:
    """One sweep geometry: hyper-parameters and input shapes, valid and admitted."""

    params: Params
    shapes: Shapes
    full: bool
    """Whether the full enumeration (rather than only the covering design) chose it."""

    def size_key(self) -> tuple[Any, ...]:
        """Smaller first: elements of the inputs, then distance of the hyper-parameters from the
        simplest (stride 1, no padding, dilation 1, one group, no ceil_mode), then a stable tie-break."""
        elements = sum(int(np.prod(s)) for s in self.shapes.values() if s is not None)
        kw = self.params.kwargs()
        excursion = sum(v - 1 for v in kw.get("stride", ())) + sum(kw.get("padding", ()))
        excursion += sum(v - 1 for v in kw.get("dilation", ())) + kw.get("groups", 1) - 1
        excursion += int(bool(kw.get("ceil_mode"))) + int(not kw.get("count_include_pad", True))
        return (elements, excursion, repr(sorted(self.shapes.items(), key=str)), repr(kw))


def _one_d(op: Operation) -> Operation:
    """The same family's 1-D operation: its rules are the per-axis rules of every dimension."""
    return OPERATIONS[f"{op.family}1d"]


def _build(op: Operation, row: dict[str, Any]) -> tuple[Params, Shapes]:
    """``(params, shapes)`` of a row: global values and one ``AxisConfig`` per spatial axis."""
    axes: list[AxisConfig] = row["axes"]
    values = {
        "stride": tuple(a[2] for a in axes),
        "padding": tuple(p for a in axes for p in (a[3], a[4])),
        "dilation": tuple(a[5] for a in axes),
        "kernel_size": tuple(a[1] for a in axes),
        "groups": row.get("groups", 1),
        "ceil_mode": row.get("ceil_mode", False),
        "count_include_pad": row.get("count_include_pad", True),
    }
    params = op.params_type(**{k: values[k] for k in op.hyperparameters})
    spatial = tuple(a[0] for a in axes)
    if "w" in op.inputs:
        c_in, c_out, g = row["c_in"], row["c_out"], row.get("groups", 1)
        shapes: Shapes = {
            "x": (row["n"], c_in, *spatial),
            "w": (c_out, max(c_in // g, 1), *(a[1] for a in axes)),
            "b": (c_out,) if row.get("bias", True) else None,
        }
    else:
        shapes = {"x": (row["n"], row["c_in"], *spatial)}
    return params, shapes


def _valid(op: Operation, caps: Capabilities, row: dict[str, Any]) -> tuple[Params, Shapes] | None:
    """The row's geometry if the spec calls it valid and the declaration admits it."""
    try:
        params, shapes = _build(op, row)
        op.check(shapes, params)
    except InvalidConfiguration:
        return None
    tiled = caps.supports(op, "geometry", geometry_of(op, shapes, params))  # a declared exact geometry
    return (params, shapes) if caps.admits(op, params) and tiled else None


def _axis_configs(op: Operation, b: Bounds, row: dict[str, Any], full: bool) -> list[AxisConfig]:
    """Per-axis configurations valid on one axis (by the 1-D operation's rules) given the row's
    global values; ``full`` keeps only the plain small ones of the full enumeration. Only
    ``ceil_mode`` among the global values matters (``_ceil_key``), and no declaration does, so
    each answer is computed once per process."""
    key = (op.name, b, _ceil_key(row), full)
    if key not in _AXIS_CACHE:
        _AXIS_CACHE[key] = _valid_axis_configs(op, b, dict(_ceil_key(row)), full)
    return _AXIS_CACHE[key]


_AXIS_CACHE: dict[tuple[Any, ...], list[AxisConfig]] = {}


def _valid_axis_configs(op: Operation, b: Bounds, row: dict[str, Any], full: bool) -> list[AxisConfig]:
    one = _one_d(op)
    dilated = "dilation" in op.hyperparameters
    sizes = [s for s in b.size if not full or s <= b.full_size]
    kernels = [k for k in b.kernel if not full or k <= b.full_kernel]
    pads = (0,) if full else b.pad
    dilations = (1,) if full or not dilated else b.dilation
    out = []
    for cfg in itertools.product(sizes, kernels, b.stride, pads, pads, dilations):
        if (
            _valid(one, _FULL_CAPS, {**row, "axes": [cfg], "c_in": 1, "c_out": 1, "n": 1, "groups": 1})
            is not None
        ):
            out.append(cfg)
    return out


_FULL_CAPS = Capabilities()


def _globals(op: Operation, b: Bounds, full: bool) -> list[dict[str, Any]]:
    """Every combination of the operation's global values (batch, channels, groups, bias, flags)."""
    names: dict[str, tuple[Any, ...]] = {"n": b.batch, "c_in": b.channels}
    if "w" in op.inputs:
        names["c_out"] = b.channels
        names["groups"] = (1,) if full else b.groups
        names["bias"] = (True,) if full else (True, False)
    if "ceil_mode" in op.hyperparameters:
        names["ceil_mode"] = (False, True)
    if "count_include_pad" in op.hyperparameters:
        names["count_include_pad"] = (True,) if full else (True, False)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*names.values())]


def _full(op: Operation, caps: Capabilities, b: Bounds) -> list[Geometry]:
    """Every plain small geometry (no padding, dilation or groups; short axes, small kernels)."""
    found = []
    for row in _globals(op, b, full=True):
        per_axis = _axis_configs(op, b, row, full=True)
        for axes in itertools.product(per_axis, repeat=op.ndim):
            geometry = _valid(op, caps, {**row, "axes": list(axes)})
            if geometry is not None:
                found.append(Geometry(*geometry, full=True))
    return found


def _features(op: Operation, row: dict[str, Any], params: Params, shapes: Shapes) -> list[tuple[str, Any]]:
    """The row's value of every feature the covering design pairs: the global values, each
    axis's configuration entries and each axis's output length."""
    feats = [(k, v) for k, v in row.items() if k != "axes"]
    out = op.output_shape(shapes, params)[2:]
    for a, cfg in enumerate(row["axes"]):
        feats += [(f"{name}{a}", v) for name, v in zip(("size", "k", "s", "lo", "hi", "d"), cfg, strict=True)]
        feats.append((f"out{a}", out[a]))
    return feats


def _covering(op: Operation, caps: Capabilities, b: Bounds) -> list[Geometry]:
    """A greedy pairwise covering design over the whole bounded space (see the module docstring)."""
    rng = random.Random(zlib.crc32(op.name.encode()))
    globals_ = _globals(op, b, full=False)
    per_axis = {
        key: _axis_configs(op, b, dict(key), full=False) for key in dict.fromkeys(map(_ceil_key, globals_))
    }
    pool: list[tuple[Geometry, list[tuple[str, Any]]]] = []
    for _ in range(b.pool * 4):
        if len(pool) == b.pool:
            break
        row = dict(rng.choice(globals_))
        configs = per_axis[_ceil_key(row)]
        row["axes"] = [rng.choice(configs) for _ in range(op.ndim)]
        geometry = _valid(op, caps, row)
        if geometry is not None:
            pool.append((Geometry(*geometry, full=False), _features(op, row, *geometry)))
    pool += _seed_rows(op, caps, globals_, per_axis)
    if not pool:
        return []
    return _greedy_pairs(pool)


def _seed_rows(
    op: Operation, caps: Capabilities, globals_: list[dict[str, Any]], per_axis: dict[Any, list[AxisConfig]]
) -> list[tuple[Geometry, list[tuple[str, Any]]]]:
    """Rows that show, for every value of a global feature and every value of a feature on one
    axis (the output length included), both at once; and likewise for every two axes. Each uses
    the first global combination and the first axis configuration holding the value, and the
    simplest ones elsewhere.

    Axes are valid independently of each other, so these pairs are feasible whenever each value
    is, but a random pool rarely holds a rare value of one axis beside a rare one of another."""
    rows = []
    seen: set[tuple[Any, ...]] = set()
    simplest_axes = {key: [configs[0]] * op.ndim for key, configs in per_axis.items()}
    usable = [g for g in globals_ if _valid(op, caps, {**g, "axes": simplest_axes[_ceil_key(g)]}) is not None]
    for name, value in dict.fromkeys((k, v) for g in usable for k, v in g.items()):
        row_globals = next(g for g in usable if g[name] == value)
        configs = per_axis[_ceil_key(row_globals)]
        firsts = list(dict.fromkeys(_first_configs(op, row_globals, configs).values()))
        axis_pairs = [(a, a) for a in range(op.ndim)]  # a global value beside each axis value
        if row_globals is usable[0]:  # two axes' values beside each other: once, with the simplest globals
            axis_pairs += list(itertools.combinations(range(op.ndim), 2))
        for a, b in axis_pairs:
            for ca, cb in itertools.product(firsts, repeat=2) if a != b else ((c, c) for c in firsts):
                axes = [configs[0]] * op.ndim
                axes[a], axes[b] = ca, cb
                key = (tuple(row_globals.items()), tuple(axes))
                if key in seen:
                    continue
                seen.add(key)
                row = {**row_globals, "axes": axes}
                geometry = _valid(op, caps, row)
                if geometry is not None:
                    rows.append((Geometry(*geometry, full=False), _features(op, row, *geometry)))
    return rows


def _ceil_key(row: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    """The global values the per-axis validity depends on (``ceil_mode``)."""
    return tuple((k, v) for k, v in row.items() if k == "ceil_mode")


def _first_configs(
    op: Operation, row: dict[str, Any], configs: list[AxisConfig]
) -> dict[tuple[str, Any], AxisConfig]:
    """The first axis configuration showing each value of each per-axis feature (output length included)."""
    one = _one_d(op)
    firsts: dict[tuple[str, Any], AxisConfig] = {}
    for cfg in configs:
        params, shapes = _build(one, {**row, "axes": [cfg], "groups": 1, "c_in": 1, "c_out": 1})
        out = one.output_shape(shapes, params)[2]
        for feature in zip(("size", "k", "s", "lo", "hi", "d", "out"), (*cfg, out), strict=True):
            firsts.setdefault(feature, cfg)
    return firsts


def _greedy_pairs(pool: list[tuple[Geometry, list[tuple[str, Any]]]]) -> list[Geometry]:
    """Geometries from ``pool`` until every feature-value pair that occurs in it is covered,
    each time the one covering the most pairs not yet covered (the first such, so it is stable)."""
    codes: dict[tuple[str, Any], int] = {}
    matrix = np.array([[codes.setdefault(f, len(codes)) for f in feats] for _, feats in pool])
    n_feats = matrix.shape[1]
    left, right = np.triu_indices(n_feats, k=1)
    pairs = matrix[:, left] * len(codes) + matrix[:, right]
    _, pair_ids = np.unique(pairs, return_inverse=True)
    pair_ids = pair_ids.reshape(pairs.shape)
    covered = np.zeros(int(pair_ids.max()) + 1, dtype=bool)
    chosen = []
    while not covered.all():
        scores = (~covered[pair_ids]).sum(axis=1)
        best = int(np.argmax(scores))
        chosen.append(pool[best][0])
        covered[pair_ids[best]] = True
    return chosen


_CACHE: dict[tuple[str, str], tuple[Geometry, ...]] = {}


def geometries(op_name: str, caps: Capabilities) -> tuple[Geometry, ...]:
    """Every sweep geometry of window operation ``op_name`` that ``caps`` admits, smallest first
    (computed once per operation and declaration)."""
    key = (op_name, repr((caps.dtypes, caps.algorithm, sorted(caps.features.items()))))
    if key not in _CACHE:
        _CACHE[key] = _enumerate(OPERATIONS[op_name], caps)
    return _CACHE[key]


def _enumerate(op: Operation, caps: Capabilities) -> tuple[Geometry, ...]:
    b = BOUNDS[op.ndim]
    seen: dict[str, Geometry] = {}
    for g in [*_full(op, caps, b), *_covering(op, caps, b)]:
        seen.setdefault(repr((g.params, sorted(g.shapes.items()))), g)
    return tuple(sorted(seen.values(), key=Geometry.size_key))


def is_window(op_name: str) -> bool:
    """Whether ``op_name`` is a convolution or pooling (the operations the sweep enumerates)."""
    return OPERATIONS[op_name].family in ("conv", "max_pool", "avg_pool")
