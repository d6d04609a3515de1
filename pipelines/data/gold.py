"""Gold: ``model_input``, one row per brand x market x week, and each market's modelling status.

For each market the calendar runs from its first week with spend or sales to its last week with
sales, every Monday in between. Spend per model channel is 0 in a week without spend rows; a week
without sales is a gap: its target stays null and ``target_missing`` is set, never a zero. Controls
are the week's mean, and a week missing a configured control is a gap too. A week with sales on fewer
days than the brand's files hold (7 for daily files, 1 for weekly) is flagged ``partial_week``.

Great Expectations then checks the candidate table (unique weeks, continuity, non-negative values)
and each brand's market profile (minimum history, maximum gap weeks). A critical failure excludes
the markets whose rows failed: their rows go to quarantine with the check and the reason, and
``market_status`` says why, so the training step can read it. The other markets flow on.

Each market's weeks, as the model will see them (``model_input.market_frame``), also go through the
pre-fit data review (``mmm_models.data_review``, thresholds in the brand's ``quality.data_review``):
its findings are written to ``market_status`` (``data_review``, ``data_warnings``). A warning leaves the
market in; an exclusion (no channel's spend varies, a constant target) holds it back like a failed
check, with the finding's message as the reason.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import great_expectations.expectations as gxe
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from mmm_models.data_review import WARNING, DataFinding, DataReview, review_market_data
from pipelines.config import BrandConfig
from pipelines.data.model_input import control_column, market_frame, spend_column
from pipelines.data.quality import Check, Outcome, validate
from pipelines.data.silver import StageReport
from pipelines.tables import (
    MARKET_STATUS,
    MODEL_INPUT,
    WEEKLY_CONTROLS,
    WEEKLY_SALES,
    WEEKLY_SPEND,
    Lake,
    write_quarantine,
)

MODEL_INPUT_KEY = list(MODEL_INPUT.key)


@dataclass
class MarketStatus:
    """Whether a market goes on to modelling, and why not."""

    brand: str
    market: str
    status: str  # "included" or "excluded"
    checks: list[str]
    reason: str
    weeks: int
    sales_weeks: int
    gap_weeks: int
    gaps: list[str]
    first_week: dt.date
    last_week: dt.date
    data_review: str = ""  # the data review's findings, "check: message; ..."
    data_warnings: int = 0  # how many of them are warnings (the market is still modelled)


@dataclass
class GoldResult:
    report: StageReport
    statuses: list[MarketStatus]
    outcomes: list[Outcome]


def candidate_model_input(spark: SparkSession, root: Lake | str | Path, brands: dict[str, BrandConfig]) -> DataFrame:
    """Every market's weekly rows from silver, before the market checks."""

    targets = spark.createDataFrame([(b.brand, b.target) for b in brands.values()], "brand string, measure string")
    sales = (
        WEEKLY_SALES.load(spark, root)
        .join(F.broadcast(targets), ["brand", "measure"])
        .select(*MODEL_INPUT_KEY, F.col("value").alias("target"), F.col("days").alias("sales_days"))
    )
    channels = sorted({c for b in brands.values() for c in b.channels})
    spend = WEEKLY_SPEND.load(spark, root).groupBy(*MODEL_INPUT_KEY).pivot("channel", channels).agg(F.first("spend"))
    controls_all = sorted({c for b in brands.values() for c in b.controls})
    weeks = sales.select(*MODEL_INPUT_KEY, F.lit(True).alias("has_sales")).unionByName(
        spend.select(*MODEL_INPUT_KEY, F.lit(False).alias("has_sales"))
    )
    bounds = weeks.groupBy("brand", "market").agg(
        F.min("week_start").alias("first_week"),
        F.coalesce(F.max(F.when(F.col("has_sales"), F.col("week_start"))), F.max("week_start")).alias("last_week"),
    )
    calendar = bounds.select(
        "brand",
        "market",
        F.explode(F.sequence("first_week", "last_week", F.expr("INTERVAL 7 DAYS"))).alias("week_start"),
    )
    frame = calendar.join(sales, MODEL_INPUT_KEY, "left").join(spend, MODEL_INPUT_KEY, "left")
    if controls_all:
        controls = (
            WEEKLY_CONTROLS.load(spark, root)
            .groupBy(*MODEL_INPUT_KEY)
            .pivot("control", controls_all)
            .agg(F.first("value"))
        )
        frame = frame.join(controls, MODEL_INPUT_KEY, "left")
    weekly_brands = [b.brand for b in brands.values() if b.granularity == "weekly"]
    days_in_week = F.when(F.col("brand").isin(weekly_brands), 1).otherwise(7)
    columns = [
        *MODEL_INPUT_KEY,
        "target",
        F.col("target").isNull().alias("target_missing"),
        "sales_days",
        (F.col("sales_days") < days_in_week).alias("partial_week"),  # e.g. the current week, still running
    ]
    for channel in channels:
        owners = [b.brand for b in brands.values() if channel in b.channels]
        # 0 in a week without spend rows; null for a brand that does not have the channel at all
        columns.append(
            F.when(F.col("brand").isin(owners), F.coalesce(F.col(channel), F.lit(0.0))).alias(spend_column(channel))
        )
    missing_control = F.lit(False)
    for control in controls_all:
        owners = [b.brand for b in brands.values() if control in b.controls]
        columns.append(F.col(control).alias(control_column(control)))
        missing_control = missing_control | (F.col("brand").isin(owners) & F.col(control).isNull())
    columns.append(missing_control.alias("controls_missing"))
    return frame.select(*columns)


