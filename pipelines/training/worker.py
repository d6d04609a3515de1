"""What a Spark Python worker runs for each group of ``applyInPandas``. Standard library only at the top.

Spark unpickles the group function in each Python worker, which imports this module. The worker does
not fit itself: it hands each group to one long-lived fit process of its own (``FitProcess``, started
with ``spawn``: forking a process that holds JAX's threads is unsafe), so a fit that dies (out of
memory, a segfault) or hangs takes down only that process, never the Spark task:

- the process dies: the group's markets get a ``failed`` row "worker process died: exit code N";
- the group runs past its limit (``training.market_timeout_s``): the process is killed and the
  markets get "timed out after N s".

Either way the process is replaced for the next group. A market that had already been tracked and
registered before the death keeps its row (``tracking.registered_run``).

Before anything imports PyTensor or JAX, the fit process gets its own PyTensor compile directory
(compilation is not safe across processes sharing one) and one XLA device (the executor's cores are
used by running one market per task, in parallel). Spark reuses Python workers, and each keeps its
fit process, so a model structure compiles once per worker and later markets of it only sample.

Test hook: ``MMM_TEST_FAULT`` (``inject_test_fault``) makes a market's fit process exit or hang.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import os
import signal
import stat
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import wait
from typing import Any

from pipelines.training.contract import RESULT_COLUMNS, SAMPLE_COLUMNS, TrainJob

log = logging.getLogger(__name__)

TEST_FAULT_VARIABLE = "MMM_TEST_FAULT"
DEFAULT_MARKET_TIMEOUT_S = 3600.0  # TrainingSettings.market_timeout_s's default, for a job dump without it


def private_dir(path: str) -> str:
    """``path`` as a folder only this user can use: created with mode 0700 if missing; refused (``PermissionError``)
    if it is a link or not a folder, belongs to another user, or is writable by its group or others.

    The compile folder holds compiled C modules that PyTensor imports; in a shared place like /tmp another
    user who could create or write it could have this process load their code.
    """
    try:
        os.makedirs(path, mode=0o700)
        os.chmod(path, 0o700)  # makedirs' mode is cut by the umask; this only narrows it further, if anything
    except FileExistsError:
        pass
    info = os.lstat(path)
    problem = None
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        problem = "is not a folder (a link or a file)"
    elif info.st_uid != os.getuid():
        problem = f"belongs to another user (uid {info.st_uid}, this process runs as {os.getuid()})"
    elif info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        problem = f"is writable by its group or others (mode {stat.S_IMODE(info.st_mode):o})"
    if problem:
        raise PermissionError(
            f"PyTensor compile folder {path} {problem}; refusing to load compiled code from it. "
            "Remove it, or set training.compile_dir to a folder of your own (mode 0700)."
        )
    return path


def isolate_worker(compile_dir: str) -> None:
    """Own PyTensor compile directory (in ``compile_dir``, which must be private: ``private_dir``) and one
    XLA device, if PyTensor and JAX are not loaded yet."""
    private_dir(compile_dir)
    if "pytensor" not in sys.modules:
        flags = [f for f in os.environ.get("PYTENSOR_FLAGS", "").split(",") if f and not f.startswith("compiledir=")]
        os.environ["PYTENSOR_FLAGS"] = ",".join([*flags, f"compiledir={compile_dir}/worker-{os.getpid()}"])
    if "jax" not in sys.modules:
        os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=1"


def fit_group_function(job: TrainJob) -> Callable:
    """The ``applyInPandas`` function: one group's rows in, one status row per market out, whatever happens.

    A plain one-argument closure, because Spark tells ``f(rows)`` from ``f(key, rows)`` by counting
    the function's arguments.
    """

    def fit_group(rows):  # pandas in, pandas out
        return run_group(rows, job)

    return fit_group


# --- the fit process ---------------------------------------------------------------------------------


class FitProcessError(Exception):
    """A call in the fit process that gave no result; the message is what the status row says."""


class FitProcessDiedError(FitProcessError):
    """The fit process ended while it ran a call (a crash, the out-of-memory killer, ``os._exit``)."""


class FitTimeoutError(FitProcessError):
    """A call ran past its limit; the fit process was killed."""


class FitError(FitProcessError):
    """The call raised in the fit process (its type and message); the process lives on."""


class FitProcess:
    """One spawned process that runs calls one at a time and lives on between them (its compiled models too).

    ``call`` sends a module-level function and its arguments (pickled) and waits for the answer, the
    process's end, or the limit, whichever comes first. The process prepares itself with
    ``isolate_worker`` before it unpickles any call, and ends by itself when its parent does.
    """

    def __init__(self, compile_dir: str) -> None:
        context = multiprocessing.get_context("spawn")
        self.compile_dir = compile_dir
        self.connection, theirs = context.Pipe()
        # not daemonic: a daemonic process may not start processes of its own (PyMC's sampler does)
        self.process = context.Process(target=_serve, args=(theirs, compile_dir, os.getpid()), name="mmm-fit")
        self.process.start()
        theirs.close()  # only the child holds its end: its death reads as the end of the pipe here
        atexit.register(self.stop)  # else multiprocessing would wait for it at this worker's exit

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.is_alive()

    def call(self, function: Callable, args: tuple, timeout_s: float) -> Any:
        """``function(*args)`` in the process, or a ``FitProcessError``: it died, it timed out, or the call raised."""
        try:
            self.connection.send((function, args))
        except (BrokenPipeError, ConnectionResetError, EOFError) as exc:
            raise self._died() from exc
        ready = wait([self.connection, self.process.sentinel], timeout_s)
        if not ready:
            self.kill()
            raise FitTimeoutError(f"timed out after {timeout_s:g} s")
        if self.connection in ready or self.connection.poll():
            try:
                kind, value = self.connection.recv()
            except (EOFError, ConnectionResetError, OSError) as exc:
                raise self._died() from exc
            if kind == "error":
                raise FitError(value)
            return value
        raise self._died()

    def stop(self, grace_s: float = 5.0) -> None:
        """End the process: its end of the pipe closes, so it returns from waiting (killed if it does not)."""
        atexit.unregister(self.stop)
        self.connection.close()
        self.process.join(grace_s)
        self.kill()

    def kill(self) -> None:
        atexit.unregister(self.stop)
        if self.process.is_alive():
            self.process.kill()
        self.process.join(10)
        self.connection.close()

    def _died(self) -> FitProcessDiedError:
        atexit.unregister(self.stop)
        self.process.join(10)
        self.connection.close()
        return FitProcessDiedError(f"worker process died: {describe_exit(self.process.exitcode)}")


def describe_exit(code: int | None) -> str:
    """``exit code 1``; for a signal ``exit code -9 (SIGKILL: out of memory?)``, as ``multiprocessing`` reports it."""
    if code is None:
        return "exit code unknown"
    if code >= 0:
        return f"exit code {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    hint = {"SIGKILL": ": out of memory?", "SIGSEGV": ": a crash in native code"}.get(name, "")
    return f"exit code {code} ({name}{hint})"


def _serve(connection, compile_dir: str, parent: int) -> None:  # the fit process's main loop
    isolate_worker(compile_dir)  # before any call is unpickled: that imports PyTensor and JAX
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
    while True:
        try:
            function, args = connection.recv()
        except (EOFError, OSError):  # the worker closed its end, or died
            return
        try:
            reply = ("ok", function(*args))
        except BaseException as exc:  # reported to the worker, which writes the row
            reply = ("error", f"{type(exc).__name__}: {exc}")
        try:
            connection.send(reply)
        except (BrokenPipeError, OSError):
            return


def _exit_with_parent(parent: int) -> None:
    """End this process once its parent (the Spark Python worker) is gone, even in the middle of a fit."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


