"""The Spark session factory: the active session where one exists (Databricks, a cluster), a Spark
Connect session for an ``sc://`` address, else a classic session (``local[*]`` or a cluster master) with
Delta Lake, whose jars Spark fetches from Maven Central on first use. A local session's driver listens
on 127.0.0.1 only, not on every interface of the machine.

The platform's jobs use only what Spark Connect has (DataFrames, SQL, the catalog, ``applyInPandas``;
no ``sparkContext``, RDDs or JVM objects), so the same code runs on a laptop, a standalone cluster,
Databricks classic and standard-access clusters, and Databricks serverless.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager

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


def connect_config(cores: int) -> dict[str, str]:
    """The session settings a Spark Connect client may set (SQL settings; the server owns the rest)."""
    return {
        "spark.sql.shuffle.partitions": str(2 * cores),
        "spark.sql.session.timeZone": "UTC",
    }


def session_config(master: str, cores: int, driver_memory: str = "4g") -> dict[str, str]:
    """The settings of a session this factory builds for ``master`` on a machine with ``cores`` cores.

    On a local (or 127.0.0.1) master the driver binds to and advertises 127.0.0.1; a remote master keeps
    the addresses its cluster configures, since its executors must reach the driver.
    """
    config = {
        **DELTA_SETTINGS,
        **connect_config(cores),
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        # Delta replays a table's log (since its last checkpoint) in this many tasks, each generating code for
        # Delta's action schema: one task suits this platform's logs, which checkpoints keep short. Default 50;
        # 1 against 4 took a weekly increment from 27.7-29.9 s to 24.6-27.2 s, alternating in one session.
        "spark.databricks.delta.snapshotPartitions": "1",
        # Compiled classes Spark keeps for reuse (default 100). A weekly run generates about 290 distinct ones,
        # so the default cache recompiled about 500 per increment; at 1000 a warm increment compiles 6-14.
        "spark.sql.codegen.cache.maxEntries": "1000",
        # local mode runs the executors inside the driver JVM: give it more than the 1g default
        "spark.driver.memory": driver_memory,
    }
    if is_loopback_master(master):
        config.update({"spark.driver.bindAddress": LOOPBACK, "spark.driver.host": LOOPBACK})
    return config


MASTER_VARIABLE = "MMM_SPARK_MASTER"  # the master when no --master is given (Prefect's flow, a scheduler)


def is_connect_address(master: str) -> bool:
    """Whether ``master`` is a Spark Connect server (``sc://host:port``) rather than a cluster master."""
    return master.startswith("sc://")


def get_spark(app_name: str = "mmm", master: str | None = None) -> SparkSession:
    """An active session if there is one; otherwise one for ``master`` (default ``$MMM_SPARK_MASTER``, then
    ``$SPARK_REMOTE`` for Spark Connect, then ``local[*]``).

    A Spark Connect session (``sc://...``) gets this platform's SQL settings (UTC, few shuffle partitions);
    the server brings Delta, as a Databricks one does.

    Local sessions run Python workers on this interpreter (so they see the project's packages), use few
    shuffle and snapshot partitions, which suits a laptop-sized machine, keep the code Spark generates for
    reuse by later jobs rather than compiling it again, give the driver JVM (which also hosts the executors)
    ``MMM_SPARK_DRIVER_MEMORY`` of heap, 4g by default, and listen on 127.0.0.1 only (``session_config``).
    """
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    master = master or os.environ.get(MASTER_VARIABLE) or os.environ.get("SPARK_REMOTE") or "local[*]"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if is_connect_address(master):
        builder = SparkSession.builder.remote(master).appName(app_name)
        for key, value in connect_config(cores).items():
            builder = builder.config(key, value)
        return builder.getOrCreate()
    from delta import configure_spark_with_delta_pip

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.master(master).appName(app_name)
    for key, value in session_config(master, cores, os.environ.get("MMM_SPARK_DRIVER_MEMORY", "4g")).items():
        builder = builder.config(key, value)
    return configure_spark_with_delta_pip(builder).getOrCreate()


@contextmanager
def sql_conf(spark: SparkSession, key: str, value: str) -> Iterator[None]:
    """The SQL setting ``key`` set to ``value`` for the block, then restored (unset if it was not set)."""
    before = spark.conf.get(key, None)
    spark.conf.set(key, value)
    try:
        yield
    finally:
        if before is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, before)