def gold_checks(brands: dict[str, BrandConfig]) -> list[Check]:
    """GX suite on the candidate table, with a derived ``days_since_previous`` column."""
    checks = [
        Check("unique_week", gxe.ExpectCompoundColumnsToBeUnique(column_list=MODEL_INPUT_KEY), critical=True),
        Check(
            "week_continuity",
            gxe.ExpectColumnValuesToBeInSet(column="days_since_previous", value_set=[7]),
            critical=True,
        ),
        Check("target_non_negative", gxe.ExpectColumnValuesToBeBetween(column="target", min_value=0), critical=True),
    ]
    for channel in sorted({c for b in brands.values() for c in b.channels}):
        column = spend_column(channel)
        checks.append(
            Check(
                f"{column}_non_negative", gxe.ExpectColumnValuesToBeBetween(column=column, min_value=0), critical=True
            )
        )
    return checks


def market_checks(brand: BrandConfig) -> list[Check]:
    """GX suite on one brand's market profile: enough history, few enough gaps."""
    limits = brand.quality
    return [
        Check(
            "min_history",
            gxe.ExpectColumnValuesToBeBetween(column="sales_weeks", min_value=limits.min_history_weeks),
            critical=True,
        ),
        Check(
            "max_gap_weeks",
            gxe.ExpectColumnValuesToBeBetween(column="gap_weeks", max_value=limits.max_gap_weeks),
            critical=True,
        ),
    ]


def market_profile(rows: pd.DataFrame) -> dict[tuple[str, str], dict]:
    """Per market: weeks, weeks with sales, gap weeks (and which, as ``yyyy-MM-dd``), first and last week."""
    gap = rows["target_missing"] | rows["controls_missing"]
    profiles = {}
    for (brand, market), weeks in rows.assign(_gap=gap).groupby(["brand", "market"], sort=True):
        profiles[(brand, market)] = {
            "weeks": len(weeks),
            "sales_weeks": int((~weeks["target_missing"]).sum()),
            "gap_weeks": int(weeks["_gap"].sum()),
            "gaps": sorted(str(w) for w in weeks.loc[weeks["_gap"], "week_start"]),
            "first_week": weeks["week_start"].min(),
            "last_week": weeks["week_start"].max(),
        }
    return profiles


