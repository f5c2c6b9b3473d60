"""The parent side of isolation: a sandboxed implementation whose functions are proxies.

Each contract function of a sandboxed implementation sends its arrays (by
value) to a worker process and waits at most the wall-clock limit. A worker
that hangs, crashes, runs out of memory or CPU time is recorded as a failure
of that call, naming the case that caused it, and replaced; the run goes on.
Within one test, a function that killed its worker fails at once on later
calls (the same message), so hypothesis's shrinking never waits on a hang twice.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from ..failure_keys import keyed_class, raised_key, sandbox_key
from ..spec import OPERATIONS, ContractError, operation_of, parse_capabilities
from ..spec.ops import FUNCTION_NAMES
from ..tether import SANDBOX, tether_env
from . import wire
from .limits import Limits


class SandboxFailure(AssertionError):
    """The code under test hung, crashed, raised, or broke a limit. ``kind`` classifies it;
    ``raised`` is what the worker said of the exception it raised (``type``, ``message``,
    ``traceback``, ``where``, ``not_implemented``: an instance of ``NotImplementedError``), else
    ``None``. Each is raised as the subclass for its key (``convcheck.failure_keys``): the raised
    type and place, or the kind and function, so that hypothesis tells distinct ones apart."""

    def __init__(self, kind: str, message: str, raised: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.raised = raised


def describe_call(fname: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """``conv2d_backward(dy (1, 2, 3, 3), x (...), ...; stride=(3, 3), ...)`` for messages; another
    call (the declared ``supports`` predicate) as its name and arguments."""
    if fname not in FUNCTION_NAMES:
        return f"{fname}{tuple(args)!r}"
    op = operation_of(fname)
    names = (["dy"] if fname == op.backward else []) + list(op.inputs)
    arrays = ", ".join(
        f"{n} {tuple(a.shape)}" if isinstance(a, np.ndarray) else f"{n}={a!r}"
        for n, a in zip(names, args, strict=False)
    )
    hyper = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    return f"{fname}({arrays}; {hyper})"


_LIVE: weakref.WeakSet[Sandbox] = weakref.WeakSet()
"""Every sandbox of this process (``breakers_kept`` restores their breakers)."""


@contextmanager
def breakers_kept() -> Iterator[None]:
    """Calls made in the block trip no breaker for the calls after it: which functions every sandbox
    trusts is restored when the block ends (trial runs on other cases must not change the verdict
    on the case a check reports)."""
    saved = [(box, dict(box._tripped)) for box in list(_LIVE)]
    try:
        yield
    finally:
        for box, tripped in saved:
            box._tripped = tripped


class Sandbox:
    """One worker process serving one implementation, restarted after every death."""

    def __init__(self, spec: str, limits: Limits, python: str | None = None) -> None:
        self.spec = spec
        self.limits = limits
        self.python = python
        """The interpreter the worker runs under (``--python``, already probed), or ``None``: convcheck's."""
        self.info: dict[str, Any] = {}
        self.deaths = 0
        self._proc: Any = None
        self._conn: wire.Pipes | None = None
        self._workdir: str | None = None
        self._tripped: dict[str, SandboxFailure] = {}
        _LIVE.add(self)

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> dict[str, Any]:
        """Start a worker and load the module there; ``ContractError`` if it cannot be loaded."""
        self._workdir = tempfile.mkdtemp(prefix="convcheck-worker-")
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        worker_args = [
            self.spec,
            str(self.limits.memory_mb),
            str(self.limits.cpu_s),
            self._workdir,
            str(to_child_r),
            str(from_child_w),
        ]
        if self.python is None:
            argv = [sys.executable, "-m", "convcheck.sandbox.worker", *worker_args]
        else:
            from .bundle import launch_argv

            argv = launch_argv(self.python, worker_args)
        self._proc = subprocess.Popen(
            argv,
            pass_fds=(to_child_r, from_child_w),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches the parent, which decides; never the code under test
            env={**os.environ, **tether_env(SANDBOX)},  # and a parent killed outright takes it along
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self._conn = wire.Pipes(from_child_r, to_child_w)
        parent = self._conn
        if not parent.poll(self.limits.startup_s):
            self._kill()
            raise ContractError(f"loading {self.spec} took longer than {self.limits.startup_s:g} s")
        try:
            kind, payload, *_ = wire.loads(parent.recv_bytes())
        except (EOFError, OSError, ValueError):
            tail = self._output_tail()
            code = self._reap()
            raise ContractError(
                f"loading {self.spec} killed the worker ({_exit_text(code)})"
                + (f"; its last output: {tail.splitlines()[-1].strip()}" if tail else "")
            ) from None
        if kind == "contract_error":
            self._reap()
            raise ContractError(str(payload))
        self.info = payload
        return payload

    def close(self) -> None:
        """Stop the worker and remove its scratch folder."""
        if self._conn is not None:
            self._conn.close()
        if self._proc is not None:
            try:
                self._proc.wait(timeout=1)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._conn = self._proc = None
        if self._workdir:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def reset_breaker(self) -> None:
        """Forget which functions killed the worker (called at the start of every test)."""
        self._tripped.clear()

    # -- calls -----------------------------------------------------------------------------
    def call(self, fname: str, args: tuple[Any, ...], kwargs: dict[str, Any], names: list[str]) -> Any:
        """Run ``fname`` in the worker; mirror in-place input changes onto ``args``; return its output."""
        __tracebackhide__ = True
        if fname in self._tripped:
            raise self._tripped[fname]
        if self._proc is None or self._proc.poll() is not None:
            self.start()
        assert self._conn is not None
        self._conn.send_bytes(wire.dumps(["call", fname, list(args), kwargs, names]))
        if not self._conn.poll(self.limits.timeout_s):
            self._kill()
            self._fail(
                fname,
                "timeout",
                f"worker killed after {self.limits.timeout_s:g} s on "
                f"{describe_call(fname, args, kwargs)}: it did not return (an endless loop?)",
            )
        try:
            kind, payload, *rest = wire.loads(self._conn.recv_bytes())
        except (EOFError, OSError):
            code = self._reap()
            self._fail(
                fname,
                _death_kind(code),
                f"worker died on {describe_call(fname, args, kwargs)}: "
                f"{_exit_text(code, self.limits)}{self._output_tail()}",
            )
        except ValueError as e:
            self._kill()
            self._fail(fname, "protocol", f"{describe_call(fname, args, kwargs)}: {e}")
        if kind == "raised":
            kind_ = "memory" if payload["type"] == "MemoryError" else "exception"
            cap = f" (the worker's memory cap is {self.limits.memory_mb} MB)" if kind_ == "memory" else ""
            key = raised_key(SandboxFailure, payload["type"], payload.get("where"))
            raise keyed_class(SandboxFailure, key)(
                kind_,
                f"{fname} raised {payload['type']}: {payload['message']}{cap}\n"
                f"  on {describe_call(fname, args, kwargs)}\n  its traceback:\n"
                + _indent(payload["traceback"], "    "),
                raised=payload,
            )
        for index, value in rest[0].items():
            target = args[int(index)]
            if isinstance(target, np.ndarray) and target.flags.writeable and target.shape == value.shape:
                np.copyto(target, value)  # the caller sees the modification, as it would in-process
        return payload

    def stage(self, fname: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Keep the call ``fname(*args, **kwargs)`` in the worker for ``time_block`` (the benchmark)."""
        if self._proc is None or self._proc.poll() is not None:
            self.start()
        assert self._conn is not None
        self._conn.send_bytes(wire.dumps(["stage", fname, list(args), kwargs]))
        self._expect(fname, "ok")

    def time_block(self, number: int) -> float:
        """Seconds for ``number`` back-to-back calls of the staged call, timed inside the worker
        (``bench.timing.time_block`` there), so that the messages are not in the time."""
        assert self._conn is not None, "stage a call first"
        self._conn.send_bytes(wire.dumps(["time", number]))
        return float(self._expect("timing", "timed"))

    def _expect(self, what: str, kind: str) -> Any:
        """The payload of the next reply, which must be of ``kind``; a ``SandboxFailure`` otherwise
        (the worker did not answer within the wall-clock limit, died, or the call raised)."""
        assert self._conn is not None
        if not self._conn.poll(self.limits.timeout_s):
            self._kill()
            raise SandboxFailure("timeout", f"worker killed after {self.limits.timeout_s:g} s while {what}")
        try:
            got, payload, *_ = wire.loads(self._conn.recv_bytes())
        except (EOFError, OSError, ValueError):
            code = self._reap()
            raise SandboxFailure(
                "crash", f"worker died while {what}: {_exit_text(code, self.limits)}"
            ) from None
        if got != kind:
            raise SandboxFailure("exception", f"{what} raised {payload['type']}: {payload['message']}")
        return payload

    def send_many(
        self, calls: list[tuple[str, tuple[Any, ...], dict[str, Any], list[str]]], repeat: int = 1
    ) -> bool:
        """Start several ``(fname, args, kwargs, names)`` calls in one message, each to run
        ``repeat`` times in a row on fresh copies of its arguments; ``receive_many`` collects them.

        The caller may compute in the meantime, but must collect before any other call.
        False (nothing sent) when one of the functions already killed its worker in this check.
        """
        if any(fname in self._tripped for fname, *_ in calls):
            return False
        if self._proc is None or self._proc.poll() is not None:
            self.start()
        assert self._conn is not None
        self._conn.send_bytes(wire.dumps(["batch", [[f, list(a), k, n, repeat] for f, a, k, n in calls]]))
        return True

    def receive_many(self) -> list[Any] | None:
        """The outputs of the calls ``send_many`` started, in order (``repeat`` per call), each
        ``None`` where that call raised; ``None`` as a whole when the batch did not finish within
        the wall-clock limit or the worker died (it is replaced). The caller then repeats the calls
        one by one with ``call``, which names the failing call as usual. Inputs changed in
        place are not mirrored back."""
        if self._conn is None:
            return None
        if not self._conn.poll(self.limits.timeout_s):
            self._kill()
            return None
        try:
            _, replies = wire.loads(self._conn.recv_bytes())
        except (EOFError, OSError, ValueError):
            self._kill()
            return None
        return [payload if kind == "ok" else None for kind, payload, *_ in replies]

    def _fail(self, fname: str, kind: str, message: str) -> None:
        __tracebackhide__ = True
        self.deaths += 1
        keyed = keyed_class(SandboxFailure, sandbox_key(SandboxFailure, kind, fname))
        failure = keyed(kind, message)
        self._tripped[fname] = keyed(kind, f"{message} (not run again in this check)")
        raise failure

    def _kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
        self._reap()

    def _reap(self) -> int | None:
        code = None
        if self._proc is not None:
            try:
                code = self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                code = self._proc.wait()
        if self._conn is not None:
            self._conn.close()
        self._proc = self._conn = None
        return code

    def _output_tail(self, lines: int = 5) -> str:
        if not self._workdir:
            return ""
        try:
            with open(os.path.join(self._workdir, "output.log"), encoding="utf-8", errors="replace") as fh:
                tail = fh.read().splitlines()[-lines:]
        except OSError:
            return ""
        return ("\n  its last output:\n" + _indent("\n".join(tail), "    ")) if tail else ""


def _indent(text: str, prefix: str) -> str:
    return "\n".join(prefix + line for line in text.splitlines())


def _death_kind(code: int | None) -> str:
    if code is not None and code < 0 and -code == signal.SIGXCPU:
        return "cpu"
    return "crash"


def _exit_text(code: int | None, limits: Limits | None = None) -> str:
    if code is None:
        return "it stopped answering"
    if code < 0:
        sig = signal.Signals(-code)
        if sig == signal.SIGXCPU and limits is not None:
            return f"it exceeded its CPU-time cap of {limits.cpu_s} s (SIGXCPU)"
        return f"killed by signal {sig.name}"
    return f"it exited with status {code} (os._exit or sys.exit in the code under test?)"


def _proxy(sandbox: Sandbox, fname: str) -> Any:
    op = operation_of(fname)
    names = (["dy"] if fname == op.backward else []) + list(op.inputs)

    def call(*args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True
        return sandbox.call(fname, args, kwargs, names)

    call.__name__ = fname
    call.__qualname__ = f"sandboxed.{fname}"
    return call


def _predicate_proxy(sandbox: Sandbox, name: str) -> Any:
    """The declared ``supports`` predicate, called in the worker (where the module lives) on a case's
    operation and hyper-parameters, sent as plain values; named ``name`` as declared."""
    import dataclasses

    from .worker import PREDICATE_CALL

    def predicate(op_name: str, params: Any) -> Any:
        return sandbox.call(PREDICATE_CALL, (op_name, dataclasses.asdict(params)), {}, [])

    predicate.__qualname__ = predicate.__name__ = name
    predicate.__module__ = ""
    return predicate


def _worker_hook(name: str) -> Any:
    """A stand-in for the declared ``synchronize`` hook, which lives in the worker (its module may not
    be importable here): named as declared; the benchmark times sandboxed code in the worker, where
    the hook itself is called."""

    def hook() -> None:
        raise RuntimeError(
            f"the synchronize hook {name} runs in the isolated worker, not in convcheck's process"
        )

    hook.__module__, _, hook.__qualname__ = name.rpartition(".")
    hook.__name__ = hook.__qualname__
    return hook


def _dtypes_the_worker_has(
    declared: dict[str, Any] | None, environment: dict[str, Any]
) -> dict[str, Any] | None:
    """The declaration less ``bfloat16`` when the worker's environment lacks ``ml_dtypes`` (under
    ``--python``, an environment with only NumPy): no array of it can exist there, so the
    implementation is checked on the dtypes it can hold; the report's implementation side
    shows ``ml_dtypes`` as absent."""
    if declared is None or "ml_dtypes" not in environment or environment["ml_dtypes"] is not None:
        return declared
    dtypes = declared.get("dtypes")
    if not dtypes or "bfloat16" not in dtypes:
        return declared
    return {**declared, "dtypes": [d for d in dtypes if d != "bfloat16"]}


def load(spec: str, limits: Limits | None = None, python: str | None = None) -> Any:
    """Load ``spec`` in a worker process and return an ``Implementation`` of proxies.

    The module is imported only in the worker, never here. ``ContractError`` as
    for ``registry.load``. ``python`` names the worker's interpreter (``--python``; ``None``:
    convcheck's own); one that cannot host it is a ``UsageError`` (``interpreter.probe``).
    """
    from ..impls.registry import Implementation, absolute

    if python is not None:
        from .interpreter import probe

        python = probe(python).path
    sandbox = Sandbox(absolute(spec), limits or Limits(), python)
    info = sandbox.start()
    declared = _dtypes_the_worker_has(info["capabilities"], info.get("environment") or {})
    if declared is not None and declared.get("supports") is not None:
        declared = {**declared, "supports": _predicate_proxy(sandbox, declared["supports"])}
    if declared is not None and declared.get("synchronize") is not None:
        declared = {**declared, "synchronize": _worker_hook(declared["synchronize"])}
    caps = parse_capabilities(declared, where=f"{info['source']}: CONVCHECK_CAPABILITIES")
    functions = {
        f: _proxy(sandbox, f) for f in info["functions"] if any(f in o.functions for o in OPERATIONS.values())
    }
    impl = Implementation(
        info["name"], info["source"], functions, caps, info.get("version"), info["capabilities"]
    )
    impl.extras["sandbox"] = sandbox
    return impl
