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

from mmm_models.optimizer import OptimizationError
from pipelines.config import PROJECT_ROOT, BrandConfig, PlatformConfig
from pipelines.data.gold import spend_column
from pipelines.recommend.budget import (
    FAILED,
    NO_CHAMPION,
    SUCCESS,
    recommend_budget,
    run_rate,
    success_rows,
    unavailable_rows,
)
from pipelines.registry.store import alias_version, load_run_model, model_name, resolve_uris, with_retries
from pipelines.tables import is_delta, table_path

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
