"""A row-wise function of a batch computed by worker processes, each keeping the state of its own rows."""

from __future__ import annotations

import ctypes
import multiprocessing as mp
import os
import signal
import sys
from concurrent.futures import ProcessPoolExecutor
from typing import Callable

import numpy as np

RowFunction = Callable[[np.ndarray], np.ndarray]

SINGLE_THREADED = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
"""The environment of every worker process started here (unless the user set these): each worker is meant to take
one core, and a BLAS thread pool of its own on top oversubscribes them."""


def single_threaded_children() -> None:
    """Set ``SINGLE_THREADED`` in this process's environment, which the worker processes it starts from now on
    inherit (this process's own BLAS has read its setting at import and keeps it)."""
    for name, value in SINGLE_THREADED.items():
        os.environ.setdefault(name, value)


def process_pool(workers: int, mp_context=None) -> ProcessPoolExecutor:  # noqa: ANN001 - a multiprocessing context
    """A ProcessPoolExecutor whose workers end with this process (``die_with_parent``): a killed run leaves no worker
    behind, blocked forever on its task queue. Its workers run BLAS on one thread (``single_threaded_children``)."""
    single_threaded_children()
    return ProcessPoolExecutor(workers, mp_context=mp_context, initializer=die_with_parent, initargs=(os.getpid(),))


def die_with_parent(parent: int) -> None:
    """Initializer of a pool's worker: the kernel kills it when ``parent`` (the pid that starts the pool) ends
    (Linux ``prctl(PR_SET_PDEATHSIG, SIGKILL)``; elsewhere nothing)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG
        if os.getppid() != parent:  # it ended before the call
            os._exit(1)


def _serve(factory: Callable[[], RowFunction], pipe) -> None:
    """A worker: build the function, then answer each batch with its rows' results (or the error raised)."""
    fn = factory()
    while (batch := pipe.recv()) is not None:
        try:
            pipe.send(fn(batch))
        except Exception as e:  # noqa: BLE001 - handed to the parent, which raises it
            pipe.send(e)


class RowWorkers:
    """``fn(batch)`` with the rows split into ``workers`` contiguous slices, one per process.

    Each worker holds its own ``factory()`` and gets the same slice of rows on every call, so
    state a function keeps per row (a warm start) stays with that row. One worker: in this process. The workers
    run BLAS on one thread (``single_threaded_children``).
    ``factory`` must pickle (a module-level function or a ``functools.partial`` of one).
    """

    def __init__(self, factory: Callable[[], RowFunction], workers: int = 1):
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = workers
        self._local = factory() if workers == 1 else None
        self._pipes, self._processes = [], []
        context = mp.get_context("spawn")  # no fork of a parent that runs torch threads
        single_threaded_children()
        for _ in range(workers if workers > 1 else 0):
            parent, child = context.Pipe()
            process = context.Process(target=_serve, args=(factory, child), daemon=True)
            process.start()
            self._pipes.append(parent)
            self._processes.append(process)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        if self._local is not None:
            return self._local(batch)
        for pipe, rows in zip(self._pipes, np.array_split(batch, self.workers)):
            pipe.send(rows)
        results = [pipe.recv() for pipe in self._pipes]
        if errors := [r for r in results if isinstance(r, Exception)]:
            raise errors[0]
        return np.concatenate(results)

    def close(self) -> None:
        """Stop the workers."""
        for pipe in self._pipes:
            pipe.send(None)
        for process in self._processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
        self._pipes, self._processes = [], []
