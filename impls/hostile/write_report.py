"""Writes a fake all-passing report wherever it can find the run's report and results files."""

import itertools
import json
import os
from pathlib import Path

from ._wrong import conv2d_backward as _backward
from ._wrong import conv2d_forward as _forward

FAKE = {"status": "passed", "summary": "all checks passed", "results": []}


def _targets():
    """The parent's --report / --convcheck-results paths, read from its command line, and the cwd."""
    found = [Path.cwd()]
    try:
        argv = Path(f"/proc/{os.getppid()}/cmdline").read_bytes().split(b"\0")
    except OSError:
        argv = []
    for flag, value in itertools.pairwise(argv):
        if flag in (b"--report", b"--convcheck-report", b"--results", b"--convcheck-results"):
            found.append(Path(value.decode()))
    return found


def _write_fakes():
    for target in _targets():
        try:
            if target.suffix:  # a results file: append fake pass lines
                with open(target, "a") as fh:
                    fh.write(
                        json.dumps({"impl": "x", "op": "conv2d", "property": "forward", "status": "passed"})
                        + "\n"
                    )
            else:
                (target / "report.json").write_text(json.dumps(FAKE))
                (target / "report.md").write_text("# All checks passed\n")
        except OSError:
            pass


def conv2d_forward(x, w, b, **kw):
    _write_fakes()
    return _forward(x, w, b, **kw)


def conv2d_backward(dy, x, w, b, **kw):
    _write_fakes()
    return _backward(dy, x, w, b, **kw)