_FIT_PROCESS: FitProcess | None = None  # this Spark Python worker's fit process


def fit_process(compile_dir: str) -> FitProcess:
    """This worker's fit process, started (or replaced, after a death or a kill) when needed."""
    global _FIT_PROCESS
    if _FIT_PROCESS is None or not _FIT_PROCESS.alive() or _FIT_PROCESS.compile_dir != compile_dir:
        if _FIT_PROCESS is not None:
            _FIT_PROCESS.kill()
        _FIT_PROCESS = FitProcess(compile_dir)
    return _FIT_PROCESS


def group_timeout_s(job: TrainJob, brand: str, markets: list[str]) -> float:
    """The group's limit: each market's ``market_timeout_s`` (with its override) summed; for a brand model,
    whose joint fit uses the job's settings, the job's limit times the number of markets."""
    by_brand = job.training.get("unit") == "brand"

    def limit(market: str) -> float:
        override = {} if by_brand else job.overrides.get(f"{brand}/{market}", {}).get("training", {})
        return float({**job.training, **override}.get("market_timeout_s", DEFAULT_MARKET_TIMEOUT_S))

    return sum(limit(market) for market in markets)


def run_group(rows, job: TrainJob):
    """One group in this worker's fit process; the group's status rows whatever becomes of the process."""
    brand = str(rows["brand"].iloc[0])
    markets = sorted({str(m) for m in rows["market"]})

    def lost(error: str, pid: int | None, seconds: float):
        return _lost_group(rows, job, brand, error, pid, seconds)

    return _guarded(job, _train_group, (rows, job), group_timeout_s(job, brand, markets), f"{brand} {markets}", lost)


