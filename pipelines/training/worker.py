"""What a Spark Python worker runs for each group of ``applyInPandas``. Standard library only at the top.

Spark unpickles the group function in each Python worker, which imports this module. Before anything imports
PyTensor or JAX, the worker gets its own PyTensor compile directory (compilation is not safe across
processes sharing one) and one XLA device (the executor's cores are used by running one market per
task, in parallel). Spark reuses Python workers, so a worker compiles each model structure once and
then only samples: later markets of the same structure pay no compile.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from pipelines.training.contract import TrainJob


def isolate_worker(compile_dir: str) -> None:
    """Own PyTensor compile directory and one XLA device, if PyTensor and JAX are not loaded yet."""
    if "pytensor" not in sys.modules:
        flags = [f for f in os.environ.get("PYTENSOR_FLAGS", "").split(",") if f and not f.startswith("compiledir=")]
        os.environ["PYTENSOR_FLAGS"] = ",".join([*flags, f"compiledir={compile_dir}/worker-{os.getpid()}"])
    if "jax" not in sys.modules:
        os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=1"


def fit_group_function(job: TrainJob) -> Callable:
    """The ``applyInPandas`` function: one group's rows in, one status row out, whatever happens.

    A plain one-argument closure, because Spark tells ``f(rows)`` from ``f(key, rows)`` by counting
    the function's arguments.
    """

    def fit_group(rows):  # pandas in, pandas out
        isolate_worker(job.compile_dir)
        from pipelines.training.group import train_group

        return train_group(rows, job)

    return fit_group
