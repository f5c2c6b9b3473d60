"""The worker process: loads the implementation under test and runs its calls.

Runs in a fresh interpreter (``python -m convcheck.sandbox.worker``, spawned,
never forked, so it sees none of the parent's state; under ``--python``, another interpreter
runs these same files from a zip, ``convcheck.sandbox.bundle``, so this module and what it
imports keep to Python 3.9 and NumPy 1.21), in its own scratch folder, with its output going to a log file there,
under a memory cap set before anything else is imported. Whatever the code
under test does here (monkeypatching, chdir, environment, closing stdout) stays
here: the parent only ever reads the encoded messages this loop sends.
"""

from __future__ import annotations

import gc
import os
import platform
import sys
import traceback
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..impls.registry import Implementation

_HERE = os.path.dirname(os.path.abspath(__file__))


def _redirect_output(log_path: str) -> None:
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115 - lives as long as the process
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115


def _their_traceback(exc: BaseException) -> str:
    """The exception's traceback trimmed to the implementation's own frames."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith(_HERE)]
    lines = traceback.format_list(frames[-8:])
    lines += traceback.format_exception_only(type(exc), exc)
    return "".join(lines).rstrip()


def _where(exc: BaseException) -> str | None:
    """``file.py:function`` of the implementation's innermost own frame that the exception passed
    (``convcheck.failure_keys``: the place that tells two of its exceptions apart)."""
    from ..failure_keys import innermost_own_frame

    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith(_HERE)]
    return innermost_own_frame(frames)


def _send(conn: Any, message: Any) -> None:
    from .wire import dumps

    conn.send_bytes(dumps(message))


def _version_of(module: str) -> Any:
    """The version of ``module`` if this interpreter can import it, else ``None``."""
    try:
        return getattr(__import__(module), "__version__", "unknown")
    except ImportError:
        return None


def describe_environment(np: Any) -> dict[str, Any]:
    """The handshake: this interpreter's Python, NumPy and platform (the report's implementation side)."""
    return {
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "executable": sys.executable,
        "numpy": np.__version__,
        "ml_dtypes": _version_of("ml_dtypes"),
        "platform": platform.platform(),
        "machine": platform.machine(),
    }


def main(conn: Any, spec: str, memory_mb: int, cpu_s: int, workdir: str) -> None:
    """Serve calls until the parent closes the pipe (``conn`` reads requests and sends replies)."""
    from .limits import apply_memory_cap

    apply_memory_cap(memory_mb)
    os.chdir(workdir)
    _redirect_output(os.path.join(workdir, "output.log"))
    import numpy as np  # bound before the code under test is imported, which may patch sys.modules

    from ..impls import registry
    from ..spec import ContractError
    from .limits import arm_cpu_cap
    from .wire import aliased

    environment = describe_environment(np)
    try:
        impl = registry.load(spec)
    except ContractError as e:
        _send(conn, ["contract_error", str(e), environment])
        return
    except BaseException as e:  # the module's own import code failed in any way
        _send(conn, ["contract_error", f"importing {spec} raised {type(e).__name__}: {e}", environment])
        return
    _send(
        conn,
        [
            "ready",
            {
                "name": impl.name,
                "source": impl.source,
                "version": impl.version,
                "functions": list(impl.functions),
                "capabilities": impl.capabilities.to_dict() if impl.capabilities.declared else None,
                "environment": environment,
            },
        ],
    )
    staged: list[Any] = []
    while True:
        try:
            request = conn.recv_bytes()
        except (EOFError, OSError):
            return
        from .wire import loads

        message = loads(request)
        tools = (np, arm_cpu_cap, aliased, cpu_s)
        if message[0] == "batch":  # several calls in one round trip (the small-scope sweep)
            _send(conn, ["batch", _run_batch(impl, message[1], tools)])
        elif message[0] == "stage":  # the call the benchmark times next, kept here
            staged[:] = [impl.functions[message[1]], message[2], message[3], impl.capabilities.synchronize]
            _send(conn, ["ok", None, {}])
        elif message[0] == "time":
            _send(conn, _time_staged(staged, message[1], tools))
        else:
            _send(conn, _run_one(impl, message[1:], tools))


def _time_staged(staged: list[Any], number: int, tools: tuple[Any, ...]) -> list[Any]:
    """Seconds for ``number`` calls of the staged call, measured here (``bench.timing.time_block``:
    synchronised, garbage collector off), so that no message crossing lands in the time."""
    from ..bench.timing import Target, time_block

    fn, args, kwargs, synchronize = staged
    tools[1](tools[3])  # the CPU cap, armed per block as per call
    enabled = gc.isenabled()
    gc.disable()
    try:
        return ["timed", time_block(Target(lambda: fn(*args, **kwargs), synchronize), number)]
    except BaseException as e:
        return ["raised", {"type": type(e).__name__, "message": str(e), "traceback": _their_traceback(e)}]
    finally:
        if enabled:
            gc.enable()


def _run_batch(impl: Implementation, calls: list[list[Any]], tools: tuple[Any, ...]) -> list[list[Any]]:
    """Run each ``[fname, args, kwargs, names, repeat]`` ``repeat`` times, each time on fresh
    copies of the arguments; the replies in order."""
    np = tools[0]
    replies = []
    for fname, args, kwargs, names, repeat in calls:
        for _ in range(repeat):
            copies = [np.array(a, copy=True, order="K") if isinstance(a, np.ndarray) else a for a in args]
            replies.append(_run_one(impl, [fname, copies, kwargs, names], tools))
    return replies


def _run_one(impl: Implementation, call: list[Any], tools: tuple[Any, ...]) -> list[Any]:
    """Run one call ``[fname, args, kwargs, names]``; the reply: ``["ok", output, changed inputs]`` or
    ``["raised", details]``. ``tools`` are numpy, the CPU-cap arming, the alias marker and the CPU cap,
    all bound before the code under test was imported."""
    np, arm_cpu_cap, aliased, cpu_s = tools
    fname, args, kwargs, names = call
    before = [np.array(a, copy=True) if isinstance(a, np.ndarray) else None for a in args]
    arm_cpu_cap(cpu_s)
    try:
        out = (
            _declared_predicate(impl, args)
            if fname == PREDICATE_CALL
            else impl.functions[fname](*args, **kwargs)
        )
    except BaseException as e:  # report everything, SystemExit and MemoryError included
        details: dict[str, Any] = {
            "type": type(e).__name__,
            "message": str(e),
            "traceback": _their_traceback(e),
            "where": _where(e),
        }
        return ["raised", {**details, "not_implemented": isinstance(e, NotImplementedError)}]
    changed = {
        str(i): a
        for i, (a, b) in enumerate(zip(args, before))
        if b is not None and not np.array_equal(a, b, equal_nan=True)
    }
    return ["ok", _mark_aliases(out, args, names, aliased, np), changed]


PREDICATE_CALL = "CONVCHECK_CAPABILITIES['supports']"
"""The name under which the parent asks for the declared ``supports`` predicate's verdict on a case."""


