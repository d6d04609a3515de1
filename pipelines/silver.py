"""Silver: typed, checked, weekly. Bad raw rows go to quarantine with the check and the reason.

Spend rows are typed from bronze's raw strings, checked row by row, mapped from raw channel names to
model channels (the brand's taxonomy), and summed per brand, market, Monday week and model channel.
The result is MERGEd into ``weekly_spend`` on its keys, so re-running changes no row counts and late
data for a past week updates that week.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from pipelines.ingest import table_path, write_quarantine

SPEND_KEY = ["date", "brand", "market", "channel", "campaign"]
WEEKLY_SPEND_KEY = ["brand", "market", "week_start", "channel"]


@dataclass
class StageReport:
    """Rows in, rows that passed, rows quarantined (in = passed + quarantined), weekly rows written."""

    table: str
    rows_in: int
    rows_passed: int
    rows_quarantined: int
    rows_out: int


def spend_row_checks(taxonomy: dict[str, str], today: dt.date) -> list[tuple[str, Column, Column]]:
    """(check, failing condition, reason) in the order they are applied; a row fails on the first."""
    known = list(taxonomy)
    return [
        (
            "parse_date",
            F.col("day").isNull(),
            F.concat(F.lit("date is not a date: "), F.coalesce(F.col("date"), F.lit("<empty>"))),
        ),
        ("no_future_dates", F.col("day") > F.lit(today), F.concat(F.lit("date is in the future: "), F.col("date"))),
        (
            "spend_not_null",
            F.col("amount").isNull() | F.isnan("amount"),
            F.concat(F.lit("spend is missing or not a number: "), F.coalesce(F.col("spend"), F.lit("<empty>"))),
        ),
        ("spend_non_negative", F.col("amount") < 0, F.concat(F.lit("spend is negative: "), F.col("spend"))),
        (
            "known_channel",
            ~F.col("channel").isin(known),
            F.concat(F.lit("channel is not in the taxonomy: "), F.coalesce(F.col("channel"), F.lit("<empty>"))),
        ),
        ("unique_key", F.col("_copy") > 1, F.lit("duplicate row: same date, brand, market, channel and campaign")),
    ]


def build_weekly_spend(
    spark: SparkSession,
    root: str | Path,
    taxonomy: dict[str, str],
    today: dt.date | None = None,
    batch_id: str = "silver",
) -> StageReport:
    """bronze.raw_spend -> silver.weekly_spend (MERGE) + quarantine. ``taxonomy``: raw name -> model channel."""
    today = today or dt.date.today()
    raw = spark.read.format("delta").load(table_path(root, "bronze", "raw_spend"))
    typed = (
        raw.withColumn("day", F.try_to_date("date", "yyyy-MM-dd"))
        .withColumn("amount", F.col("spend").try_cast("double"))
        .withColumn(
            "_copy", F.row_number().over(Window.partitionBy(*SPEND_KEY).orderBy("_ingest_time", "_source_file"))
        )
    )
    failed = F.lit(None).cast("string")
    reason = F.lit(None).cast("string")
    for check, condition, why in reversed(spend_row_checks(taxonomy, today)):
        failed = F.when(condition, F.lit(check)).otherwise(failed)
        reason = F.when(condition, why).otherwise(reason)
    checked = typed.withColumn("_check", failed).withColumn("_reason", reason).cache()
    rows_in = checked.count()
    bad = checked.filter(F.col("_check").isNotNull())
    rows_quarantined = bad.count()
    if rows_quarantined:
        write_quarantine(spark, root, _as_quarantine(bad, raw.columns, batch_id))
    mapping = spark.createDataFrame(list(taxonomy.items()), "channel string, model_channel string")
    weekly = (
        checked.filter(F.col("_check").isNull())
        .join(F.broadcast(mapping), "channel")
        .groupBy("brand", "market", F.date_trunc("week", "day").cast("date").alias("week_start"), "model_channel")
        .agg(F.sum("amount").alias("spend"))
        .withColumnRenamed("model_channel", "channel")
    )
    rows_out = merge(spark, weekly, table_path(root, "silver", "weekly_spend"), WEEKLY_SPEND_KEY)
    checked.unpersist()
    return StageReport("weekly_spend", rows_in, rows_in - rows_quarantined, rows_quarantined, rows_out)


def merge(spark: SparkSession, frame: DataFrame, path: str, keys: list[str]) -> int:
    """Upsert ``frame`` into the Delta table at ``path`` on ``keys``; returns the table's row count."""
    from delta.tables import DeltaTable

    if not DeltaTable.isDeltaTable(spark, path):
        frame.write.format("delta").save(path)
    else:
        condition = " AND ".join(f"t.{k} = s.{k}" for k in keys)
        (
            DeltaTable.forPath(spark, path)
            .alias("t")
            .merge(frame.alias("s"), condition)
            .whenMatchedUpdateAll()
            .whenNotMatchedInsertAll()
            .execute()
        )
    return spark.read.format("delta").load(path).count()


def _as_quarantine(bad: DataFrame, raw_columns: list[str], batch_id: str) -> DataFrame:
    return bad.select(
        F.lit("raw_spend").alias("table"),
        F.col("_source_file").alias("source_file"),
        F.to_json(F.struct(*[c for c in raw_columns if not c.startswith("_")])).alias("record"),
        F.col("_check").alias("check"),
        F.col("_reason").alias("reason"),
        F.lit(batch_id).alias("batch_id"),
        F.current_timestamp().cast("timestamp").alias("quarantined_at"),
    )
