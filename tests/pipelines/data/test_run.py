"""Raw -> gold on real Spark, Delta and Great Expectations: the bad-input matrix, nothing lost,
idempotent reruns, one new day, and late data for an old week."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from delta.tables import DeltaTable

from pipelines.config import QualityLimits
from pipelines.data.run import run_pipeline
from pipelines.data.synthetic_raw import BAD_INPUTS, RawDataConfig, brand_configs, generate_raw_landing

pytestmark = pytest.mark.slow
AS_OF = dt.date(2024, 6, 3)
TABLES = [
    ("bronze", "raw_spend"),
    ("bronze", "raw_sales"),
    ("bronze", "raw_controls"),
    ("silver", "weekly_spend"),
    ("silver", "weekly_sales"),
    ("silver", "weekly_controls"),
    ("gold", "model_input"),
    ("quality", "quarantine"),
    ("quality", "dq_results"),
    ("quality", "market_status"),
]


def lake_path(root, layer: str, name: str) -> str:
    """Where a table lives under a lake root, spelled out here so the tests check the catalogue's layout."""
    return str(Path(root) / layer / name)


def read(spark, root: Path, layer: str, name: str):
    return spark.read.format("delta").load(lake_path(root, layer, name))


def counts(spark, root: Path) -> dict[str, int]:
    return {name: read(spark, root, layer, name).count() for layer, name in TABLES}


def changes(inserted: int, updated: int, deleted: int) -> dict[str, int]:
    return {"numTargetRowsInserted": inserted, "numTargetRowsUpdated": updated, "numTargetRowsDeleted": deleted}


def last_merge(spark, root: Path, layer: str, name: str) -> dict[str, int]:
    entry = DeltaTable.forPath(spark, lake_path(root, layer, name)).history(1).collect()[0]
    assert entry.operation == "MERGE"
    return {
        k: int(entry.operationMetrics[k])
        for k in ("numTargetRowsInserted", "numTargetRowsUpdated", "numTargetRowsDeleted")
    }


def test_every_bad_input_is_quarantined_or_excluded_with_its_reason(spark, tmp_path: Path) -> None:
    config = RawDataConfig(markets={"acme": ["DE", "FR", "IT"], "bolt": ["US"]}, weeks=40, campaigns_per_raw_channel=1)
    landing = generate_raw_landing(tmp_path / "landing", config, inject=BAD_INPUTS)
    brands = brand_configs(config, QualityLimits(min_history_weeks=20, max_gap_weeks=2))
    root = tmp_path / "lake"
    report = run_pipeline(spark, landing.folder, root, brands, AS_OF, progress=lambda _: None)

    quarantine = read(spark, root, "quality", "quarantine").toPandas()
    reasons = {(r.table, r.check): r.reason for r in quarantine.itertuples()}
    expected = {
        ("raw_spend", "spend_non_negative"): "spend is negative: -100.0",  # negative spend
        ("raw_spend", "spend_not_null"): "spend is missing or not a number: <empty>",  # NaN spend
        ("raw_spend", "unique_key"): "duplicate record: same date, brand, market, channel, campaign in one file",
        ("raw_spend", "known_channel"): "channel carrier_pigeon is not configured for brand acme",
        ("raw_spend", "parse_date"): "date is not a yyyy-MM-dd date: 31/02/2023?",
        ("raw_spend", "no_future_dates"): "date is after 2024-06-03: 2999-01-01",
    }
    for key, reason in expected.items():
        assert reasons[key] == reason
    files = quarantine[quarantine.check == "parse"].set_index("source_file")["reason"]
    assert files["acme_missing_column.csv"].startswith("missing columns ['spend']")  # a missing column
    assert files["corrupt.csv"].startswith("not a UTF-8 CSV file")  # not a CSV at all
    status = read(spark, root, "quality", "market_status").toPandas().set_index("market")
    assert status.loc["DE", "checks"] == "max_gap_weeks"  # the sales gap: 3 weeks > limit 2
    assert status.loc["DE", "reason"].startswith("3 weeks without sales or a control, more than the limit of 2")
    assert status.loc["IT", "checks"] == "min_history"  # 10 weeks of history < 20
    assert status.loc["IT", "reason"].startswith("10 weeks with sales")
    assert set(quarantine[quarantine.table == "model_input"].check) == {"max_gap_weeks", "min_history"}

    # all other data flows on, exactly: FR and US reproduce the simulated weekly truth
    model_input = read(spark, root, "gold", "model_input").toPandas()
    assert sorted(model_input.market.unique()) == ["FR", "US"] and len(model_input) == 2 * config.weeks
    assert list(status.status.sort_index()) == ["excluded", "included", "excluded", "included"]
    for brand, market in (("acme", "FR"), ("bolt", "US")):
        rows = model_input[model_input.market == market].sort_values("week_start")
        truth = landing.weekly[(brand, market)]
        np.testing.assert_allclose(rows["target"], truth["y"], rtol=1e-9)
        for channel in config.taxonomy:
            np.testing.assert_allclose(rows[f"spend_{channel}"], truth[channel], rtol=1e-9)
        assert not rows.target_missing.any()

    # nothing lost: per table, rows in = rows passed + rows quarantined, and the quarantine holds them
    for stage in report.stages:
        assert stage.rows_in == stage.rows_passed + stage.rows_quarantined
    stages = {s.table: s for s in report.stages}
    assert stages["weekly_spend"].rows_in == read(spark, root, "bronze", "raw_spend").count()
    spend_rows = quarantine[(quarantine.table == "raw_spend") & (quarantine.check != "parse")]
    assert len(spend_rows) == stages["weekly_spend"].rows_quarantined == 6
    assert (quarantine.table == "model_input").sum() == stages["model_input"].rows_quarantined == 40 + 10
    # Great Expectations counts the same records that the quarantine holds, check by check
    by_check = spend_rows.check.value_counts()
    for outcome in (o for o in report.outcomes if o.suite == "bronze.raw_spend.records"):
        assert outcome.unexpected_count == by_check.get(outcome.check, 0), outcome.check
    dq = read(spark, root, "quality", "dq_results").toPandas()
    assert len(dq) == len(report.outcomes) and set(dq.run_key) == {report.run_key}

    # every table is real Delta, written by WRITE and MERGE only
    for layer, name in TABLES:
        operations = {r.operation for r in DeltaTable.forPath(spark, lake_path(root, layer, name)).history().collect()}
        assert operations <= {"WRITE", "MERGE"} and "WRITE" in operations, (name, operations)