def sample_block_function(job: TrainJob) -> Callable:
    """The ``applyInPandas`` function of a brand model's stage 1: a brand's rows and one block of its chains in,
    one ``SAMPLE_SCHEMA`` row out (with ``error`` when the fit process gave no answer)."""

    def sample_block(rows):  # pandas in, pandas out
        brand = str(rows["brand"].iloc[0])
        markets = sorted({str(m) for m in rows["market"]})

        def lost(error: str, pid: int | None, seconds: float):
            return _lost_block(rows, error, pid, seconds)

        timeout = group_timeout_s(job, brand, markets)
        return _guarded(job, _sample_block, (rows, job), timeout, f"{brand} chains", lost)

    return sample_block


def finish_market_function(job: TrainJob) -> Callable:
    """The ``cogroup().applyInPandas`` function of a brand model's stage 2: a market's rows and what the driver
    shipped for it in, its status row out, whatever happens."""

    def finish_market(rows, shipped):  # two pandas frames in, pandas out
        if rows.empty:  # nothing to finish (the driver ships only markets it has rows of)
            return result_frame([])
        brand = str(rows["brand"].iloc[0])
        markets = sorted({str(m) for m in rows["market"]})

        def lost(error: str, pid: int | None, seconds: float):
            return _lost_group(rows, job, brand, error, pid, seconds)

        timeout = group_timeout_s(job, brand, markets)
        return _guarded(job, _finish_market, (rows, shipped, job), timeout, f"{brand} {markets}", lost)

    return finish_market


def _guarded(job: TrainJob, function: Callable, args: tuple, timeout_s: float, what: str, lost: Callable):
    """``function(*args)`` in this worker's fit process, or ``lost(error, pid, seconds)`` when it gives no answer."""
    start = time.perf_counter()
    process = None
    try:
        private_dir(job.compile_dir)  # refused here, with its reason in every row, before a process starts
        process = fit_process(job.compile_dir)
        return process.call(function, args, timeout_s)
    except Exception as exc:
        error = str(exc) if isinstance(exc, FitProcessError) else f"{type(exc).__name__}: {exc}"
        log.error("%s: %s", what, error)
        pid = process.pid if process is not None else os.getpid()
        return lost(error, pid, time.perf_counter() - start)


def _train_group(rows, job: TrainJob):  # in the fit process
    from pipelines.training.group import train_group

    return train_group(rows, job)


def _sample_block(rows, job: TrainJob):  # in the fit process
    from pipelines.training.group import sample_block

    return sample_block(rows, job)


def _finish_market(rows, shipped, job: TrainJob):  # in the fit process
    from pipelines.training.group import finish_market

    return finish_market(rows, shipped, job)


