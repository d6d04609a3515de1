"""Ingest: raw landing files -> bronze Delta tables (append-only), with file-level quarantine.

Every row keeps its raw values as strings, plus the source file, the file's content hash, the ingest
time and the batch id. A file whose content hash is already in bronze is skipped, so re-ingesting is
a no-op. Files are CSV or Parquet. A file that cannot be read as either, or that lacks a required
column, goes to the quarantine table whole, with the reason; the other files flow on. Typing and
record-level checks happen in silver.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pipelines.tables import BRONZE, QUARANTINE, Table, write_quarantine

REQUIRED_COLUMNS = {
    "spend": ["date", "brand", "market", "channel", "campaign", "spend"],
    "sales": ["date", "brand", "market"],
    "controls": ["date", "brand", "market", "control", "value"],
    "lift_tests": ["brand", "market", "channel", "start", "end", "spend_delta", "lift", "lift_se"],
}
READERS: dict[str, Callable[[SparkSession, str], DataFrame]] = {
    ".csv": lambda spark, path: spark.read.csv(path, header=True, inferSchema=False),
    ".parquet": lambda spark, path: spark.read.parquet(path),
}


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


def scan_file(path: Path) -> tuple[str, str | None]:
    """The file's content hash, and why it cannot be ingested (None if it is UTF-8 text or Parquet).

    One chunked pass: a large file is never held in memory, and a binary file posing as CSV fails
    here with the decoder's reason rather than later inside Spark.
    """
    digest, decoder, problem = hashlib.sha256(), codecs.getincrementaldecoder("utf-8")(), None
    offset = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            if problem is None and path.suffix == ".csv":
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as exc:
                    problem = f"not a UTF-8 CSV file: {exc.reason} at byte {offset + exc.start}"
            offset += len(chunk)
    return digest.hexdigest(), problem


def header_problem(path: Path, required: list[str]) -> str | None:
    """Why the file lacks a header with the required columns, or None if it has one."""
    if path.suffix == ".parquet":
        try:
            header = pq.read_schema(path).names
        except (OSError, ValueError) as exc:  # pyarrow raises ArrowInvalid (a ValueError) for non-Parquet bytes
            return f"not a Parquet file: {exc}"
    else:
        with path.open(newline="", encoding="utf-8") as handle:
            header = next(csv.reader(handle), None)
    if not header:
        return "empty file: no header row"
    missing = [c for c in required if c not in header]
    if missing:
        return f"missing columns {missing}; the file has {header}"
    return None


def ingest_source(
    spark: SparkSession, root: str | Path, landing: str | Path, source: str, batch_id: str | None = None
) -> IngestReport:
    """Append the new files of ``landing/<source>/`` to bronze; quarantine unreadable ones whole."""
    if source not in REQUIRED_COLUMNS:
        raise ValueError(f"unknown source {source!r}; choose one of {sorted(REQUIRED_COLUMNS)}")
    batch_id = batch_id or uuid.uuid4().hex[:12]
    report = IngestReport(source=source)
    bronze = BRONZE[source]
    known = _known_hashes(spark, root, bronze)
    quarantine_rows = []
    folder = Path(landing) / source
    for path in sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []:
        digest, problem = scan_file(path)
        if digest in known:
            report.files_skipped.append(path.name)
            continue
        if path.suffix not in READERS:
            problem = f"unsupported file type {path.suffix or '<none>'!r}; landing files are .csv or .parquet"
        problem = problem or header_problem(path, REQUIRED_COLUMNS[source])
        if problem is not None:
            report.files_quarantined[path.name] = problem
            quarantine_rows.append((bronze.name, path.name, None, 1, "parse", problem, batch_id, _now()))
            continue
        frame = READERS[path.suffix](spark, str(path))
        frame = frame.select(
            *[F.col(c).cast("string") for c in frame.columns],  # raw strings; silver types them
            F.lit(path.name).alias("_source_file"),
            F.lit(digest).alias("_content_hash"),
            F.lit(_now()).alias("_ingest_time"),
            F.lit(batch_id).alias("_batch_id"),
        )
        frame.write.format("delta").mode("append").option("mergeSchema", "true").save(bronze.path(root))
        rows = int(bronze.latest_commit(spark, root)["operationMetrics"]["numOutputRows"])  # no second scan
        report.files_ingested.append(path.name)
        report.rows_in += rows
        report.rows_written += rows
        known.add(digest)
    if quarantine_rows:
        write_quarantine(spark, root, spark.createDataFrame(quarantine_rows, QUARANTINE.schema))
        report.rows_quarantined += len(quarantine_rows)
    return report


def _known_hashes(spark: SparkSession, root: str | Path, bronze: Table) -> set[str]:
    if not bronze.exists(spark, root):
        return set()
    return {r[0] for r in bronze.load(spark, root).select("_content_hash").distinct().collect()}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)
