"""Where chunks of trials run: in this process, in a pool of worker processes, or on a dask.distributed cluster.

Every backend runs the same function on the same chunks (:func:`trialsim.chunk.simulate_chunk`), so the numbers
are identical; only where and how fast differ. A backend is a context manager whose :meth:`run` yields
``(chunk, rows)`` as chunks finish, with at most two chunks per worker submitted at a time (the parent never
holds more rows than that). Leaving the ``with`` block by an exception — Ctrl-C included — cancels the pending
chunks and stops the workers at once; worker processes also end with the process that started them when it is
killed (pool workers watch it, dask's worker processes watch their parent).
"""

from __future__ import annotations

import logging
import os
import select
import signal
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from contextlib import suppress
from multiprocessing import get_all_start_methods, get_context

import pandas as pd

from trialsim.chunk import Chunk, Job, simulate_chunk
from trialsim.exceptions import Problem, ScenarioError
from trialsim.spec.plan import AnalysisPlan

BACKENDS = ("process", "dask")
#: Chunks submitted per worker ahead of the results (bounds the parent's memory and what Ctrl-C must cancel).
IN_FLIGHT_PER_WORKER = 2


def start_method(plan: AnalysisPlan) -> str:
    """``fork`` for the numpy-only engines (cheapest start); ``forkserver`` for NUTS, so workers never inherit a
    parent's PyMC/pytensor state (compiled models, threads) and each compiles its own model once."""
    methods = get_all_start_methods()
    if plan.engine == "nuts" and "forkserver" in methods:
        return "forkserver"
    return "fork" if "fork" in methods else "spawn"


def watch_parent(pid: int) -> None:
    """End this process as soon as process ``pid`` exits (a daemon thread; Linux: a pidfd, elsewhere polling).

    Pool workers watch the process that started the run: a worker started by a forkserver is the child of the
    forkserver, which itself lives as long as any worker does, so neither a parent-death signal nor the parent
    pipe would end them after a kill -9 of the run."""

    def watch() -> None:
        try:
            descriptor = os.pidfd_open(pid)
            select.select([descriptor], [], [])
        except (AttributeError, OSError):  # no pidfd (not Linux ≥ 5.3), or the parent is already gone
            while _alive(pid):
                time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="trialsim-watch-parent", daemon=True).start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        pass
    return True


def _worker_init(parent: int) -> None:
    """Pool workers: one thread each (the parallelism is across trials), Ctrl-C left to the parent, and the end
    of the worker when the parent ends, however it ends."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    watch_parent(parent)


class SerialBackend:
    """Chunks one after another in this process."""

    workers = 1

    def __enter__(self) -> SerialBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def run(self, job: Job, chunks: Iterable[Chunk]) -> Iterator[tuple[Chunk, pd.DataFrame]]:
        for chunk in chunks:
            yield chunk, simulate_chunk(job, chunk)


class ProcessBackend:
    """A pool of ``workers`` processes on this machine."""

    def __init__(self, workers: int, plan: AnalysisPlan) -> None:
        self.workers = workers
        self.pool = ProcessPoolExecutor(
            workers, mp_context=get_context(start_method(plan)), initializer=_worker_init, initargs=(os.getpid(),)
        )

    def __enter__(self) -> ProcessBackend:
        return self

    def __exit__(self, exc_type: type | None, *exc: object) -> None:
        if exc_type is not None:
            self._kill_workers()
        self.pool.shutdown(wait=exc_type is None, cancel_futures=True)

    def _kill_workers(self) -> None:
        # Running chunks cannot be cancelled, only their processes (ProcessPoolExecutor.terminate_workers from
        # Python 3.14; the same done by hand before).
        terminate = getattr(self.pool, "terminate_workers", None)
        if terminate is not None:
            terminate()
            return
        for process in list((self.pool._processes or {}).values()):
            process.terminate()

    def run(self, job: Job, chunks: Iterable[Chunk]) -> Iterator[tuple[Chunk, pd.DataFrame]]:
        queue = iter(chunks)
        pending: dict = {}

        def fill() -> None:
            while len(pending) < IN_FLIGHT_PER_WORKER * self.workers:
                chunk = next(queue, None)
                if chunk is None:
                    return
                pending[self.pool.submit(simulate_chunk, job, chunk)] = chunk

        fill()
        while pending:
            done, _ = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for future in done:
                yield pending.pop(future), future.result()
            fill()


def local_cluster(workers: int):
    """A dask ``LocalCluster`` of ``workers`` single-threaded worker processes. dask makes its workers return
    freed memory to the system above 64 KB (``MALLOC_TRIM_THRESHOLD_``), which slows the engine's many large
    arrays by about 30%; these workers keep glibc's default."""
    import dask
    from distributed import LocalCluster

    with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
        return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                            silence_logs=logging.CRITICAL)


