"""Budget recommendations: how each market should split its next period's spend, from its champion model.

For every brand x market the pipeline knows (``quality/market_status``), the version behind the registry
alias (``champion``) is loaded from its saved model folder (only that folder is fetched, not the pyfunc
wrapper), the current spend is the run-rate of the latest weeks in ``gold/model_input``, and the optimiser
splits the brand's budget within its bounds. Each market gives one row per channel in
``outputs/budget_recommendations``, keyed by (run_date, brand, market, channel): ``success`` with the
numbers, or ``no_champion`` / ``failed`` with the reason, so no market is silently absent and one bad
market never stops the others. A rerun for the same run date rewrites nothing unless an answer changed;
earlier run dates stay queryable.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from mmm_models.fitted import FittedModel
from mmm_models.optimizer import (
    BudgetOptimizer,
    BudgetProblem,
    BudgetRecommendation,
    ChannelBound,
    OptimizationError,
    ResponseModel,
)
from pipelines.config import BrandConfig, BudgetSettings, PlatformConfig
from pipelines.gold import spend_column
from pipelines.tables import is_delta, table_path
from pipelines.tracking import alias_version, load_run_model, model_name, resolve_uris, with_retries
from pipelines.training import PROJECT_ROOT

SUCCESS, NO_CHAMPION, FAILED = "success", "no_champion", "failed"
SCHEMA = (
    "run_date date, brand string, market string, channel string, status string, reason string, "
    "model_name string, model_version string, period_weeks int, total_budget double, current_spend double, "
    "min_spend double, max_spend double, recommended_spend double, change_pct double, "
    "expected_contribution double, contribution_hdi_low double, contribution_hdi_high double, roas double, "
    "marginal_roas double, expected_uplift double, uplift_hdi_low double, uplift_hdi_high double, "
    "converged boolean, recorded_at timestamp"
)
COLUMNS = [column.split()[0] for column in SCHEMA.split(", ")]
KEY = ("run_date", "brand", "market", "channel")
VALUES = [c for c in COLUMNS if c not in (*KEY, "recorded_at")]  # what a rerun compares; recorded_at is kept


# --- the optimisation of one market (no Spark, no MLflow: the benchmark calls exactly this) ---


def run_rate(recent_spend: pd.DataFrame, budget: BudgetSettings) -> dict[str, float]:
    """Current spend over the period: mean weekly spend of the last ``run_rate_weeks`` weeks x ``period_weeks``."""
    recent = recent_spend.tail(budget.run_rate_weeks)
    if recent.empty:
        raise OptimizationError("no weeks of spend to take the current run-rate from")
    return {channel: float(recent[channel].mean() * budget.period_weeks) for channel in recent_spend.columns}


def budget_problem(current: dict[str, float], budget: BudgetSettings) -> BudgetProblem:
    """The brand's budget question for one market: its run-rate, the total (default: the run-rate), the bounds."""
    if budget.total is None and sum(current.values()) <= 0:
        raise OptimizationError(
            f"no spend in the last {budget.run_rate_weeks} weeks and no budget.total: nothing to split"
        )
    return BudgetProblem(
        horizon_weeks=budget.period_weeks,
        total_budget=budget.total,
        current_plan=current,
        bounds={
            channel: ChannelBound(min=bound.min_factor, max=bound.max_factor, relative=True)
            for channel, bound in ((c, budget.bound(c)) for c in current)
        },
        objective=budget.objective,
    )


def recommend_budget(
    model: FittedModel, recent_spend: pd.DataFrame, budget: BudgetSettings, max_draws: int | None = 1000
) -> BudgetRecommendation:
    """Split the next period's budget for ``model``'s market.

    ``recent_spend`` is the latest weeks' spend per channel (oldest first). It sets the current spend (the
    run-rate) and the carry-over into the period, so a champion trained some weeks ago still starts from
    where the market's spend is now.
    """
    missing = sorted(set(model.channel_names) - set(recent_spend.columns))
    if missing:
        raise OptimizationError(f"no recent spend for the model's channels {missing}")
    response = ResponseModel.from_fitted(model, max_draws)
    lags = response.l_max - 1
    spend = recent_spend[model.channel_names].astype(float).tail(max(budget.run_rate_weeks, lags))
    if spend.isna().any().any():
        raise OptimizationError("recent spend has missing values")
    history = np.zeros((lags, len(model.channel_names)))
    if lags:
        tail = spend.tail(lags).to_numpy()
        history[lags - len(tail) :] = tail
    response = dataclasses.replace(response, history=history)
    return BudgetOptimizer(response, budget_problem(run_rate(spend, budget), budget)).solve()


