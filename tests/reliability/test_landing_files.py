"""Landing files: each file is either ingested (its rows in bronze) or quarantined whole with a reason.

Every case puts one bad (or awkward) file beside one good file in ``spend/``; the good file always flows
on, and a second ingest of the same folder neither fails nor adds a row anywhere.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.data import ingest
from pipelines.data.ingest import ingest_source
from pipelines.tables import BRONZE, QUARANTINE

pytestmark = pytest.mark.slow
HEADER = "date,brand,market,channel,campaign,spend"
GOOD = f"{HEADER}\n2024-01-01,acme,DE,tv_linear,c1,10.0\n2024-01-02,acme,DE,tv_linear,c1,11.0\n"
ROW = "2024-02-01,acme,DE,fb_ads,c2,5.0\n"
DAYS = [dt.date(2024, 3, 1), dt.date(2024, 3, 2)]


def frame(date_column: object) -> pa.Table:
    """Two spend rows whose ``date`` column is ``date_column`` (an Arrow array)."""
    strings = {c: pa.array(v) for c, v in {"brand": ["acme"] * 2, "market": ["DE"] * 2, "channel": ["tv"] * 2}.items()}
    return pa.table({"date": date_column, **strings, "campaign": pa.array(["c3"] * 2), "spend": pa.array([1.0, 2.0])})


def text(content: str | bytes) -> Callable[[Path], Path]:
    def build(folder: Path, name: str = "bad.csv") -> Path:
        path = folder / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
        return path

    return build


def parquet(table: pa.Table, name: str = "bad.parquet") -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        pq.write_table(table, folder / name)
        return folder / name

    return build


def spark_folder(with_parts: bool) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        path = folder / "spend_2024.parquet"
        path.mkdir()
        (path / "_SUCCESS").write_bytes(b"")
        if with_parts:
            pq.write_table(frame(pa.array(DAYS)).slice(0, 1), path / "part-00000-abc.snappy.parquet")
            pq.write_table(frame(pa.array(DAYS)).slice(1, 1), path / "part-00001-abc.snappy.parquet")
            (path / "_committed_123").write_text("{}")  # Databricks' commit marker: not data
        return path

    return build


def other_folder(folder: Path) -> Path:
    (folder / "archive").mkdir()
    (folder / "archive" / "old.csv").write_text(GOOD)
    return folder / "archive"


def pandas_parquet(folder: Path) -> Path:
    frame(pa.array(DAYS)).to_pandas().assign(date=pd.to_datetime(DAYS)).to_parquet(folder / "bad.parquet")
    return folder / "bad.parquet"


TRUNCATED = (f"{HEADER}\n" + ROW.replace("c2", "caf\u00e9")).encode("utf-8")
TRUNCATED = TRUNCATED[: TRUNCATED.index("\u00e9".encode()) + 1]  # cut inside the two-byte é

# id -> (build the file, extra columns allowed, the reason's substrings (None: ingested), rows it adds)
CASES = {
    "delta_refuses_column_name": (
        text(f"{HEADER},cost (EUR)\n{ROW[:-1]},1\n"),
        ["cost (EUR)"],
        ["Delta refuses", "'cost (EUR)'"],
        0,
    ),
    "provenance_column": (text(f"{HEADER},_batch_id\n{ROW[:-1]},x\n"), [], ["'_batch_id'", "provenance"], 0),
    "provenance_column_other_case": (text(f"{HEADER},_Source_File\n{ROW[:-1]},x\n"), [], ["'_Source_File'"], 0),
    "header_over_128kb": (text(f"{HEADER},{'x' * 140_000}\n{ROW[:-1]},1\n"), [], ["header row longer than 128 KB"], 0),
    "many_columns_over_128kb": (
        text(HEADER + "".join(f",c{i}" for i in range(30_000)) + "\n"),
        [],
        ["longer than 128 KB"],
        0,
    ),
    "spark_parquet_folder": (spark_folder(with_parts=True), [], None, 2),
    "spark_parquet_folder_empty": (spark_folder(with_parts=False), [], ["a Parquet folder without data files"], 0),
    "folder_not_parquet": (other_folder, [], ["a folder, not a file"], 0),
    "unexpected_column": (text(f"{HEADER},currency\n{ROW[:-1]},EUR\n"), [], ["unexpected columns ['currency']"], 0),
    "declared_extra_column": (text(f"{HEADER},currency\n{ROW[:-1]},EUR\n"), ["currency"], None, 1),
    "optional_impressions": (text(f"{HEADER},impressions\n{ROW[:-1]},1000\n"), [], None, 1),
    "utf8_bom": (text(f"\ufeff{HEADER}\n{ROW}"), [], None, 1),
    "parquet_dates": (parquet(frame(pa.array(DAYS))), [], None, 2),
    "parquet_midnight_timestamps_us": (parquet(frame(pa.array(pd.to_datetime(DAYS), pa.timestamp("us")))), [], None, 2),
    "parquet_timestamps_ns_utc": (
        parquet(frame(pa.array(pd.to_datetime(DAYS), pa.timestamp("ns", "UTC")))),
        [],
        None,
        2,
    ),
    "pandas_parquet_timestamps": (pandas_parquet, [], None, 2),  # pandas writes nanosecond timestamps
    "truncated_utf8": (text(TRUNCATED), [], ["not a UTF-8 CSV file", "ends inside a character"], 0),
    "duplicate_header": (text(f"{HEADER},spend\n{ROW[:-1]},1\n"), [], ["duplicate column spend"], 0),
    "duplicate_header_other_case": (text(f"{HEADER},Spend\n{ROW[:-1]},1\n"), ["Spend"], ["duplicate column Spend"], 0),
    "empty_file": (text(""), [], ["empty file"], 0),
    "unnamed_column": (text(f"{HEADER},\n{ROW[:-1]},1\n"), [], ["without a name at positions [7]"], 0),
    "spark_fails": (
        text(f"{HEADER}\n{ROW}"),
        [],
        ["could not be ingested: RuntimeError: the reader broke"],
        0,
    ),
}
EXPECTED_DATES = {
    "parquet_dates",
    "parquet_midnight_timestamps_us",
    "parquet_timestamps_ns_utc",
    "pandas_parquet_timestamps",
    "spark_parquet_folder",
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_landing_file_is_ingested_or_quarantined_whole(spark, tmp_path: Path, monkeypatch, case: str) -> None:
    build, extra, reasons, rows = CASES[case]
    landing, root = tmp_path / "landing", tmp_path / "lake"
    folder = landing / "spend"
    folder.mkdir(parents=True)
    (folder / "good.csv").write_text(GOOD)
    build(folder)
    bad = next(p.name for p in folder.iterdir() if p.name != "good.csv")
    if case == "spark_fails":  # any failure inside Spark or Delta quarantines the one file
        read_csv = ingest.READERS[".csv"]

        def broken(session, path: str):
            if path.endswith(bad):
                raise RuntimeError("the reader broke\n\tat org.apache.spark.SomeClass")
            return read_csv(session, path)

        monkeypatch.setitem(ingest.READERS, ".csv", broken)

    first = ingest_source(spark, root, landing, "spend", batch_id="b1", extra_columns=extra)

    bronze = BRONZE["spend"].load(spark, root).toPandas()
    assert set(bronze[bronze._source_file == "good.csv"].date) == {"2024-01-01", "2024-01-02"}
    assert len(bronze) == 2 + rows and first.rows_written == 2 + rows
    quarantine = QUARANTINE.read(spark, root)
    if reasons is None:
        assert sorted(first.files_ingested) == sorted(["good.csv", bad]) and not first.files_quarantined
        assert len(quarantine) == 0
        added = bronze[bronze._source_file == bad]
        assert added.date.notna().all() and "\ufeffdate" not in bronze.columns
        if case in EXPECTED_DATES:
            assert sorted(added.date) == ["2024-03-01", "2024-03-02"]  # as silver's try_to_date reads them
    else:
        assert first.files_ingested == ["good.csv"] and list(first.files_quarantined) == [bad]
        assert len(quarantine) == 1
        row = quarantine.iloc[0]
        assert (row.table, row.source_file, row.check) == ("raw_spend", bad, "parse")
        for reason in reasons:
            assert reason in row.reason, row.reason
        assert "\n" not in row.reason and json.loads(row.record)["content_hash"]

    again = ingest_source(spark, root, landing, "spend", batch_id="b2", extra_columns=extra)
    assert again.files_ingested == [] and again.files_quarantined == {}
    assert sorted(again.files_skipped + again.files_quarantined_before) == sorted(["good.csv", bad])
    assert BRONZE["spend"].count(spark, root) == 2 + rows
    assert QUARANTINE.count(spark, root) == len(quarantine)