class DaskBackend:
    """Chunks as tasks on a dask.distributed cluster: a ``LocalCluster`` of ``workers`` single-threaded worker
    processes, or the scheduler at ``scheduler``. Each worker process keeps its compiled NUTS models for every
    later chunk (one compilation per worker); the workers must run the same package versions as this process."""

    def __init__(self, workers: int, plan: AnalysisPlan, scheduler: str | None = None) -> None:
        from distributed import Client

        self.cluster = None
        if scheduler is None:
            self.cluster = local_cluster(workers)
            self.client = Client(self.cluster)
        else:
            try:
                self.client = Client(scheduler, timeout="10s")
            except (OSError, TimeoutError) as error:
                raise ScenarioError(f"--scheduler {scheduler}: cannot connect ({error})") from None
        self.client.register_plugin(_ignore_interrupts_plugin(), name="trialsim-ignore-interrupts")
        self.workers = max(1, sum(self.client.nthreads().values()))
        self._check_versions(plan)
        self._pending: dict = {}
        self._job: tuple | None = None

    def _check_versions(self, plan: AnalysisPlan) -> None:
        """Refuse workers whose packages differ from this process's (their numbers would differ)."""
        from trialsim.results import package_versions

        here = package_versions(plan)
        problems = [
            Problem("--scheduler", worker, f"{name} {version} on the worker, {here.get(name)} here")
            for worker, versions in self.client.run(package_versions, plan).items()
            for name, version in versions.items()
            if here.get(name) != version
        ]
        if problems:
            self.close()
            raise ScenarioError(problems)

    def __enter__(self) -> DaskBackend:
        return self

    def __exit__(self, exc_type: type | None, *exc: object) -> None:
        if exc_type is not None:
            self._stop_now()
        self.close()

    def _stop_now(self) -> None:
        """Cancel the pending chunks; a local cluster's worker processes are killed rather than waited for."""
        if self._pending:
            self.client.cancel(list(self._pending), force=True)
        if self.cluster is not None:
            for nanny in list(self.cluster.workers.values()):
                if nanny.pid is not None:
                    with suppress(ProcessLookupError):
                        os.kill(nanny.pid, signal.SIGKILL)

    def close(self) -> None:
        with suppress(TimeoutError, OSError):
            self.client.close()
        if self.cluster is not None:
            with suppress(TimeoutError, OSError):
                self.cluster.close()

    def run(self, job: Job, chunks: Iterable[Chunk]) -> Iterator[tuple[Chunk, pd.DataFrame]]:
        from distributed import as_completed

        queue = iter(chunks)
        if self._job is None or self._job[0] is not job:  # sent once to every worker, kept while in use
            self._job = (job, self.client.scatter(job, broadcast=True, hash=False))
        shared = self._job[1]
        finished = as_completed()

        def fill() -> None:
            while len(self._pending) < IN_FLIGHT_PER_WORKER * self.workers:
                chunk = next(queue, None)
                if chunk is None:
                    return
                future = self.client.submit(simulate_chunk, shared, chunk, pure=False)
                self._pending[future] = chunk
                finished.add(future)

        fill()
        for future in finished:
            chunk = self._pending.pop(future)
            yield chunk, future.result()
            fill()


def _ignore_interrupts_plugin():
    """A dask worker plugin: Ctrl-C in a terminal reaches the whole process group; the client handles it."""
    from distributed import WorkerPlugin

    class IgnoreInterrupts(WorkerPlugin):
        def setup(self, worker) -> None:
            try:
                signal.signal(signal.SIGINT, signal.SIG_IGN)
            except ValueError:  # not the worker's main thread
                pass

    return IgnoreInterrupts()


def open_backend(
    backend: str, workers: int, plan: AnalysisPlan, scheduler: str | None = None
) -> SerialBackend | ProcessBackend | DaskBackend:
    """The backend to run a job's chunks: ``process`` (serial for one worker) or ``dask``."""
    if backend not in BACKENDS:
        raise ScenarioError(f"--backend {backend}: choose one of {', '.join(BACKENDS)}")
    if backend == "dask":
        return DaskBackend(workers, plan, scheduler)
    return SerialBackend() if workers <= 1 else ProcessBackend(workers, plan)
