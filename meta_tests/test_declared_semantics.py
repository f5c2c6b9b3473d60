"""What real libraries do on purpose, declared: exact-fit windows, zero max-pool padding, Chainer's
``cover_all`` ceil rule and a per-case ``supports`` predicate.

Each declaration is checked both ways on a small module written here: the code that does what it
declares passes ``convcheck run --ops max_pool2d --profile ci``, the run says what was declared,
and the same code without the declaration (or under ``--strict``) fails, naming the property.
The unit tests pin the facts the runs rest on: the output-size rule, the oracle's padding, the
parsing of each declaration.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convcheck import oracles
from convcheck.spec import CapabilityError
from convcheck.spec.capabilities import parse
from convcheck.spec.params import MaxPool2dParams
from convcheck.spec.shapes import COVER_ALL, pool_out_size

MAX_POOL = """
    '''A NumPy max pool padding with PAD (past the high padding too) whose ceil_mode is COVER_ALL's.'''
    import itertools

    import numpy as np

    PAD = {pad}
    COVER_ALL = {cover_all}


    def _out(n, k, s, lo, hi, d, ceil_mode):
        span = n + lo + hi - (d * (k - 1) + 1)
        if not ceil_mode:
            return span // s + 1
        m = -(-span // s) + 1
        return m - 1 if not COVER_ALL and (m - 1) * s >= n + lo else m


    def _geometry(x, kernel_size, stride, padding, dilation, ceil_mode):
        return [
            _out(x.shape[2 + a], kernel_size[a], stride[a], padding[2 * a], padding[2 * a + 1], dilation[a], ceil_mode)
            for a in range(2)
        ]


    def _padded(x, kernel_size, stride, padding, dilation, out):
        widths = []
        for a in range(2):
            lo = padding[2 * a]
            last = (out[a] - 1) * stride[a] + dilation[a] * (kernel_size[a] - 1)
            widths.append((lo, max(0, last + 1 - lo - x.shape[2 + a])))
        return np.pad(x, [(0, 0), (0, 0), *widths], constant_values=PAD), widths


    def _windows(kernel_size, stride, dilation, out):
        for i, j in itertools.product(range(out[0]), range(out[1])):
            rows = i * stride[0] + dilation[0] * np.arange(kernel_size[0])
            cols = j * stride[1] + dilation[1] * np.arange(kernel_size[1])
            yield i, j, np.ix_(rows, cols)


    def max_pool2d_forward(x, *, kernel_size, stride, padding, dilation, ceil_mode):
        out = _geometry(x, kernel_size, stride, padding, dilation, ceil_mode)
        xp, _ = _padded(x, kernel_size, stride, padding, dilation, out)
        y = np.empty((*x.shape[:2], *out), dtype=x.dtype)
        for i, j, (r, c) in _windows(kernel_size, stride, dilation, out):
            y[:, :, i, j] = xp[:, :, r, c].max(axis=(2, 3))
        return y


    def max_pool2d_backward(dy, x, *, kernel_size, stride, padding, dilation, ceil_mode):
        out = _geometry(x, kernel_size, stride, padding, dilation, ceil_mode)
        xp, widths = _padded(x, kernel_size, stride, padding, dilation, out)
        dxp = np.zeros(xp.shape, dtype=x.dtype)
        n, ch = x.shape[:2]
        for i, j, (r, c) in _windows(kernel_size, stride, dilation, out):
            win = xp[:, :, r, c].reshape(n, ch, -1)
            share = np.zeros(win.shape, dtype=x.dtype)
            np.put_along_axis(share, np.argmax(win, axis=-1)[..., None], 1, axis=-1)
            won = share.reshape(xp[:, :, r, c].shape) != 0  # routed, not multiplied: inf * 0 is NaN
            dxp[:, :, r, c] += np.where(won, dy[:, :, i, j][:, :, None, None], 0)
        (t, _), (l, _) = widths
        return dxp[:, :, t : t + x.shape[2], l : l + x.shape[3]].copy()
"""

SQUARE_ONLY = """
    '''numpy_reference's max pool, pooling every window as a square one (a library supporting square
    windows only).'''
    from convcheck.impls import numpy_reference as _ref


    def max_pool2d_forward(x, *, kernel_size, **kw):
        k = max(kernel_size)
        return _ref.max_pool2d_forward(x, kernel_size=(k, k), **kw)


    def max_pool2d_backward(dy, x, *, kernel_size, **kw):
        k = max(kernel_size)
        return _ref.max_pool2d_backward(dy, x, kernel_size=(k, k), **kw)


    def supports(op_name, params):
        return {verdict}
"""

EXACT_FIT_ONLY = """
    '''numpy_reference's max pool, refusing windows that do not tile the padded input exactly.'''
    from convcheck.impls import numpy_reference as _ref


    def _tiles(x, kernel_size, stride, padding, dilation, **_):
        for a in range(2):
            span = x.shape[2 + a] + padding[2 * a] + padding[2 * a + 1] - dilation[a] * (kernel_size[a] - 1) - 1
            if span % stride[a]:
                raise ValueError("the windows must tile the input exactly")


    def max_pool2d_forward(x, **kw):
        _tiles(x, **kw)
        return _ref.max_pool2d_forward(x, **kw)


    def max_pool2d_backward(dy, x, **kw):
        _tiles(x, **kw)
        return _ref.max_pool2d_backward(dy, x, **kw)
"""

ZERO_PAD = MAX_POOL.format(pad="0.0", cover_all="False")
CHAINER = MAX_POOL.format(pad="-np.inf", cover_all="True")


def _run(
    tmp_path: Path, name: str, source: str, declaration: str, *extra: str
) -> tuple[subprocess.CompletedProcess[str], list[dict]]:
    """``convcheck run`` of ``source`` plus ``declaration`` on max_pool2d (profile ci, 30 examples):
    the finished process and its results records."""
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(source) + "\n" + declaration + "\n")
    results = tmp_path / f"{name}.jsonl"
    cmd = [sys.executable, "-m", "convcheck", "run", "--impl", str(path), "--ops", "max_pool2d"]
    cmd += ["--profile", "ci", "--max-examples", "30", "--results", str(results), *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    records = [json.loads(line) for line in results.read_text().splitlines()] if results.exists() else []
    return proc, records


def _status(records: list[dict], prop: str) -> set[str]:
    return {r["status"] for r in records if r["property"] == prop}


def _assert_fails(proc: subprocess.CompletedProcess[str], *properties: str) -> None:
    assert proc.returncode == 1, proc.stdout + proc.stderr
    failed = next(line for line in proc.stdout.splitlines() if "FAILED" in line)
    for prop in properties:
        assert f"max_pool2d:{prop}" in failed, proc.stdout


# --------------------------------------------------------------------------- zero max-pool padding


def test_zero_padding_passes_when_declared_and_torch_is_not_covered(tmp_path):
    proc, records = _run(
        tmp_path, "zero_pad", ZERO_PAD, 'CONVCHECK_CAPABILITIES = {"max_pool2d": {"pad_value": 0.0}}'
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "unsupported (declared): max_pool2d.pad_value = 0.0" in proc.stdout
    torch = [r for r in records if r.get("oracle") == "torch"]
    assert torch and all(r["status"] == "skipped" and r.get("skip_kind") == "not covered" for r in torch)
    assert _status(records, "max_routing") == {"passed"} and _status(records, "sweep") == {"passed"}
    assert not any("maxpool_zero_padding" in json.dumps(r.get("failure")) for r in records)


@pytest.mark.parametrize("how", ["undeclared", "strict"])
def test_zero_padding_fails_without_the_declaration(tmp_path, how):
    declared = how == "strict"
    declaration = 'CONVCHECK_CAPABILITIES = {"max_pool2d": {"pad_value": 0.0}}' if declared else ""
    extra = ("--strict",) if declared else ()
    proc, _ = _run(tmp_path, how, ZERO_PAD, declaration, "-k", "forward and scipy", *extra)
    _assert_fails(proc, "forward")
    assert "maxpool_zero_padding" in proc.stdout  # the catalogue names the mistake when undeclared


def test_a_declared_pad_value_must_be_minus_inf_or_a_finite_number():
    assert parse({"max_pool3d": {"pad_value": 0}}).value("max_pool3d", "pad_value") == 0
    assert parse({}).value("max_pool2d", "pad_value") == float("-inf")
    for bad in (float("inf"), float("nan"), "0", True, None):
        with pytest.raises(CapabilityError, match="pad_value"):
            parse({"max_pool2d": {"pad_value": bad}})


def test_the_oracle_pads_with_the_declared_value_and_drops_a_padded_winner():
    x = -np.arange(1.0, 7.0).reshape(1, 1, 2, 3)  # all negative: 0 padding wins wherever it is read
    kw = {
        "kernel_size": (2, 2),
        "stride": (1, 1),
        "padding": (1, 0, 0, 0),
        "dilation": (1, 1),
        "ceil_mode": False,
    }
    y = oracles.call("scipy", "max_pool2d_forward", x, semantics={"pad_value": 0.0}, **kw)
    assert y.tolist() == [[[[0.0, 0.0], [-1.0, -2.0]]]]
    dx = oracles.call("scipy", "max_pool2d_backward", np.ones_like(y), x, semantics={"pad_value": 0.0}, **kw)
    assert dx.tolist() == [[[[1.0, 1.0, 0.0], [0.0, 0.0, 0.0]]]]  # the top row's windows go to padding
    assert not oracles.ORACLES["torch"].covers("max_pool2d", {"pad_value": 0.0})
    assert oracles.ORACLES["scipy"].covers("max_pool2d", {"pad_value": 0.0})


# --------------------------------------------------------------------------- Chainer's cover_all


@pytest.mark.parametrize("n", range(1, 9))
@pytest.mark.parametrize(
    ("k", "s", "p", "d"), [(2, 2, 0, 1), (3, 2, 1, 1), (2, 3, 1, 2), (3, 4, 0, 1), (1, 2, 0, 1)]
)
def test_cover_all_is_chainers_output_size(n, k, s, p, d):
    k_eff = k + (k - 1) * (d - 1)
    if n + 2 * p < k_eff:
        return
    chainer = (n + p * 2 - k_eff + s - 1) // s + 1  # chainer.utils.conv.get_conv_outsize(cover_all=True)
    assert pool_out_size(n, k, s, p, p, d, COVER_ALL) == chainer
    assert pool_out_size(n, k, s, p, p, d, False) == (n + p * 2 - k_eff) // s + 1


def test_a_cover_all_record_hands_the_implementation_ceil_mode_true():
    record = MaxPool2dParams((2, 2), (2, 2), (0, 0, 0, 0), (1, 1), COVER_ALL)
    assert record.kwargs()["ceil_mode"] is True
    assert not oracles.ORACLES["torch"].covers("max_pool2d", {"ceil_rule": "cover_all"})
    with pytest.raises(CapabilityError, match="ceil_rule"):
        parse({"max_pool2d": {"ceil_rule": "chainer"}})


def test_cover_all_passes_when_declared(tmp_path):
    proc, records = _run(
        tmp_path, "chainer", CHAINER, 'CONVCHECK_CAPABILITIES = {"max_pool2d": {"ceil_rule": "cover_all"}}'
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "max_pool2d.ceil_rule = 'cover_all'" in proc.stdout
    assert any("true" in (r.get("values") or {}).get("ceil_mode", []) for r in records)
    assert _status(records, "sweep") == {"passed"}


@pytest.mark.parametrize("how", ["undeclared", "strict"])
def test_cover_all_fails_without_the_declaration(tmp_path, how):
    declared = how == "strict"
    declaration = 'CONVCHECK_CAPABILITIES = {"max_pool2d": {"ceil_rule": "cover_all"}}' if declared else ""
    extra = ("--strict",) if declared else ()
    proc, _ = _run(tmp_path, how, CHAINER, declaration, "-k", "shapes_dtypes", *extra)
    _assert_fails(proc, "shapes_dtypes")


# --------------------------------------------------------------------------- the per-case predicate

SQUARE = 'params.kernel_size[0] == params.kernel_size[1] or "square windows only"'


def test_a_predicate_leaves_out_cases_as_declared(tmp_path):
    source = SQUARE_ONLY.format(verdict=SQUARE)
    proc, records = _run(tmp_path, "square", source, 'CONVCHECK_CAPABILITIES = {"supports": supports}')
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "max_pool2d.supports = 'per case: " in proc.stdout
    assert "declared by the predicate: " in proc.stdout and ": square windows only" in proc.stdout
    assert any("declared_by_predicate" in r for r in records)


@pytest.mark.parametrize("how", ["undeclared", "strict"])
def test_a_predicate_fails_without_the_declaration(tmp_path, how):
    source = SQUARE_ONLY.format(verdict=SQUARE)
    declaration = 'CONVCHECK_CAPABILITIES = {"supports": supports}' if how == "strict" else ""
    extra = ("--strict",) if how == "strict" else ()
    proc, _ = _run(tmp_path, how, source, declaration, "-k", "forward and scipy", *extra)
    _assert_fails(proc, "forward")


def test_a_check_whose_every_case_is_left_out_is_unsupported(tmp_path):
    source = SQUARE_ONLY.format(verdict='"not this library"')
    proc, records = _run(
        tmp_path, "none", source, 'CONVCHECK_CAPABILITIES = {"supports": supports}', "-k", "forward or sweep"
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _status(records, "forward") == {"unsupported"} and _status(records, "sweep") == {"unsupported"}


def test_a_predicate_that_raises_is_a_usage_error_naming_it(tmp_path):
    source = SQUARE_ONLY.format(verdict="params.no_such_field")
    proc, _ = _run(
        tmp_path,
        "raises",
        source,
        'CONVCHECK_CAPABILITIES = {"supports": supports}',
        "-k",
        "forward and scipy",
    )
    assert proc.returncode != 0
    assert "CONVCHECK_CAPABILITIES['supports']" in proc.stdout and "AttributeError" in proc.stdout


def test_supports_must_be_a_function():
    with pytest.raises(CapabilityError, match="supports"):
        parse({"supports": "square"})
    caps = parse({"supports": lambda op, params: op != "conv2d" or "no conv"})
    assert caps.excluded("conv2d", None) == "no conv" and caps.excluded("max_pool2d", None) is None
    with pytest.raises(CapabilityError, match="must return True, False or a reason"):
        parse({"supports": lambda op, params: 1}).excluded("relu", None)


# --------------------------------------------------------------------------- exact fit (geometry)


def test_exact_fit_passes_when_declared_and_fails_otherwise(tmp_path):
    declared = 'CONVCHECK_CAPABILITIES = {"max_pool2d": {"geometry": "exact"}}'
    proc, _ = _run(tmp_path, "exact", EXACT_FIT_ONLY, declared, "-k", "forward or backward")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "max_pool2d.geometry = 'exact'" in proc.stdout
    proc, _ = _run(tmp_path, "any", EXACT_FIT_ONLY, "", "-k", "forward and scipy")
    _assert_fails(proc, "forward")


# --------------------------------------------------------------------------- square windows and dilations


@settings(max_examples=60, deadline=None, derandomize=True)
@given(data=st.data())
def test_square_declarations_draw_square_windows_and_dilations(data):
    from convcheck.tests.strategies import pool_configs

    caps = parse({"max_pool2d": {"kernel_size": "square", "dilation": "uniform", "stride": "uniform"}})
    params, _ = data.draw(pool_configs(caps, "max_pool2d"))
    assert len(set(params.kernel_size)) == len(set(params.dilation)) == len(set(params.stride)) == 1
    assert caps.admits("max_pool2d", params)


def test_square_windows_pass_when_declared(tmp_path):
    source = SQUARE_ONLY.format(verdict="True")
    declaration = 'CONVCHECK_CAPABILITIES = {"max_pool2d": {"kernel_size": "square"}}'
    proc, _ = _run(tmp_path, "square_kernel", source, declaration, "-k", "forward or sweep")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "max_pool2d.kernel_size = 'square'" in proc.stdout