def write_csv(folder: Path, name: str, rows: list[tuple], columns: list[str]) -> None:
    pd.DataFrame(rows, columns=columns).to_csv(folder / name, index=False)


def test_rerun_is_idempotent_a_new_day_adds_one_week_and_late_data_updates_its_week(spark, tmp_path: Path) -> None:
    config = RawDataConfig(markets={"acme": ["DE"]}, weeks=26, campaigns_per_raw_channel=1)
    landing = generate_raw_landing(tmp_path / "landing", config)
    brands = brand_configs(config, QualityLimits(min_history_weeks=20))
    root = tmp_path / "lake"
    quiet = {"progress": lambda _: None}
    first = run_pipeline(spark, landing.folder, root, brands, AS_OF, **quiet)
    before = counts(spark, root)
    second = run_pipeline(spark, landing.folder, root, brands, AS_OF, **quiet)
    assert counts(spark, root) == before and second.run_key == first.run_key  # twice: no table changes size
    assert last_merge(spark, root, "gold", "model_input") == changes(inserted=0, updated=0, deleted=0)

    spend_columns = ["date", "brand", "market", "channel", "campaign", "spend"]
    new_day = (pd.Timestamp(config.start) + pd.Timedelta(weeks=config.weeks)).date().isoformat()  # a Monday
    write_csv(
        landing.folder / "spend",
        "acme_new_day.csv",
        [(new_day, "acme", "DE", raw, f"{raw}_c1", 100.0) for raw in ("tv_linear", "google_ads", "fb_ads")],
        spend_columns,
    )
    write_csv(
        landing.folder / "sales",
        "acme_new_day.csv",
        [(new_day, "acme", "DE", 5000.0)],
        ["date", "brand", "market", "revenue"],
    )
    write_csv(
        landing.folder / "controls",
        "acme_new_day.csv",
        [(new_day, "acme", "DE", "price_index", 1.0)],
        ["date", "brand", "market", "control", "value"],
    )
    run_pipeline(spark, landing.folder, root, brands, AS_OF, **quiet)
    assert last_merge(spark, root, "silver", "weekly_spend") == changes(inserted=3, updated=0, deleted=0)
    assert last_merge(spark, root, "gold", "model_input") == changes(inserted=1, updated=0, deleted=0)
    model_input = read(spark, root, "gold", "model_input").toPandas().set_index("week_start")
    assert len(model_input) == config.weeks + 1
    new_week = model_input.loc[dt.date.fromisoformat(new_day)]
    assert new_week.sales_days == 1 and new_week.partial_week  # the running week, flagged
    assert not model_input.drop(index=dt.date.fromisoformat(new_day)).partial_week.any()

    # late data for week 5: a new campaign row, and a restatement of an existing record
    raw = pd.read_csv(landing.folder / "spend" / "acme_batch1.csv")
    week5 = pd.Timestamp(config.start) + pd.Timedelta(weeks=5)
    old = raw[(raw.date == (week5 + pd.Timedelta(days=1)).date().isoformat()) & (raw.channel == "fb_ads")].iloc[0]
    late = [
        ((week5 + pd.Timedelta(days=2)).date().isoformat(), "acme", "DE", "google_ads", "google_ads_late", 500.0),
        (old.date, "acme", "DE", "fb_ads", old.campaign, old.spend + 250.0),
    ]
    write_csv(landing.folder / "spend", "acme_late.csv", late, spend_columns)
    previous = model_input.loc[week5.date()]
    run_pipeline(spark, landing.folder, root, brands, AS_OF, **quiet)
    assert last_merge(spark, root, "silver", "weekly_spend") == changes(inserted=0, updated=2, deleted=0)
    assert last_merge(spark, root, "gold", "model_input") == changes(inserted=0, updated=1, deleted=0)
    updated = read(spark, root, "gold", "model_input").toPandas().set_index("week_start").loc[week5.date()]
    assert updated.spend_search == pytest.approx(previous.spend_search + 500.0, rel=1e-12)
    assert updated.spend_social == pytest.approx(previous.spend_social + 250.0, rel=1e-12)
    superseded = read(spark, root, "quality", "quarantine").filter("check = 'superseded'").collect()
    assert len(superseded) == 1 and superseded[0].reason == "restated by a later file: acme_late.csv"