def _declared_predicate(impl: Implementation, args: list[Any]) -> Any:
    """The declared predicate's verdict on ``[op_name, {hyper-parameter: value}]`` (its record rebuilt
    here from plain values, as ``spec.ops.Operation.params_type``)."""
    from convcheck.spec.ops import OPERATIONS

    op_name, fields = args
    params = OPERATIONS[op_name].params_type(
        **{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()}
    )
    assert impl.capabilities.predicate is not None
    return impl.capabilities.predicate(op_name, params)


def _mark_aliases(out: Any, args: list[Any], names: list[str], aliased: Any, np: Any) -> Any:
    """Outputs that share memory with an input are sent marked with that input's name."""
    if isinstance(out, np.ndarray):
        for arg, name in zip(args, names):
            if isinstance(arg, np.ndarray) and np.shares_memory(out, arg):
                return aliased(out, name)
        return out
    if isinstance(out, (tuple, list)):
        return type(out)(_mark_aliases(o, args, names, aliased, np) for o in out)
    return out


def serve(argv: list[str]) -> None:
    """The worker's entry point: ``argv`` is ``spec memory_mb cpu_s workdir read_fd write_fd``."""
    spec, memory, cpu, workdir, read_fd, write_fd = argv[:6]
    from ..tether import SANDBOX, tether

    tether(SANDBOX)
    from .wire import Pipes

    main(Pipes(int(read_fd), int(write_fd)), spec, int(memory), int(cpu), workdir)


if __name__ == "__main__":
    serve(sys.argv[1:])