def success_rows(
    recommendation: BudgetRecommendation, budget: BudgetSettings, model_version: tuple[str, str]
) -> list[dict]:
    """One row per channel of a solved market (the key columns are added by the caller)."""
    uplift = recommendation.uplift
    reason = None if recommendation.converged else f"optimiser did not converge: {recommendation.message}"
    rows = []
    for row in recommendation.table.itertuples(index=False):
        bound = budget.bound(row.channel)
        rows.append(
            {
                "channel": row.channel,
                "status": SUCCESS,
                "reason": reason,
                "model_name": model_version[0],
                "model_version": model_version[1],
                "period_weeks": budget.period_weeks,
                "total_budget": recommendation.total_budget,
                "current_spend": row.current_spend,
                "min_spend": bound.min_factor * row.current_spend,
                "max_spend": bound.max_factor * row.current_spend,
                "recommended_spend": row.recommended_spend,
                "change_pct": row.change_pct,
                "expected_contribution": row.contribution_mean,
                "contribution_hdi_low": row.contribution_hdi_low,
                "contribution_hdi_high": row.contribution_hdi_high,
                "roas": row.roas_mean,
                "marginal_roas": row.marginal_roas_mean,
                "expected_uplift": uplift["mean"],
                "uplift_hdi_low": uplift["hdi_low"],
                "uplift_hdi_high": uplift["hdi_high"],
                "converged": recommendation.converged,
            }
        )
    return rows


def unavailable_rows(
    channels: list[str],
    status: str,
    reason: str,
    budget: BudgetSettings,
    current: dict[str, float] | None,
    model_version: tuple[str | None, str | None],
) -> list[dict]:
    """One row per channel of a market without a recommendation: the status, the reason, and its current spend."""
    return [
        {
            "channel": channel,
            "status": status,
            "reason": reason,
            "model_name": model_version[0],
            "model_version": model_version[1],
            "period_weeks": budget.period_weeks,
            "current_spend": (current or {}).get(channel),
        }
        for channel in channels
    ]


# --- the job over every market: Spark tables in, MLflow registry, one Delta table out ---


@dataclass
class RecommendReport:
    """One recommend run: a row per market and channel, whatever happened to the market."""

    run_date: dt.date
    rows: pd.DataFrame  # the rows written to outputs/budget_recommendations
    wall_s: float

    def markets(self, status: str) -> list[str]:
        chosen = self.rows[self.rows["status"] == status]
        return sorted(set(chosen["brand"] + "/" + chosen["market"]))

    @property
    def all_succeeded(self) -> bool:
        return len(self.rows) > 0 and bool((self.rows["status"] == SUCCESS).all())

    def table(self) -> str:
        """Per market and channel: current and recommended spend, change, contribution with HDI, ROAS, mROAS."""
        rows = self.rows.assign(market=self.rows["brand"] + "/" + self.rows["market"])
        shown = pd.DataFrame(
            {
                "market": rows["market"],
                "channel": rows["channel"],
                "status": rows["status"],
                "current": rows["current_spend"],
                "recommended": rows["recommended_spend"],
                "change_%": rows["change_pct"],
                "contribution": rows["expected_contribution"],
                "90% HDI": [
                    _interval(lo, hi)
                    for lo, hi in zip(rows.contribution_hdi_low, rows.contribution_hdi_high, strict=True)
                ],
                "roas": rows["roas"],
                "mroas": rows["marginal_roas"],
            }
        )
        return shown.to_string(
            index=False, na_rep="-", float_format=lambda v: f"{v:,.2f}" if abs(v) < 100 else f"{v:,.0f}"
        )

    def summary(self) -> str:
        """A line per market: model version, budget and expected uplift with its HDI, or why there is none."""
        lines = []
        for (brand, market), rows in self.rows.groupby(["brand", "market"], sort=True):
            first = rows.iloc[0]
            if first["status"] == SUCCESS:
                detail = (
                    f"{first['model_name']} v{first['model_version']}: budget {first['total_budget']:,.0f} over "
                    f"{first['period_weeks']} weeks, expected uplift {first['expected_uplift']:+,.0f} "
                    f"(90% HDI {_interval(first['uplift_hdi_low'], first['uplift_hdi_high'])})"
                )
            else:
                detail = f"{first['status']}: {first['reason']}"
            lines.append(f"{brand}/{market}: {detail}")
        counts = {s: len(self.markets(s)) for s in (SUCCESS, NO_CHAMPION, FAILED)}
        lines.append(
            f"{counts[SUCCESS]} markets recommended, {counts[NO_CHAMPION]} without a champion, "
            f"{counts[FAILED]} failed, in {self.wall_s:.0f} s (run date {self.run_date})"
        )
        return "\n".join(lines)


