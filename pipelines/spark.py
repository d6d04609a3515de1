"""The Spark session factory: the active session where one exists (Databricks, a cluster), else a
local one with Delta Lake, whose jars Spark fetches from Maven Central on first use."""

from __future__ import annotations

import os
import sys

from pyspark.sql import SparkSession

DELTA_SETTINGS = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}


def get_spark(app_name: str = "mmm", master: str | None = None) -> SparkSession:
    """An active session if there is one; otherwise ``local[*]`` (or ``master``) with Delta.

    Local sessions run Python workers on this interpreter (so they see the project's packages), use few
    shuffle and snapshot partitions, which suits a laptop-sized machine, and give the driver JVM (which
    also hosts the executors) ``MMM_SPARK_DRIVER_MEMORY`` of heap, 4g by default.
    """
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    from delta import configure_spark_with_delta_pip

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    builder = SparkSession.builder.master(master or "local[*]").appName(app_name)
    for key, value in {
        **DELTA_SETTINGS,
        "spark.sql.shuffle.partitions": str(2 * cores),
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.databricks.delta.snapshotPartitions": str(2 * cores),  # default 50: slow for small tables
        "spark.sql.session.timeZone": "UTC",
        # local mode runs the executors inside the driver JVM: give it more than the 1g default
        "spark.driver.memory": os.environ.get("MMM_SPARK_DRIVER_MEMORY", "4g"),
    }.items():
        builder = builder.config(key, value)
    return configure_spark_with_delta_pip(builder).getOrCreate()
