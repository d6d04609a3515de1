"""Raw -> bronze on real Spark and Delta: provenance, idempotent re-ingest, file quarantine."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pipelines.data.ingest import ingest_source
from pipelines.data.synthetic_raw import RawDataConfig, generate_raw_landing
from pipelines.tables import BRONZE, QUARANTINE

pytestmark = pytest.mark.slow
SMALL = RawDataConfig(markets={"acme": ["DE"], "bolt": ["US"]}, weeks=20, campaigns_per_raw_channel=1)


def csv_rows_of(path: Path) -> int:
    """Data rows of a CSV file (lines less the header)."""
    with path.open(encoding="utf-8") as handle:
        return sum(1 for _ in handle) - 1


def test_ingest_is_append_only_idempotent_and_quarantines_bad_files(spark, tmp_path: Path) -> None:
    landing, root = tmp_path / "landing", tmp_path / "lake"
    generate_raw_landing(landing, SMALL, inject=("missing_column", "not_csv"))
    first = ingest_source(spark, root, landing, "spend", batch_id="b1")
    assert sorted(first.files_ingested) == ["acme_batch1.csv", "bolt_batch1.csv"]
    assert set(first.files_quarantined) == {"acme_missing_column.csv", "corrupt.csv"}
    assert "missing columns ['spend']" in first.files_quarantined["acme_missing_column.csv"]
    assert "not a UTF-8 CSV file" in first.files_quarantined["corrupt.csv"]

    bronze = BRONZE["spend"].path(root)
    table = spark.read.format("delta").load(bronze)
    good_rows = sum(csv_rows_of(landing / "spend" / name) for name in first.files_ingested)
    assert table.count() == first.rows_written == good_rows  # nothing lost: every row of a good file
    assert {"_source_file", "_content_hash", "_ingest_time", "_batch_id"} <= set(table.columns)
    assert table.select("_batch_id").distinct().collect()[0][0] == "b1"
    quarantine = spark.read.format("delta").load(QUARANTINE.path(root))
    assert quarantine.count() == 2 and {r.check for r in quarantine.collect()} == {"parse"}

    again = ingest_source(spark, root, landing, "spend", batch_id="b2")
    assert again.files_ingested == [] and sorted(again.files_skipped) == ["acme_batch1.csv", "bolt_batch1.csv"]
    assert sorted(again.files_quarantined_before) == ["acme_missing_column.csv", "corrupt.csv"]  # known by hash
    assert spark.read.format("delta").load(bronze).count() == first.rows_written  # re-ingest is a no-op
    assert spark.read.format("delta").load(QUARANTINE.path(root)).count() == 2
    operations = [r.operation for r in sorted(BRONZE["spend"].history(spark, root), key=lambda r: r.version)]
    assert operations == ["WRITE"]  # append-only: the run's new files in one write, the rerun writes nothing
    properties = {r.key: r.value for r in spark.sql(f"SHOW TBLPROPERTIES delta.`{bronze}`").collect()}
    assert properties["delta.dataSkippingNumIndexedCols"] == "0"  # read whole by silver: no column statistics


def test_parquet_files_are_ingested_as_raw_strings_and_a_fake_parquet_is_quarantined(spark, tmp_path: Path) -> None:
    landing, root = tmp_path / "landing", tmp_path / "lake"
    (landing / "sales").mkdir(parents=True)
    sales = pd.DataFrame({"date": ["2024-01-01", "2024-01-02"], "brand": "acme", "market": "DE", "revenue": [1.5, 2.0]})
    sales.to_parquet(landing / "sales" / "acme.parquet")
    (landing / "sales" / "broken.parquet").write_text("date,brand\n")
    (landing / "sales" / "notes.txt").write_text("hello")
    report = ingest_source(spark, root, landing, "sales", extra_columns=["revenue"])  # the brands' measures
    assert report.files_ingested == ["acme.parquet"] and report.rows_written == 2
    assert report.files_quarantined["broken.parquet"].startswith("not a Parquet file")
    assert report.files_quarantined["notes.txt"].startswith("unsupported file type '.txt'")
    bronze = spark.read.format("delta").load(BRONZE["sales"].path(root))
    assert dict(bronze.dtypes)["revenue"] == "string"  # bronze keeps raw strings; silver types them
    assert sorted(r.revenue for r in bronze.collect()) == ["1.5", "2.0"]