def with_days_since_previous(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` with ``days_since_previous``: days from the market's previous week (null for its first)."""
    ordered = rows.sort_values(["brand", "market", "week_start"], kind="stable")
    weeks = pd.to_datetime(ordered["week_start"])
    days = (weeks - weeks.groupby([ordered["brand"], ordered["market"]]).shift()).dt.days
    return ordered.assign(days_since_previous=days).reset_index(drop=True)


def build_model_input(
    spark: SparkSession,
    root: Lake | str | Path,
    brands: dict[str, BrandConfig],
    run_key: str,
    batch_id: str = "gold",
) -> GoldResult:
    """silver -> gold ``model_input`` (MERGE) + ``market_status``; excluded markets' rows go to quarantine.

    The candidate rows (weeks x channels per market) are collected once: the data review reads every
    market's weeks anyway, and the gold and market suites then run on the driver, as pandas, rather than
    as a dozen Spark jobs whose fixed cost dominated a weekly run.
    """
    candidate = candidate_model_input(spark, root, brands).cache()
    rows = candidate.toPandas()
    outcomes = validate(
        with_days_since_previous(rows), "gold.model_input", gold_checks(brands), index_columns=["brand", "market"]
    )
    profiles = market_profile(rows)
    profile_frame = pd.DataFrame(
        [(b, m, r["sales_weeks"], r["gap_weeks"]) for (b, m), r in profiles.items()],
        columns=["brand", "market", "sales_weeks", "gap_weeks"],
    )
    for name, brand in brands.items():
        outcomes += validate(
            profile_frame[profile_frame.brand == name].reset_index(drop=True),
            f"gold.market_profile.{name}",
            market_checks(brand),
            index_columns=["brand", "market"],
        )
    reviews = review_markets(rows, brands)
    statuses = _statuses(profiles, outcomes, brands, reviews)
    excluded = [(s.brand, s.market, ",".join(s.checks), s.reason) for s in statuses if s.status == "excluded"]
    excluded_frame = spark.createDataFrame(excluded, "brand string, market string, check string, reason string")
    included = candidate.join(F.broadcast(excluded_frame), ["brand", "market"], "left_anti")
    values = [c for c in candidate.columns if c not in MODEL_INPUT_KEY]
    rows_out = MODEL_INPUT.sync_merge(spark, root, included, values)
    rows_in = len(rows)
    rows_quarantined = sum(profiles[(brand, market)]["weeks"] for brand, market, _, _ in excluded)
    if rows_quarantined:
        held_back = candidate.join(F.broadcast(excluded_frame), ["brand", "market"])
        write_quarantine(
            spark,
            root,
            held_back.select(
                F.lit("model_input").alias("table"),
                F.lit(None).cast("string").alias("source_file"),
                F.to_json(F.struct(*MODEL_INPUT_KEY, *values)).alias("record"),
                F.lit(1).alias("occurrence"),
                "check",
                "reason",
                F.lit(batch_id).alias("batch_id"),
                F.current_timestamp().alias("quarantined_at"),
            ),
        )
    _write_statuses(spark, root, statuses, run_key)
    candidate.unpersist()
    report = StageReport("model_input", rows_in, rows_in - rows_quarantined, rows_quarantined, rows_out)
    return GoldResult(report, statuses, outcomes)


def review_markets(rows: pd.DataFrame, brands: dict[str, BrandConfig]) -> dict[tuple[str, str], DataReview]:
    """The pre-fit data review of every market's candidate rows (weeks x channels per market)."""
    reviews = {}
    for (brand, market), part in rows.groupby(["brand", "market"], sort=True):
        config = brands[brand]
        try:
            reviews[(brand, market)] = review_market_data(
                market_frame(part, config),
                config.channels,
                config.controls,
                thresholds=config.quality.data_review.thresholds(),
            )
        except Exception as exc:  # one market's data never stops the others: recorded, the market goes on
            error = f"the data review could not run: {type(exc).__name__}: {exc}"[:500]
            reviews[(brand, market)] = DataReview((DataFinding("review_error", WARNING, error),))
    return reviews


def _statuses(
    profiles: dict,
    outcomes: list[Outcome],
    brands: dict[str, BrandConfig],
    reviews: dict[tuple[str, str], DataReview] | None = None,
) -> list[MarketStatus]:
    failed: dict[tuple[str, str], list[Outcome]] = {}
    for outcome in outcomes:
        if outcome.critical and not outcome.success:
            for row in outcome.failing:
                failed.setdefault((row["brand"], row["market"]), []).append(outcome)
    statuses = []
    for (brand, market), p in sorted(profiles.items()):
        failures = failed.get((brand, market), [])
        checks = sorted({o.check for o in failures})
        reasons = [_reason(check, p, brands.get(brand), failures) for check in checks]
        review = (reviews or {}).get((brand, market), DataReview(()))
        if not checks:  # the data review's exclusions, for a market that passed the quality checks
            for finding in review.exclusions:
                checks.append(finding.check)
                reasons.append(finding.message)
        statuses.append(
            MarketStatus(
                brand=brand,
                market=market,
                status="excluded" if checks else "included",
                checks=checks,
                reason="; ".join(reasons),
                weeks=p["weeks"],
                sales_weeks=p["sales_weeks"],
                gap_weeks=p["gap_weeks"],
                gaps=list(p["gaps"]),
                first_week=p["first_week"],
                last_week=p["last_week"],
                data_review=review.summary(),
                data_warnings=len(review.warnings),
            )
        )
    return statuses


def _reason(check: str, profile, brand: BrandConfig | None, failures: list[Outcome]) -> str:
    if check == "min_history" and brand is not None:
        return (
            f"{profile['sales_weeks']} weeks with sales ({profile['first_week']} to {profile['last_week']}), "
            f"fewer than the minimum of {brand.quality.min_history_weeks}"
        )
    if check == "max_gap_weeks" and brand is not None:
        shown = ", ".join(profile["gaps"][:8]) + (" ..." if len(profile["gaps"]) > 8 else "")
        return (
            f"{profile['gap_weeks']} weeks without sales or a control, more than the limit of "
            f"{brand.quality.max_gap_weeks}: {shown}"
        )
    return next(o.describe() for o in failures if o.check == check)


def _write_statuses(spark: SparkSession, root: Lake | str | Path, statuses: list[MarketStatus], run_key: str) -> None:
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    rows = [
        (
            s.brand,
            s.market,
            s.status,
            ",".join(s.checks),
            s.reason,
            s.weeks,
            s.sales_weeks,
            s.gap_weeks,
            ",".join(s.gaps),
            s.first_week,
            s.last_week,
            s.data_review,
            s.data_warnings,
            run_key,
            now,
        )
        for s in statuses
    ]
    values = [
        "status",
        "checks",
        "reason",
        "weeks",
        "sales_weeks",
        "gap_weeks",
        "gaps",
        "first_week",
        "last_week",
        "data_review",
        "data_warnings",
        "run_key",
    ]
    MARKET_STATUS.sync_merge(spark, root, spark.createDataFrame(rows, MARKET_STATUS.schema), values)