def recommend(
    spark: SparkSession,
    root: str | Path,
    brands: dict[str, BrandConfig],
    platform: PlatformConfig,
    as_of: dt.date,
    progress: Callable[[str], None] | None = None,
    markets: list[str] | None = None,
) -> RecommendReport:
    """Recommend every known market's budget from its champion and write ``outputs/budget_recommendations``.

    ``markets`` limits the run to some ``brand/market`` names; the other markets' rows stay as they are.
    """
    from mlflow import MlflowClient

    start = time.perf_counter()
    say = progress or (lambda _line: None)
    chosen = known_markets(spark, root, brands, markets)
    spend = recent_spend(spark, root, brands, as_of)
    latest = latest_training(spark, root)
    tracking, registry, _ = resolve_uris(platform.mlflow, PROJECT_ROOT)
    store = Registry(MlflowClient(tracking, registry), tracking, registry)
    say(f"recommending budgets for {len(chosen)} markets from their {platform.recommend.alias} (run date {as_of})")
    rows: list[dict] = []
    for index, (brand, market) in enumerate(chosen, start=1):
        clock = time.perf_counter()
        market_rows = _market(store, brand, market, brands[brand], platform, spend.get((brand, market)), latest)
        rows += [{"run_date": as_of, "brand": brand, "market": market, **row} for row in market_rows]
        seconds = time.perf_counter() - clock
        say(f"  [{index}/{len(chosen)}] {brand}/{market} {_describe(market_rows[0])} ({seconds:.1f} s)")
    frame = pd.DataFrame(rows).reindex(columns=COLUMNS)
    frame["recorded_at"] = pd.Timestamp.now(tz="UTC").tz_localize(None)
    write_recommendations(spark, root, frame, as_of)
    return RecommendReport(as_of, frame, time.perf_counter() - start)


@dataclass(frozen=True)
class Registry:
    """The MLflow registry the champions come from."""

    client: Any  # mlflow.MlflowClient (imported where used: the optimisation part needs no MLflow)
    tracking_uri: str
    registry_uri: str


def _market(
    registry: Registry,
    brand: str,
    market: str,
    config: BrandConfig,
    platform: PlatformConfig,
    spend: pd.DataFrame | None,
    latest: dict[tuple[str, str], str],
) -> list[dict]:
    """The rows of one market; any failure becomes ``failed`` rows with the error."""
    name = model_name(platform.mlflow.model_prefix, brand, market)
    budget, version = config.budget, None
    try:
        current = run_rate(spend, budget) if spend is not None else None
    except OptimizationError:
        current = None
    try:
        version = alias_version(registry.client, name, platform.recommend.alias)
        if version is None:
            why = f"no {platform.recommend.alias} version of {name}"
            if (brand, market) in latest:
                why += f"; latest training: {latest[(brand, market)]}"
            return unavailable_rows(config.channels, NO_CHAMPION, why, budget, current, (name, None))
        if spend is None:
            raise OptimizationError("no weeks of spend in gold/model_input up to the run date")
        run_id = with_retries(lambda: registry.client.get_model_version(name, version).run_id, "get the version's run")
        model = load_run_model(registry.tracking_uri, run_id)
        recommendation = recommend_budget(model, spend, budget, platform.recommend.max_draws)
        return success_rows(recommendation, budget, (name, version))
    except Exception as exc:  # one bad market never stops the others: its rows say what happened
        reason = f"{type(exc).__name__}: {exc}"[:2000]
        return unavailable_rows(config.channels, FAILED, reason, budget, current, (name, version))


def known_markets(
    spark: SparkSession, root: str | Path, brands: dict[str, BrandConfig], markets: list[str] | None = None
) -> list[tuple[str, str]]:
    """Every configured brand's markets in ``quality/market_status`` (modelled or held back), or those named."""
    path = table_path(root, "quality", "market_status")
    if not is_delta(spark, path):
        raise ValueError(f"no market_status table at {path}: run `mmm pipeline` first")
    found = sorted(
        (r.brand, r.market)
        for r in spark.read.format("delta").load(path).select("brand", "market").distinct().collect()
        if r.brand in brands
    )
    if markets:
        names = {f"{b}/{m}": (b, m) for b, m in found}
        unknown = sorted(set(markets) - set(names))
        if unknown:
            raise ValueError(f"unknown markets {unknown}; known: {sorted(names)}")
        found = sorted(names[m] for m in set(markets))
    return found


