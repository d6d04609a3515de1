"""Budget recommendations: how each market should split its next period's spend, from its champion model.

For every brand x market the pipeline knows (``quality/market_status``), the version behind the registry
alias (``champion``) is loaded from its saved model folder (only that folder is fetched, not the pyfunc
wrapper), the current spend is the run-rate of the latest weeks in ``gold/model_input``, and the optimiser
splits the brand's budget within its bounds. Each market gives one row per channel in
``outputs/budget_recommendations``, keyed by (run_date, brand, market, channel): ``success`` with the
numbers, or ``no_champion`` / ``failed`` with the reason, so no market is silently absent and one bad
market never stops the others. Each success row carries the market's verdict (act / hold / test) and the
probability that its uplift is positive; a ``test`` market's tested channel carries the experiment,
ranked within its brand (``test_rank``). A rerun for the same run date rewrites nothing unless an answer changed;
earlier run dates stay queryable.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pyspark.sql import SparkSession

from mmm_models.optimizer import OptimizationError
from pipelines.config import BrandConfig, PlatformConfig
from pipelines.data.model_input import read_market_frames
from pipelines.names import model_name
from pipelines.recommend.budget import (
    FAILED,
    NO_CHAMPION,
    SUCCESS,
    decide,
    recommend_budget,
    run_rate,
    success_rows,
    unavailable_rows,
)
from pipelines.registry.store import RegistryStore
from pipelines.tables import BUDGET_RECOMMENDATIONS, MARKET_STATUS, MODEL_RUNS, Lake, MissingTableError, sql_literal

VALUES = [
    c for c in BUDGET_RECOMMENDATIONS.columns if c not in (*BUDGET_RECOMMENDATIONS.key, "recorded_at")
]  # what a rerun compares; recorded_at is kept


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
                "verdict": rows["verdict"],
                "p_uplift": rows["uplift_probability"],
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
                    f"(90% HDI {_interval(first['uplift_hdi_low'], first['uplift_hdi_high'])}), "
                    f"{verdict_text(rows)}"
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
    root: Lake | str | Path,
    brands: dict[str, BrandConfig],
    platform: PlatformConfig,
    as_of: dt.date,
    progress: Callable[[str], None] | None = None,
    markets: list[str] | None = None,
) -> RecommendReport:
    """Recommend every known market's budget from its champion and write ``outputs/budget_recommendations``.

    ``markets`` limits the run to some ``brand/market`` names; the other markets' rows stay as they are.
    """
    start = time.perf_counter()
    say = progress or (lambda _line: None)
    chosen = known_markets(spark, root, brands, markets)
    spend = {
        key: frame[brands[key[0]].channels] for key, frame in read_market_frames(spark, root, brands, as_of).items()
    }
    latest = latest_training(spark, root)
    store = RegistryStore.from_settings(platform.mlflow)
    say(f"recommending budgets for {len(chosen)} markets from their {platform.recommend.alias} (run date {as_of})")
    rows: list[dict] = []
    for index, (brand, market) in enumerate(chosen, start=1):
        clock = time.perf_counter()
        market_rows = _market(store, brand, market, brands[brand], platform, spend.get((brand, market)), latest)
        rows += [{"run_date": as_of, "brand": brand, "market": market, **row} for row in market_rows]
        seconds = time.perf_counter() - clock
        say(f"  [{index}/{len(chosen)}] {brand}/{market} {_describe(market_rows[0])} ({seconds:.1f} s)")
    frame = rank_tests(pd.DataFrame(rows).reindex(columns=BUDGET_RECOMMENDATIONS.columns))
    frame["recorded_at"] = pd.Timestamp.now(tz="UTC").tz_localize(None)
    write_recommendations(spark, root, frame, as_of)
    return RecommendReport(as_of, frame, time.perf_counter() - start)


def _market(
    store: RegistryStore,
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
        version = store.alias_version(name, platform.recommend.alias)
        if version is None:
            why = f"no {platform.recommend.alias} version of {name}"
            if (brand, market) in latest:
                why += f"; latest training: {latest[(brand, market)]}"
            return unavailable_rows(config.channels, NO_CHAMPION, why, budget, current, (name, None))
        if spend is None:
            raise OptimizationError("no weeks of spend in gold/model_input up to the run date")
        model = store.load_run_model(store.market_run_id(name, version, brand, market))
        recommendation = recommend_budget(model, spend, budget, platform.recommend.max_draws)
        decision = decide(model, recommendation, platform.recommend)
        return success_rows(recommendation, budget, (name, version), decision)
    except Exception as exc:  # one bad market never stops the others: its rows say what happened
        reason = f"{type(exc).__name__}: {exc}"[:2000]
        return unavailable_rows(config.channels, FAILED, reason, budget, current, (name, version))


def rank_tests(rows: pd.DataFrame) -> pd.DataFrame:
    """``test_rank`` of each proposed experiment within its brand: 1 is the test whose answer is worth most
    (its ``test_value``, the channel's value of information for the market's decision)."""
    proposed = rows["test_value"].notna()
    ranks = rows[proposed].groupby("brand")["test_value"].rank(ascending=False, method="first")
    return rows.assign(test_rank=ranks.reindex(rows.index))


def known_markets(
    spark: SparkSession, root: Lake | str | Path, brands: dict[str, BrandConfig], markets: list[str] | None = None
) -> list[tuple[str, str]]:
    """Every configured brand's markets in ``quality/market_status`` (modelled or held back), or those named."""
    try:
        status = MARKET_STATUS.load(spark, root)
    except MissingTableError as exc:
        raise MissingTableError(f"{exc}: run `mmm pipeline` first") from None
    found = sorted(
        (r.brand, r.market) for r in status.select("brand", "market").distinct().collect() if r.brand in brands
    )
    if markets:
        names = {f"{b}/{m}": (b, m) for b, m in found}
        unknown = sorted(set(markets) - set(names))
        if unknown:
            raise ValueError(f"unknown markets {unknown}; known: {sorted(names)}")
        found = sorted(names[m] for m in set(markets))
    return found


