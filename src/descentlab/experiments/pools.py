"""Where sweep runs execute: a local process pool, or an existing Ray cluster.

Both take ``runner.Task``s and give back ``runner.Outcome``s; the driver does the rest (and is
the only process that writes the store). A pool says how many runs it can take at once
(``capacity``); the driver keeps that many in flight, so that a run marked ``running`` in the
store is running.
"""

from __future__ import annotations

import multiprocessing
import os
import socket
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

from .runner import Outcome, Task, execute


def cores() -> int:
    """The cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class LocalPool:
    """``workers`` processes on this machine, each running one task at a time."""

    def __init__(self, workers: int) -> None:
        if not (isinstance(workers, int) and workers >= 1):
            raise ValueError(f"--workers must be a positive integer, got {workers!r}")
        self.capacity = workers
        # fork: a worker starts in milliseconds and inherits problems registered in Python
        # (the driver computes nothing, so no thread of it holds a lock at the fork).
        # Elsewhere spawn, the only start method there.
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        self._executor = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(
            method))

    def submit(self, task: Task) -> Future:
        return self._executor.submit(execute, task)

    def wait_any(self, handles: list[Future]) -> list[Future]:
        done, _ = wait(handles, return_when=FIRST_COMPLETED)
        return list(done)

    def result(self, handle: Future) -> Outcome:
        return handle.result()

    def close(self, cancel: bool = False) -> None:
        self._executor.shutdown(wait=not cancel, cancel_futures=cancel)


class RayPool:
    """Tasks on the Ray cluster at ``address`` ("auto": the one this machine belongs to), one
    CPU each. The cluster must exist and have descentlab (and any problem files the sweep
    imports) installed on every node; descentlab never starts a cluster of its own here."""

    def __init__(self, address: str) -> None:
        try:
            import ray
        except ImportError:
            raise ValueError("--ray needs Ray: pip install 'descentlab[ray]'") from None
        self._ray = ray
        if not ray.is_initialized():
            _reachable(address)
            try:
                ray.init(address=address, log_to_driver=False, logging_level="error",
                         include_dashboard=False)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise ValueError(f"cannot connect to the Ray cluster at {address!r}: "
                                 f"{str(exc).splitlines()[0]}") from None
        self.capacity = max(1, int(ray.cluster_resources().get("CPU", 1)))
        self._remote = ray.remote(num_cpus=1, max_retries=0)(execute)

    def submit(self, task: Task) -> Any:
        return self._remote.remote(task)

    def wait_any(self, handles: list[Any]) -> list[Any]:
        done, _ = self._ray.wait(handles, num_returns=1)
        return done

    def result(self, handle: Any) -> Outcome:
        return self._ray.get(handle)

    def close(self, cancel: bool = False) -> None:
        # the cluster is the user's: only this driver's connection ends
        self._ray.shutdown()


def _reachable(address: str, timeout_s: float = 5.0) -> None:
    """Refuse a host:port nobody listens on at once: Ray itself retries for minutes."""
    host, sep, port = address.rpartition(":")
    if address == "auto" or "://" in address or not sep or not port.isdigit():
        return  # Ray finds "auto" itself, and fails fast when there is none
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise ValueError(f"cannot connect to the Ray cluster at {address!r}: "
                         f"{exc.strerror or exc}") from None