def recent_spend(
    spark: SparkSession, root: str | Path, brands: dict[str, BrandConfig], as_of: dt.date
) -> dict[tuple[str, str], pd.DataFrame]:
    """Weekly spend per channel of each market's weeks up to ``as_of`` (oldest first), from gold.

    Trailing partial weeks (the week still running) are left out, as in training: their spend is not all in.
    """
    path = table_path(root, "gold", "model_input")
    if not is_delta(spark, path):
        return {}
    columns = sorted({spend_column(c) for b in brands.values() for c in b.channels})
    table = spark.read.format("delta").load(path)
    wanted = ["brand", "market", "week_start", "partial_week", *[c for c in columns if c in table.columns]]
    rows = (
        table.filter(F.col("brand").isin(list(brands)))
        .filter(F.col("week_start") <= F.lit(as_of))
        .select(*wanted)
        .toPandas()
    )
    spends = {}
    for (brand, market), weeks in rows.sort_values("week_start").groupby(["brand", "market"]):
        partial = weeks["partial_week"].fillna(False).astype(bool).to_numpy()
        weeks = weeks.iloc[: len(weeks) - int(partial[::-1].cumprod().sum())]
        channels = [c for c in brands[brand].channels if spend_column(c) in weeks]
        spends[(brand, market)] = (
            weeks[[spend_column(c) for c in channels]].set_axis(channels, axis=1).reset_index(drop=True)
        )
    return spends


def latest_training(spark: SparkSession, root: str | Path) -> dict[tuple[str, str], str]:
    """Each market's latest ``model_runs`` status and error, to say why a market has no champion."""
    path = table_path(root, "models", "model_runs")
    if not is_delta(spark, path):
        return {}
    runs = spark.read.format("delta").load(path).select("brand", "market", "status", "error", "recorded_at").toPandas()
    latest = runs.sort_values("recorded_at").groupby(["brand", "market"]).tail(1)
    return {
        (r.brand, r.market): r.status + (f" ({r.error})" if isinstance(r.error, str) else "")
        for r in latest.itertuples()
    }


def write_recommendations(spark: SparkSession, root: str | Path, rows: pd.DataFrame, run_date: dt.date) -> None:
    """MERGE this run's rows on the key: changed rows updated, new ones inserted, and rows of this run date
    and these markets that the run no longer produces deleted. Other run dates and markets are untouched."""
    from delta.tables import DeltaTable

    path = table_path(root, "outputs", "budget_recommendations")
    records = [tuple(_plain(v) for v in row) for row in rows[COLUMNS].itertuples(index=False)]
    frame = spark.createDataFrame(records, SCHEMA)
    if not is_delta(spark, path):
        frame.write.format("delta").save(path)
        return
    on = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in KEY)
    changed = " OR ".join(f"NOT (t.`{v}` <=> s.`{v}`)" for v in VALUES)
    markets = sorted(set(rows["brand"] + "/" + rows["market"]))
    stale = (F.col("t.run_date") == F.lit(run_date)) & F.concat("t.brand", F.lit("/"), "t.market").isin(markets)
    (
        DeltaTable.forPath(spark, path)
        .alias("t")
        .merge(frame.alias("s"), on)
        .whenMatchedUpdateAll(condition=changed)
        .whenNotMatchedInsertAll()
        .whenNotMatchedBySourceDelete(condition=stale)
        .execute()
    )


def _plain(value: object) -> object:
    """A cell as Spark's schema check accepts it: None for missing, datetime for pandas timestamps."""
    if _missing(value):
        return None
    return value.to_pydatetime() if isinstance(value, pd.Timestamp) else value


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def _interval(low: float, high: float) -> str:
    return "-" if _missing(low) or _missing(high) else f"{low:,.0f} to {high:,.0f}"


def _describe(row: dict) -> str:
    if row["status"] == SUCCESS:
        return (
            f"{row['model_name']} v{row['model_version']}: uplift {row['expected_uplift']:+,.0f} "
            f"(90% HDI {_interval(row['uplift_hdi_low'], row['uplift_hdi_high'])})"
        )
    return f"{row['status']}: {row['reason'][:160]}"
