"""How the training job's stages map their groups onto Spark tasks: one group, one shuffle partition."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pyspark.sql import SparkSession
from pyspark.sql import functions as F


def partition_keys(spark: SparkSession, count: int) -> list[int]:
    """``count`` integer keys, the i-th of which Spark's hash partitioning puts in shuffle partition i of ``count``.

    Grouped by such a key, every group is a Spark task of its own: hashed brand or market names could put
    both chain blocks of a brand in one partition (one task sampling them one after the other).
    """
    if count < 1:
        return []
    ids = spark.range(0, 64 * count).select(F.col("id").cast("int").alias("key"))
    found = ids.groupBy(F.expr(f"pmod(hash(key), {count})").alias("partition")).agg(F.min("key").alias("key"))
    keys = {row.partition: row.key for row in found.collect()}
    if len(keys) < count:  # (1 - 1/count) ** (64 * count) < e ** -63 for any count
        raise RuntimeError(f"no key found for {count - len(keys)} of {count} shuffle partitions")
    return [keys[partition] for partition in range(count)]


@contextmanager
def one_task_per_group(spark: SparkSession, groups: int) -> Iterator[None]:
    """One shuffle partition per group, never coalesced, for the stage run inside; the settings restored after."""
    names = ("spark.sql.shuffle.partitions", "spark.sql.adaptive.coalescePartitions.enabled")
    saved = {name: spark.conf.get(name) for name in names}
    try:
        spark.conf.set("spark.sql.shuffle.partitions", str(max(groups, 1)))
        spark.conf.set("spark.sql.adaptive.coalescePartitions.enabled", "false")
        yield
    finally:
        for name, value in saved.items():
            spark.conf.set(name, value)
