"""Where the Delta tables live, and the two ways this project writes them.

- ``sync_merge`` makes a derived table (silver, gold) equal to a freshly computed frame through one
  MERGE: rows whose values changed are updated, new rows inserted, vanished rows deleted. Unchanged
  rows are not rewritten, so a rerun changes no row counts and late data touches only its weeks.
- ``insert_new`` adds rows that are not there yet (quarantine, dq results): reruns add nothing.
"""

from __future__ import annotations

from pathlib import Path

from pyspark.sql import DataFrame, SparkSession

QUARANTINE_SCHEMA = (
    "table string, source_file string, record string, occurrence int, check string, reason string, "
    "batch_id string, quarantined_at timestamp"
)
QUARANTINE_KEY = ("table", "source_file", "record", "occurrence", "check")


def table_path(root: str | Path, layer: str, name: str) -> str:
    return str(Path(root) / layer / name)


def is_delta(spark: SparkSession, path: str) -> bool:
    from delta.tables import DeltaTable

    return DeltaTable.isDeltaTable(spark, path)


def latest_commit(spark: SparkSession, path: str):
    """The Delta table's newest history entry (version, operation, operationMetrics...)."""
    from delta.tables import DeltaTable

    return DeltaTable.forPath(spark, path).history(1).collect()[0]


MERGE_CHANGE_METRICS = ("numTargetRowsInserted", "numTargetRowsUpdated", "numTargetRowsDeleted")


def data_version(spark: SparkSession, path: str) -> int:
    """The version of the table's last commit that changed rows: a MERGE that changed nothing does not count.

    Two reads at the same data version see the same rows, whatever no-op commits came between them.
    """
    from delta.tables import DeltaTable

    history = DeltaTable.forPath(spark, path).history().select("version", "operation", "operationMetrics").collect()
    for entry in history:  # newest first
        metrics = entry.operationMetrics or {}
        names = MERGE_CHANGE_METRICS if entry.operation == "MERGE" else ("numOutputRows",)
        if entry.operation != "MERGE" or sum(int(metrics.get(name) or 0) for name in names):
            return int(entry.version)
    return int(history[-1].version)


def sync_merge(spark: SparkSession, frame: DataFrame, path: str, keys: list[str], values: list[str]) -> int:
    """Make the table at ``path`` equal ``frame`` (by ``keys``) through one MERGE; returns its row count."""
    from delta.tables import DeltaTable

    if not is_delta(spark, path):
        frame.write.format("delta").save(path)
    else:
        on = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys)
        changed = " OR ".join(f"NOT (t.`{v}` <=> s.`{v}`)" for v in values)
        (
            DeltaTable.forPath(spark, path)
            .alias("t")
            .merge(frame.alias("s"), on)
            .withSchemaEvolution()
            .whenMatchedUpdateAll(condition=changed)
            .whenNotMatchedInsertAll()
            .whenNotMatchedBySourceDelete()
            .execute()
        )
    return spark.read.format("delta").load(path).count()


def insert_new(spark: SparkSession, frame: DataFrame, path: str, keys: tuple[str, ...]) -> None:
    """Insert the rows of ``frame`` whose key is not in the table yet (null-safe); rerunning adds nothing."""
    from delta.tables import DeltaTable

    frame = frame.dropDuplicates(list(keys))
    if not is_delta(spark, path):
        frame.write.format("delta").save(path)
        return
    on = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys)
    table = DeltaTable.forPath(spark, path).alias("t")
    table.merge(frame.alias("s"), on).withSchemaEvolution().whenNotMatchedInsertAll().execute()  # new columns: added


def ensure_table(spark: SparkSession, path: str, schema: str) -> None:
    """Create an empty Delta table at ``path`` if there is none, so readers never meet a missing table."""
    if not is_delta(spark, path):
        spark.createDataFrame([], schema).write.format("delta").save(path)


def write_quarantine(spark: SparkSession, root: str | Path, rows: DataFrame) -> None:
    """Add rejected records to ``quality/quarantine``, once each."""
    insert_new(spark, rows, table_path(root, "quality", "quarantine"), QUARANTINE_KEY)
