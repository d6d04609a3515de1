"""Each group of a training stage gets a Spark task of its own, so a brand's chain blocks sample in parallel.

The two-stage brand training itself is checked by ``test_driver.py`` on the lake that module builds: its
brand-unit test (chains sampled in two tasks, merged, a version per market) and its failed-sampling test.
"""

from __future__ import annotations

from pyspark.sql import functions as F

from pipelines.training.tasks import one_task_per_group, partition_keys


def test_partition_keys_put_each_group_in_a_shuffle_partition_of_its_own(spark) -> None:
    keys = partition_keys(spark, 7)
    assert len(set(keys)) == 7
    with one_task_per_group(spark, 7):
        grouped = spark.createDataFrame([(k,) for k in keys], "task int").groupBy("task").count()
        partitions = grouped.select("task", F.spark_partition_id().alias("partition")).collect()
    assert {row.task: row.partition for row in partitions} == {key: index for index, key in enumerate(keys)}
