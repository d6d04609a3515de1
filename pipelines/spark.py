"""The Spark session factory: the active session where one exists (Databricks, a cluster), else a
local one with Delta Lake, whose jars Spark fetches from Maven Central on first use. A local session's
driver listens on 127.0.0.1 only, not on every interface of the machine."""

from __future__ import annotations

import os
import re
import sys

from pyspark.sql import SparkSession

DELTA_SETTINGS = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}
LOOPBACK = "127.0.0.1"


def is_loopback_master(master: str) -> bool:
    """Whether ``master`` runs on this machine only: ``local``, ``local[...]``, ``local-cluster[...]``, or a
    cluster URL on 127.0.0.1 (or localhost)."""
    return (
        master == "local"
        or master.startswith(("local[", "local-cluster["))
        or re.match(r"^[\w+.-]+://(127\.0\.0\.1|localhost)(:|/|$)", master) is not None
    )


def session_config(master: str, cores: int, driver_memory: str = "4g") -> dict[str, str]:
    """The settings of a session this factory builds for ``master`` on a machine with ``cores`` cores.

    On a local (or 127.0.0.1) master the driver binds to and advertises 127.0.0.1; a remote master keeps
    the addresses its cluster configures, since its executors must reach the driver.
    """
    config = {
        **DELTA_SETTINGS,
        "spark.sql.shuffle.partitions": str(2 * cores),
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.databricks.delta.snapshotPartitions": str(2 * cores),  # default 50: slow for small tables
        "spark.sql.session.timeZone": "UTC",
        # local mode runs the executors inside the driver JVM: give it more than the 1g default
        "spark.driver.memory": driver_memory,
    }
    if is_loopback_master(master):
        config.update({"spark.driver.bindAddress": LOOPBACK, "spark.driver.host": LOOPBACK})
    return config


def get_spark(app_name: str = "mmm", master: str | None = None) -> SparkSession:
    """An active session if there is one; otherwise ``local[*]`` (or ``master``) with Delta.

    Local sessions run Python workers on this interpreter (so they see the project's packages), use few
    shuffle and snapshot partitions, which suits a laptop-sized machine, give the driver JVM (which
    also hosts the executors) ``MMM_SPARK_DRIVER_MEMORY`` of heap, 4g by default, and listen on
    127.0.0.1 only (``session_config``).
    """
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    from delta import configure_spark_with_delta_pip

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    master = master or "local[*]"
    builder = SparkSession.builder.master(master).appName(app_name)
    for key, value in session_config(master, cores, os.environ.get("MMM_SPARK_DRIVER_MEMORY", "4g")).items():
        builder = builder.config(key, value)
    return configure_spark_with_delta_pip(builder).getOrCreate()
