"""Bronze -> silver weekly spend: every bad row quarantined with its reason, nothing lost, MERGE."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import functions as F

from pipelines.data import silver as silver_module
from pipelines.data.ingest import ingest_source
from pipelines.data.quality import on_driver_if_small, validate
from pipelines.data.silver import (
    CONTROLS,
    SALES,
    SOURCES,
    SPEND,
    Scope,
    SilverSource,
    StageReport,
    build_weekly,
    key_checked,
    record_checks,
    row_checked,
    typed_records,
    weekly_checks,
)
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
    assert again.rows_out == report.rows_out and again.rows_in == 0  # nothing new: nothing re-checked
    assert spark.read.format("delta").load(QUARANTINE.path(root)).count() == len(quarantine)
    history = WEEKLY_SPEND.history(spark, root)
    assert [r.operation for r in history] == ["WRITE"]  # and nothing written


def test_key_rules_on_repeated_keys_only_match_the_rules_on_every_record(spark) -> None:
    """``typed_records`` sorts only the series-years in which a key repeats; the outcome must be the full sort's."""
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
        # c2: the last day of a leap year twice (bit 365 of the day-of-year words); the same day of other years once
        ("2024-12-31", "acme", "DE", "tv_linear", "c2", "1.0", "a.csv", "h1", early, "tv"),
        ("2024-12-31", "acme", "DE", "tv_linear", "c2", "1.5", "b.csv", "h2", late, "tv"),
        ("2023-12-31", "acme", "DE", "tv_linear", "c2", "2.0", "a.csv", "h1", early, "tv"),
        ("2025-12-31", "acme", "DE", "tv_linear", "c2", "2.0", "b.csv", "h2", late, "tv"),
        # c3: days either side of a word boundary (day 64 is bit 63, day 65 bit 64), each once: no key repeats
        ("2024-03-04", "acme", "DE", "tv_linear", "c3", "1.0", "a.csv", "h1", early, "tv"),
        ("2024-03-05", "acme", "DE", "tv_linear", "c3", "1.0", "a.csv", "h1", early, "tv"),
        # c4: a repeat of which one copy fails a row rule: no repeat among the passed records
        ("2024-03-04", "acme", "DE", "tv_linear", "c4", "1.0", "a.csv", "h1", early, "tv"),
        ("2024-03-04", "acme", "DE", "tv_linear", "c4", "oops", "b.csv", "h2", late, "tv"),
    ]
    records = spark.createDataFrame(rows, columns)
    today = dt.date(2026, 1, 1)
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
    assert sorted(r._check or "" for r in fast.collect()) == [""] * 10 + [
        "spend_non_negative",
        "spend_not_null",
        "superseded",
        "superseded",
        "unique_key",
    ]
    # only the series-years with a repeated key are sorted: c1 in 2023 and c2 in 2024
    checked = row_checked(records, SPEND, today)
    series = {r._series_hash: r.campaign for r in checked.collect()}
    repeated = silver_module._repeated_keys(checked)
    assert sorted((series[r._series_hash], r._year) for r in repeated.collect()) == [("c1", 2023), ("c2", 2024)]
    fast.unpersist()


def _write(folder: Path, name: str, rows: list[tuple], columns: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=columns.split()).to_csv(folder / name, index=False)


def _days(first: str, count: int) -> list[str]:
    return [(dt.date.fromisoformat(first) + dt.timedelta(days=i)).isoformat() for i in range(count)]


def _week_files(landing: Path, tag: str, days: list[str], spend_extra: list[tuple] = (), scale: float = 1.0) -> None:
    """Daily spend (three raw channels), sales and a control for DE and FR on ``days``, plus ``spend_extra``."""
    spend = [
        (day, "acme", market, raw, "c1", round(scale * (10 + i + 3 * j + (market == "FR")), 2))
        for i, day in enumerate(days)
        for market in ("DE", "FR")
        for j, raw in enumerate(("tv_linear", "google_ads", "fb_ads"))
    ]
    _write(landing / "spend", f"spend_{tag}.csv", spend + list(spend_extra), "date brand market channel campaign spend")
    sales = [(day, "acme", market, 1000.0 + i) for i, day in enumerate(days) for market in ("DE", "FR")]
    _write(landing / "sales", f"sales_{tag}.csv", sales, "date brand market revenue")
    controls = [(day, "acme", m, "price_index", 1 + i / 100) for i, day in enumerate(days) for m in ("DE", "FR")]
    _write(landing / "controls", f"controls_{tag}.csv", controls, "date brand market control value")


