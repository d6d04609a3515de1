"""Real Spark with real Delta: a write, a MERGE, and the table's history."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from delta.tables import DeltaTable

pytestmark = pytest.mark.slow


def test_delta_write_merge_and_history(spark, tmp_path: Path) -> None:
    path = str(tmp_path / "weekly_spend")
    schema = "brand string, market string, week string, spend double"
    spark.createDataFrame([("b", "m", "2024-01-01", 1.0), ("b", "m", "2024-01-08", 2.0)], schema).write.format(
        "delta"
    ).save(path)
    late = spark.createDataFrame([("b", "m", "2024-01-08", 5.0), ("b", "m", "2024-01-15", 1.0)], schema)
    key = "t.brand = s.brand AND t.market = s.market AND t.week = s.week"
    table = DeltaTable.forPath(spark, path)
    table.alias("t").merge(late.alias("s"), key).whenMatchedUpdateAll().whenNotMatchedInsertAll().execute()
    rows = {r.week: r.spend for r in DeltaTable.forPath(spark, path).toDF().collect()}
    assert rows == {"2024-01-01": 1.0, "2024-01-08": 5.0, "2024-01-15": 1.0}
    assert [r.operation for r in table.history().orderBy("version").collect()] == ["WRITE", "MERGE"]


def test_grouped_pandas_udf_runs_on_project_python(spark) -> None:
    frame = spark.createDataFrame(pd.DataFrame({"market": ["a", "a", "b"], "y": [1.0, 2.0, 3.0]}))
    out = frame.groupBy("market").applyInPandas(
        lambda part: pd.DataFrame({"market": [part["market"].iloc[0]], "total": [part["y"].sum()]}),
        "market string, total double",
    )
    assert {r.market: r.total for r in out.collect()} == {"a": 3.0, "b": 3.0}
