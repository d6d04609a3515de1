"""Ingest: raw landing files -> bronze Delta tables (append-only), with file-level quarantine.

Every row keeps its raw values as strings, plus the source file, the file's content hash, the ingest
time and the batch id. A file whose content hash is already in bronze is skipped, so re-ingesting is
a no-op. A file that is not UTF-8 CSV, or that lacks a required column, goes to the quarantine table
whole, with the reason; the other files flow on. Typing and row-level checks happen in silver.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

REQUIRED_COLUMNS = {
    "spend": ["date", "brand", "market", "channel", "campaign", "spend"],
    "sales": ["date", "brand", "market"],
    "controls": ["date", "brand", "market", "control", "value"],
    "lift_tests": ["brand", "market", "channel", "start", "end", "spend_delta", "lift", "lift_se"],
}
BRONZE_TABLES = {"spend": "raw_spend", "sales": "raw_sales", "controls": "raw_controls", "lift_tests": "lift_tests"}
QUARANTINE_SCHEMA = (
    "table string, source_file string, record string, check string, reason string, batch_id string, "
    "quarantined_at timestamp"
)


@dataclass
class IngestReport:
    """What one ingest of one source did."""

    source: str
    files_ingested: list[str] = field(default_factory=list)
    files_skipped: list[str] = field(default_factory=list)  # already in bronze (same content hash)
    files_quarantined: dict[str, str] = field(default_factory=dict)  # file -> reason
    rows_in: int = 0
    rows_written: int = 0
    rows_quarantined: int = 0


def table_path(root: str | Path, layer: str, name: str) -> str:
    return str(Path(root) / layer / name)


def content_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def header_problem(path: Path, required: list[str]) -> str | None:
    """Why the file cannot be read as CSV with the required columns, or None if it can."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            header = next(csv.reader(handle), None)
            for _ in handle:  # decode the whole file: a binary file fails here, not later in Spark
                pass
    except UnicodeDecodeError as exc:
        return f"not a UTF-8 CSV file: {exc.reason} at byte {exc.start}"
    if not header:
        return "empty file: no header row"
    missing = [c for c in required if c not in header]
    if missing:
        return f"missing columns {missing}; the file has {header}"
    return None


def ingest_source(
    spark: SparkSession, root: str | Path, landing: str | Path, source: str, batch_id: str | None = None
) -> IngestReport:
    """Append the new files of ``landing/<source>/`` to bronze; quarantine unreadable ones."""
    if source not in REQUIRED_COLUMNS:
        raise ValueError(f"unknown source {source!r}; choose one of {sorted(REQUIRED_COLUMNS)}")
    batch_id = batch_id or uuid.uuid4().hex[:12]
    report = IngestReport(source=source)
    bronze = table_path(root, "bronze", BRONZE_TABLES[source])
    known = _known_hashes(spark, bronze)
    quarantine_rows = []
    for path in sorted((Path(landing) / source).glob("*.csv")):
        digest = content_hash(path)
        if digest in known:
            report.files_skipped.append(path.name)
            continue
        problem = header_problem(path, REQUIRED_COLUMNS[source])
        if problem is not None:
            report.files_quarantined[path.name] = problem
            quarantine_rows.append((BRONZE_TABLES[source], path.name, None, "parse", problem, batch_id, _now()))
            continue
        frame = spark.read.csv(str(path), header=True, inferSchema=False)  # raw strings, typed in silver
        frame = (
            frame.withColumn("_source_file", F.lit(path.name))
            .withColumn("_content_hash", F.lit(digest))
            .withColumn("_ingest_time", F.lit(_now()))
            .withColumn("_batch_id", F.lit(batch_id))
        )
        rows = frame.count()
        frame.write.format("delta").mode("append").option("mergeSchema", "true").save(bronze)
        report.files_ingested.append(path.name)
        report.rows_in += rows
        report.rows_written += rows
        known.add(digest)
    if quarantine_rows:
        write_quarantine(spark, root, spark.createDataFrame(quarantine_rows, QUARANTINE_SCHEMA))
        report.rows_quarantined += len(quarantine_rows)
    return report


def write_quarantine(spark: SparkSession, root: str | Path, rows: DataFrame) -> None:
    """Add rows to the quarantine table, once: a rerun that rejects the same row again adds nothing."""
    from delta.tables import DeltaTable

    path = table_path(root, "quality", "quarantine")
    rows = rows.dropDuplicates(["table", "source_file", "record", "check"])
    if not DeltaTable.isDeltaTable(spark, path):
        rows.write.format("delta").save(path)
        return
    key = " AND ".join(f"t.{c} <=> s.{c}" for c in ("table", "source_file", "record", "check"))
    DeltaTable.forPath(spark, path).alias("t").merge(rows.alias("s"), key).whenNotMatchedInsertAll().execute()


def _known_hashes(spark: SparkSession, bronze: str) -> set[str]:
    from delta.tables import DeltaTable

    if not DeltaTable.isDeltaTable(spark, bronze):
        return set()
    return {r[0] for r in spark.read.format("delta").load(bronze).select("_content_hash").distinct().collect()}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)