def test_a_weekly_build_rechecks_only_new_files_and_their_weeks_and_equals_checking_every_record(
    spark, tmp_path: Path, monkeypatch
) -> None:
    """The same runs on two lakes, one planned by ``plan_scope`` and one checking every record each run, give the
    same weekly spend and quarantine after every run; a one-shot build of the last files gives the same silver
    tables (spend, sales and controls).

    The runs cover what can go wrong in a scoped build: bad records, a record dated in the future that the
    as-of date later reaches, a late file restating an old week, a corrected file re-sent under its name, a
    run that only moves the as-of date, and a rerun with nothing new."""
    landing = tmp_path / "landing"
    scoped, every, one_shot = tmp_path / "scoped", tmp_path / "every", tmp_path / "one_shot"
    planned = silver_module.plan_scope

    def build(root: Path, today: dt.date, sources: tuple[SilverSource, ...] = SOURCES) -> dict[str, StageReport]:
        for source in sources:
            folder = {SPEND: "spend", SALES: "sales", CONTROLS: "controls"}[source]
            ingest_source(spark, root, landing, folder, measures=["revenue"] if source is SALES else ())
        return {s.silver.name: build_weekly(spark, root, s, BRANDS, today)[0] for s in sources}

    def tables(root: Path, sources: tuple[SilverSource, ...] = SOURCES) -> tuple[list[tuple], ...]:
        silver = tuple(sorted(map(tuple, s.silver.read(spark, root).itertuples(index=False))) for s in sources)
        key = ["table", "source_file", "record", "occurrence", "check", "reason"]
        quarantine = QUARANTINE.read(spark, root)
        quarantine = quarantine[quarantine.table.isin([s.bronze.name for s in sources])]
        return (*silver, sorted(map(tuple, quarantine[key].itertuples(index=False))))

    bad = [
        ("2024-01-03", "acme", "DE", "instagram", "c2", "-5"),  # negative
        ("2024-01-10", "acme", "FR", "google_ads", "c1", "13.0"),  # repeats a record of the file: unique_key
        ("2024-13-01", "acme", "DE", "tv_linear", "c1", "1.0"),  # not a date
        ("2024-01-04", "acme", "DE", "carrier_pigeon", "c1", "2.0"),  # unknown channel
        ("2024-02-06", "acme", "DE", "tv_linear", "c9", "50.0"),  # in the future until the as-of reaches week 5
    ]
    _week_files(landing, "history", _days("2024-01-01", 28), bad)
    runs = [
        (dt.date(2024, 1, 28), lambda: None),
        (dt.date(2024, 2, 4), lambda: _week_files(landing, "w4", _days("2024-01-29", 7))),
        (
            dt.date(2024, 2, 4),
            lambda: (
                _write(
                    landing / "spend",
                    "spend_late.csv",
                    [
                        ("2024-01-09", "acme", "DE", "fb_ads", "c1", "99.0"),  # restates week 1
                        ("2024-01-16", "acme", "DE", "google_ads", "c_late", "7.5"),  # adds to week 2
                    ],
                    "date brand market channel campaign spend",
                ),
                _week_files(landing, "w4", _days("2024-01-29", 7), scale=1.5),  # corrected, same names
            ),
        ),
        (dt.date(2024, 2, 11), lambda: None),  # only the as-of moves: the 2024-02-06 record comes in
        (dt.date(2024, 2, 11), lambda: None),  # nothing new
    ]
    reports = []
    for today, land in runs:
        land()
        reports.append(build(scoped, today))
        with monkeypatch.context() as patch:  # spend alone: the source with every rule (and the time it takes)
            patch.setattr(silver_module, "plan_scope", lambda *a: (Scope(reason="test"), planned(*a)[1]))
            build(every, today, (SPEND,))
        assert tables(scoped, (SPEND,)) == tables(every, (SPEND,)), f"run on {today}"
    build(one_shot, runs[-1][0])
    assert tables(scoped)[:3] == tables(one_shot)[:3]
    assert [len(rows) for rows in tables(scoped)[:3]] == [5 * 3 * 2 + 1, 5 * 2, 5 * 2]  # weeks 0-4, and 5's record

    spend = [r["weekly_spend"] for r in reports]
    assert [r.scope for r in spend] == [
        "every record (first build, or no build state in the silver table's last commit)",
        "new files: 1, weeks re-checked: 1",
        "new files: 2, weeks re-checked: 3",  # weeks 1, 2 (late) and 4 (the corrected file, both versions)
        "new files: 0, weeks re-checked: 1",  # the week of 2024-02-05, which the as-of date reached
        "new files: 0, weeks re-checked: 0",
    ]
    assert spend[1].rows_in == 7 * 2 * 3 and spend[1].rows_quarantined == 0  # the new week's records only
    # the late file (2), both versions of the week-4 file (42 each), and weeks 1 and 2 of the history file
    # (42 each and the repeated record); quarantined: the first week-4 version and the restated record
    # (superseded) and the repeat (unique_key, again: the quarantine keeps it once)
    assert spend[2].rows_in == 2 + 42 * 2 + 42 * 2 + 1 and spend[2].rows_quarantined == 42 + 1 + 1
    assert (spend[3].rows_in, spend[3].rows_passed) == (1, 1)
    assert spend[4].rows_in == 0 and WEEKLY_SPEND.history(spark, scoped, limit=1)[0].version == 3