def _lost_block(rows, error: str, pid: int | None, seconds: float):
    """The stage-1 row of a block whose fit process gave no answer: its ``error`` fails the brand's markets
    in stage 2 (which tracks them)."""
    import pandas as pd

    row = {
        "brand": str(rows["brand"].iloc[0]),
        "chain_block": int(rows["chain_block"].iloc[0]),
        "first_chain": int(rows["first_chain"].iloc[0]),
        "chains": int(rows["chains"].iloc[0]),
        "pooled": False,
        "error": error,
        "wall_seconds": seconds,
        "compilations": 0,
        "worker": f"pid {pid}",
    }
    return pd.DataFrame([[row.get(c) for c in SAMPLE_COLUMNS]], columns=SAMPLE_COLUMNS, dtype=object)


def _lost_group(rows, job: TrainJob, brand: str, error: str, pid: int | None, seconds: float):
    """Status rows of a group whose fit process gave no answer: a market already tracked and registered
    (before the death) keeps its row; every other market is ``failed`` with ``error`` and a FAILED child run."""
    from pipelines.training.tracking import registered_run, reuse, track_failure

    results = []
    for market, part in rows.groupby("market", sort=True):
        market = str(market)
        result = initial_result(part, job, brand, market)
        result.update(worker=f"pid {pid}", compilations=0, total_seconds=seconds / rows["market"].nunique())
        try:
            found = registered_run(job, brand, market)
        except Exception:  # the store is unreachable: the market is failed either way
            found = None
        if found is not None:
            reuse(result, found)
        else:
            result["error"] = error
            track_failure(job, brand, market, error)
        results.append(result)
    return result_frame(results)


# --- status rows -------------------------------------------------------------------------------------


def initial_result(rows, job: TrainJob, brand: str, market: str) -> dict:
    """A market's status row before anything is fitted: ``failed``, with its weeks and model name."""
    import pandas as pd

    from pipelines.names import model_name

    return {
        "training_run_id": job.training_run_id,
        "run_date": pd.Timestamp(job.run_date).date(),
        "brand": brand,
        "market": market,
        "status": "failed",
        "weeks": len(rows),
        "gap_weeks": int(rows["target"].isna().sum()),
        "first_week": pd.Timestamp(rows["week_start"].min()).date(),
        "last_week": pd.Timestamp(rows["week_start"].max()).date(),
        "worker": f"pid {os.getpid()}",
        "model_name": model_name(job.model_prefix, brand, market),
    }


def result_frame(results: list[dict]):
    """Status rows as the ``RESULT_SCHEMA`` frame ``applyInPandas`` returns."""
    import pandas as pd

    return pd.DataFrame(
        [[result.get(c) for c in RESULT_COLUMNS] for result in results], columns=RESULT_COLUMNS, dtype=object
    )


# --- test hook ---------------------------------------------------------------------------------------


def inject_test_fault(job: TrainJob, brand: str, market: str) -> None:
    """TEST HOOK, for fault-injection tests only: called in the fit process just before a market is fitted.

    ``MMM_TEST_FAULT`` (the driver's, carried in ``TrainJob.test_fault``, or the fit process's own
    environment) lists ``brand/market=fault`` items, comma-separated: ``exit`` ends the process at once
    (``os._exit(1)``, as a crash or the out-of-memory killer would), ``hang`` sleeps forever (a stuck
    sampler). Example: ``MMM_TEST_FAULT="acme/DE=exit,bolt/US=hang"``. Unset in production: does nothing.
    """
    wanted = job.test_fault or os.environ.get(TEST_FAULT_VARIABLE, "")
    for item in filter(None, (part.strip() for part in wanted.split(","))):
        target, _, fault = item.partition("=")
        if target.strip() != f"{brand}/{market}":
            continue
        log.warning("%s/%s: test fault %r injected (%s)", brand, market, fault, TEST_FAULT_VARIABLE)
        if fault == "exit":
            os._exit(1)
        if fault == "hang":
            while True:
                time.sleep(3600)
        raise ValueError(f"{TEST_FAULT_VARIABLE}: unknown fault {fault!r} (exit or hang)")
