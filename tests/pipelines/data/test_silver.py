"""Bronze -> silver weekly spend: every bad row quarantined with its reason, nothing lost, MERGE."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from pipelines.data.ingest import ingest_source
from pipelines.data.silver import SPEND, build_weekly, key_checked, row_checked, typed_records
from pipelines.data.synthetic_raw import RawDataConfig, brand_configs, generate_raw_landing
from pipelines.tables import QUARANTINE, WEEKLY_SPEND

pytestmark = pytest.mark.slow
SMALL = RawDataConfig(markets={"acme": ["DE"]}, weeks=12, campaigns_per_raw_channel=1)
BRANDS = brand_configs(SMALL)
BAD = ("negative_spend", "nan_spend", "duplicate_row", "unknown_channel", "unparseable_date", "future_date")


def test_weekly_spend_quarantines_each_bad_row_and_is_idempotent(spark, tmp_path: Path) -> None:
    landing, root = tmp_path / "landing", tmp_path / "lake"
    truth = generate_raw_landing(landing, SMALL, inject=BAD).weekly[("acme", "DE")]
    ingest_source(spark, root, landing, "spend")
    report, _ = build_weekly(spark, root, SPEND, BRANDS, today=dt.date(2024, 1, 1))
    assert report.rows_in == report.rows_passed + report.rows_quarantined  # nothing lost
    quarantine = spark.read.format("delta").load(QUARANTINE.path(root)).collect()
    checks = sorted(r.check for r in quarantine)
    assert checks == sorted(
        ["spend_non_negative", "spend_not_null", "unique_key", "known_channel", "parse_date", "no_future_dates"]
    )
    reasons = {r.check: r.reason for r in quarantine}
    assert reasons["known_channel"] == "channel carrier_pigeon is not configured for brand acme"
    assert reasons["no_future_dates"] == "date is after 2024-01-01: 2999-01-01"

    weekly = spark.read.format("delta").load(WEEKLY_SPEND.path(root)).toPandas()
    assert len(weekly) == SMALL.weeks * len(SMALL.taxonomy) == report.rows_out
    pivot = weekly.pivot_table(index="week_start", columns="channel", values="spend")
    # weeks without an injected bad row reproduce the simulated weekly spend exactly
    np.testing.assert_allclose(pivot["search"].to_numpy()[1:], truth["search"].to_numpy()[1:], rtol=1e-9)

    again, _ = build_weekly(spark, root, SPEND, BRANDS, today=dt.date(2024, 1, 1))
    assert again.rows_out == report.rows_out  # MERGE: a rerun adds no rows
    assert spark.read.format("delta").load(QUARANTINE.path(root)).count() == len(quarantine)
    history = WEEKLY_SPEND.history(spark, root)
    assert [r.operation for r in sorted(history, key=lambda r: r.version)] == ["WRITE", "MERGE"]


def test_key_rules_on_repeated_keys_only_match_the_rules_on_every_record(spark) -> None:
    """``typed_records`` sorts only the records whose key hash repeats; the outcome must be the full sort's."""
    columns = "date string, brand string, market string, channel string, campaign string, raw_value string, "
    columns += "_source_file string, _content_hash string, _ingest_time timestamp, item string"
    early, late = dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 2)
    rows = [
        ("2023-06-05", "acme", "DE", "tv_linear", "c1", "10.0", "a.csv", "h1", early, "tv"),  # restated by b.csv
        ("2023-06-05", "acme", "DE", "tv_linear", "c1", "12.5", "b.csv", "h2", late, "tv"),
        ("2023-06-06", "acme", "DE", "tv_linear", "c1", "3.0", "a.csv", "h1", early, "tv"),  # twice in one file
        ("2023-06-06", "acme", "DE", "tv_linear", "c1", "3.0", "a.csv", "h1", early, "tv"),
        ("2023-06-07", "acme", "DE", "tv_linear", "c1", "-1", "b.csv", "h2", late, "tv"),  # fails a row rule
        ("2023-06-07", "acme", "DE", "tv_linear", "c1", "4.0", "a.csv", "h1", early, "tv"),  # so this one stays
        ("2023-06-08", "acme", "DE", "tv_linear", "c1", "5.0", "a.csv", "h1", early, "tv"),  # unique
    ]
    records = spark.createDataFrame(rows, columns)
    today = dt.date(2024, 6, 1)
    fast = typed_records(records, SPEND, today)
    every = key_checked(row_checked(records, SPEND, today), SPEND)

    def table(frame) -> list[tuple[str, ...]]:
        """Each record's outcome; its raw date, value and file where it is quarantined (all a quarantine row
        quotes: ``typed_records`` keeps them only for those records)."""
        rows = frame.select("day", "amount", "_check", "_reason", "date", "raw_value", "_source_file").collect()
        return sorted(
            tuple(str(v or "") for v in (r.day, r.amount, r._check, r._reason))
            + ((r.date, r.raw_value, r._source_file) if r._check else ())
            for r in rows
        )

    assert table(fast) == table(every)
    assert {r._source_file for r in fast.collect() if r._check} == {"a.csv", "b.csv"}
    assert sorted(r._check or "" for r in fast.collect()) == [
        "",
        "",
        "",
        "",
        "spend_non_negative",
        "superseded",
        "unique_key",
    ]
    fast.unpersist()
