"""Landing files: each file is either ingested (its rows in bronze) or quarantined whole with a reason.

Every case (``tests/reliability/scenarios.py``: ``FILE_CASES``) puts one bad (or awkward) file beside one
good file in ``spend/``; the good file always flows on, and a second ingest of the same folder neither
fails nor adds a row anywhere.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.data import ingest
from pipelines.data.ingest import ingest_source
from pipelines.tables import BRONZE, QUARANTINE
from tests.reliability.scenarios import FILE_CASES, GOOD, HEADER, ROW, FileCase, text

pytestmark = pytest.mark.slow
# the shared cases, and one that breaks Spark's reader on purpose: any failure inside Spark or Delta
# quarantines the one file
CASES = {
    **FILE_CASES,
    "spark_fails": FileCase(text(f"{HEADER}\n{ROW}"), ("could not be ingested: RuntimeError: the reader broke",), 0),
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
    spec = CASES[case]
    extra, reasons, rows = list(spec.extra), spec.reasons, spec.rows
    landing, root = tmp_path / "landing", tmp_path / "lake"
    folder = landing / "spend"
    folder.mkdir(parents=True)
    (folder / "good.csv").write_text(GOOD)
    spec.build(folder, "bad")
    bad = next(p.name for p in folder.iterdir() if p.name != "good.csv")
    if case == "spark_fails":  # any failure inside Spark or Delta quarantines the one file
        read_csv = ingest.READERS[".csv"]

        def broken(session, path: str, header: tuple[str, ...]):
            if path.endswith(bad):
                raise RuntimeError("the reader broke\n\tat org.apache.spark.SomeClass")
            return read_csv(session, path, header)

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
