"""Where ``convcheck grade`` runs its submissions: the local thread pool, a Dask LocalCluster, or a
running Dask cluster.

``--cluster local[:N]`` starts a LocalCluster of N worker processes (one thread
each) on 127.0.0.1 for this run; ``--scheduler tcp://HOST:PORT`` joins a cluster
started with Dask's own ``dask scheduler`` and ``dask worker`` commands. Without
either, submissions run on the thread pool of ``convcheck.grading.batch``: each
submission already runs in its own child process, so on one machine a
LocalCluster adds only its start-up (about a second) and a process per worker.

Dask is optional (the ``dask`` extra); asking for a cluster without it, or
naming a scheduler that does not answer, is a ``ClusterUnavailable`` (a usage
error: one line, exit status 2).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from distributed import Client

CONNECT_TIMEOUT_S = 10.0
"""How long to wait for a named scheduler to answer before giving up."""
INSTALL_HINT = 'pip install -c constraints.txt -e ".[dask]"'


class ClusterUnavailable(Exception):
    """The cluster asked for cannot be used: Dask is missing, or the scheduler does not answer."""


@dataclass(frozen=True)
class ClusterSpec:
    """A Dask cluster to grade on: ``local_workers`` processes started here, or a running ``scheduler``."""

    local_workers: int | None = None
    scheduler: str | None = None

    def describe(self) -> str:
        """How the run names it: ``a local Dask cluster of 2 workers`` or ``the Dask scheduler at ADDR``."""
        if self.scheduler:
            return f"the Dask scheduler at {self.scheduler}"
        return f"a local Dask cluster of {self.local_workers} worker(s)"


def parse_cluster(value: str, default_workers: int) -> ClusterSpec:
    """``--cluster``'s value: ``local`` (``default_workers`` workers) or ``local:N``.

    Raises ``ValueError`` with the accepted forms for anything else.
    """
    name, _, count = value.partition(":")
    if name != "local":
        raise ValueError(
            f"--cluster={value!r} is not a cluster this command starts; give local or local:N "
            "(or --scheduler tcp://HOST:PORT to join a running cluster)"
        )
    if not count:
        return ClusterSpec(local_workers=default_workers)
    if not count.isdigit() or int(count) < 1:
        raise ValueError(f"--cluster={value!r}: the number of workers after 'local:' must be at least 1")
    return ClusterSpec(local_workers=int(count))


def _import_distributed() -> None:
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise ClusterUnavailable(
            f"grading on a Dask cluster needs Dask; install it with {INSTALL_HINT}"
        ) from None


def _quiet() -> None:
    """Keep Dask's own log lines (a worker restarting, a lost connection) off the grading output;
    convcheck reports what they mean in its own words."""
    names = [n for n in logging.root.manager.loggerDict if n == "distributed" or n.startswith("distributed.")]
    for name in names:  # Dask's configuration sets some of them a level of their own
        logging.getLogger(name).setLevel(logging.CRITICAL)
    for handler in logging.getLogger("distributed").handlers:
        handler.setLevel(logging.CRITICAL)


def _unavailable(address: str, reason: str) -> ClusterUnavailable:
    return ClusterUnavailable(
        f"cannot reach the Dask scheduler at {address} ({reason}); start one with `dask scheduler`, "
        "or check the address it printed"
    )


def _probe(address: str) -> None:
    """Fail at once, without Dask's retries, when nothing listens at a ``tcp://HOST:PORT`` address."""
    if not address.startswith("tcp://"):
        return  # another transport (tls://, ucx://): Dask's own connection attempt tells
    host, _, port = address.removeprefix("tcp://").rpartition(":")
    if not port.isdigit():
        raise _unavailable(address, "the address has no port; give tcp://HOST:PORT")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as e:
        raise _unavailable(address, e.strerror or type(e).__name__) from None


@contextlib.contextmanager
def open_cluster(spec: ClusterSpec | None, retries: int) -> Iterator[Client | None]:
    """A Dask client for ``spec`` (``None`` for the thread pool), closed (and a local cluster stopped)
    on exit. A local cluster's scheduler gives a task up after ``retries`` worker deaths.

    Raises ``ClusterUnavailable`` when Dask is missing or the scheduler does not answer in
    ``CONNECT_TIMEOUT_S``.
    """
    if spec is None:
        yield None
        return
    if spec.local_workers:  # the workers it spawns read their log level from the environment
        os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "critical")
    _import_distributed()
    import dask
    from distributed import Client, LocalCluster

    _quiet()

    if spec.scheduler:
        _probe(spec.scheduler)
        try:
            client = Client(spec.scheduler, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as e:
            raise _unavailable(spec.scheduler, " ".join(str(e).split()) or type(e).__name__) from None
        with client:
            yield client
        return
    with (
        dask.config.set({"distributed.scheduler.allowed-failures": retries}),
        LocalCluster(
            n_workers=spec.local_workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            scheduler_port=0,
            dashboard_address=":0",  # any free port: the default one may be another cluster's
            scheduler_kwargs={"dashboard": False},
            worker_dashboard_address=None,
            memory_limit=0,  # the work is in each submission's child, under its own --memory limit
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        yield client