def latest_training(spark: SparkSession, root: Lake | str | Path) -> dict[tuple[str, str], str]:
    """Each market's latest ``model_runs`` status and error, to say why a market has no champion."""
    runs = MODEL_RUNS.read(spark, root, ["brand", "market", "status", "error", "recorded_at"])
    latest = runs.sort_values("recorded_at").groupby(["brand", "market"]).tail(1)
    return {
        (r.brand, r.market): r.status + (f" ({r.error})" if isinstance(r.error, str) else "")
        for r in latest.itertuples()
    }


def write_recommendations(spark: SparkSession, root: Lake | str | Path, rows: pd.DataFrame, run_date: dt.date) -> None:
    """MERGE this run's rows on the key: changed rows updated, new ones inserted, and rows of this run date
    and these markets that the run no longer produces deleted. Other run dates and markets are untouched."""
    markets = sorted(set(rows["brand"] + "/" + rows["market"]))
    names = ", ".join(sql_literal(name) for name in markets)
    stale = f"t.run_date = {sql_literal(run_date)} AND concat(t.brand, '/', t.market) IN ({names})"
    BUDGET_RECOMMENDATIONS.sync_merge(spark, root, BUDGET_RECOMMENDATIONS.to_spark(spark, rows), VALUES, stale)


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def _interval(low: float, high: float) -> str:
    return "-" if _missing(low) or _missing(high) else f"{low:,.0f} to {high:,.0f}"


def verdict_text(rows: pd.DataFrame) -> str:
    """``act (P(uplift > 0) 0.95)``; a test names its channel, duration and predicted narrowing."""
    first = rows.iloc[0]
    text = f"{first['verdict']} (P(uplift > 0) {first['uplift_probability']:.2f})"
    tested = rows[rows["test_weeks"].notna()]
    if len(tested):
        test = tested.iloc[0]
        text += (
            f": test {test['channel']} {test['test_spend_change_pct']:+.0f}% for {int(test['test_weeks'])} weeks "
            f"from {test['test_start']}, ROAS interval expected {test['test_predicted_narrowing']:.0%} narrower"
        )
    return text


def _describe(row: dict) -> str:
    if row["status"] == SUCCESS:
        return (
            f"{row['model_name']} v{row['model_version']}: uplift {row['expected_uplift']:+,.0f} "
            f"(90% HDI {_interval(row['uplift_hdi_low'], row['uplift_hdi_high'])}), {row['verdict']} "
            f"(P(uplift > 0) {row['uplift_probability']:.2f})"
        )
    return f"{row['status']}: {row['reason'][:160]}"