def test_the_record_and_weekly_suites_count_the_same_on_the_driver_as_on_spark(spark) -> None:
    """A small frame is validated as pandas (``on_driver_if_small``): every check must find what Spark finds."""
    columns = "date string, brand string, market string, channel string, campaign string, raw_value string, "
    columns += "_source_file string, _content_hash string, _ingest_time timestamp, item string"
    at = dt.datetime(2024, 1, 1)
    rows = [
        ("2023-06-05", "acme", "DE", "tv_linear", "c1", "10.0", "a.csv", "h", at, "tv"),
        ("2023-06-06", "acme", "DE", "tv_linear", "c1", "-1", "a.csv", "h", at, "tv"),  # negative
        ("2023-06-07", "acme", "DE", "tv_linear", "c1", "NaN", "a.csv", "h", at, "tv"),  # not a number
        ("2023-13-01", "acme", "DE", "tv_linear", "c1", "1.0", "a.csv", "h", at, "tv"),  # not a date
        ("2999-01-01", "acme", "DE", "tv_linear", "c1", "1.0", "a.csv", "h", at, "tv"),  # future
        ("2023-06-08", "acme", "DE", "pigeon", "c1", "1.0", "a.csv", "h", at, None),  # unknown channel
        ("2023-06-08", None, "DE", "tv_linear", "c1", "1.0", "a.csv", "h", at, None),  # no brand
        ("2023-06-08", "acme", "D E", "tv_linear", "c1", "1.0", "a.csv", "h", at, "tv"),  # bad market name
    ]
    today = dt.date(2024, 6, 1)
    records = typed_records(spark.createDataFrame(rows, columns), SPEND, today)
    weekly = spark.createDataFrame(
        [
            ("acme", "DE", dt.date(2024, 1, 1), "tv", 1.0),
            ("acme", "DE", dt.date(2024, 1, 1), "tv", 2.0),  # repeated key
            ("acme", "DE", dt.date(2024, 1, 2), "tv", -1.0),  # a Tuesday, negative
            ("acme", "DE", dt.date(2999, 1, 7), "radio", None),  # future, unknown item, missing value
        ],
        "brand string, market string, week_start date, channel string, spend double",
    ).withColumn("weekday", F.dayofweek("week_start"))

    def found(outcomes: list) -> list[tuple]:
        return [(o.check, o.success, o.element_count, o.unexpected_count) for o in outcomes]

    for frame, checks in ((records, record_checks(SPEND, today)), (weekly, weekly_checks(SPEND, BRANDS, today))):
        on_spark = found(validate(frame, "spark", checks))
        assert found(validate(on_driver_if_small(frame, frame.count()), "driver", checks)) == on_spark
        assert sum(not success for _, success, _, _ in on_spark) >= 5  # the frames break most checks
    records.unpersist()


def test_a_record_date_and_its_week_are_read_as_spark_s_date_parser_and_week_truncation_read_them(spark) -> None:
    """``_day`` (a pattern, then a cast) and ``_week_of`` (day arithmetic) stand in for the slower
    ``try_to_date(date, "yyyy-MM-dd")`` and ``date_trunc("week", day)``: the same results on edge cases."""
    dates = [
        "2024-01-02", "2024-1-2", "2024-01-2", " 2024-01-02", "2024-01-02 ", "2024-01-02T00:00", "2024-02-30",
        "2024-02-29", "2023-02-29", "+024-01-02", "02024-01-02", "20240102", "2024/01/02", "2024-13-01",
        "0001-01-01", "9999-12-31", "2024-01-02\n", "\uff12\uff10\uff12\uff14-01-02", "2024-00-10", "2024-01-00",
        None, "", "abc",
    ]  # fmt: skip
    dates += [str(dt.date(2023, 12, 20) + dt.timedelta(days=d)) for d in range(21)]  # every weekday, a year's end
    frame = spark.createDataFrame([(d,) for d in dates], "date string").select(
        "date",
        silver_module._day().alias("day"),
        F.try_to_date("date", "yyyy-MM-dd").alias("expected_day"),
    )
    frame = frame.select(
        "*",
        silver_module._week_of(F.col("day")).alias("week"),
        F.date_trunc("week", "day").cast("date").alias("expected_week"),
    )
    rows = frame.collect()
    assert [(r.date, r.day, r.week) for r in rows] == [(r.date, r.expected_day, r.expected_week) for r in rows]
    assert sum(r.day is not None for r in rows) == 25  # 2024-01-02, 2024-02-29, 0001-01-01, 9999-12-31, the 21 days
