"""The answers behind the endpoints, without HTTP: markets, recommendations, channel summaries, optimize, what-if.

The tables come from the lake (``LakeReader``, no Spark) and the models from the registry
(``ChampionCache``). A market is named by brand and market as the pipeline writes them; a name is
checked and normalised (``pipelines.names``) before it is compared with anything, and only a market
that ``quality/market_status`` knows is answered. Errors are typed, so that the app maps each to one
HTTP status: ``InvalidRequestError`` (422, naming the field), ``UnknownMarketError`` and ``NotFoundError``
(404), ``NoChampionError`` (409), ``OptimizationError`` and ``DataError`` (422, the library's message).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mmm_models.analysis import HDI_PROB, Period, channel_metrics
from mmm_models.data import DataError
from mmm_models.optimizer import BudgetProblem, BudgetRecommendation
from mmm_models.prediction import compare_scenarios, predict
from pipelines.config import PlatformConfig
from pipelines.names import InvalidNameError, check
from pipelines.registry.store import RegistryStore
from pipelines.tables import BUDGET_RECOMMENDATIONS, MARKET_STATUS, MODEL_RUNS
from pipelines.training.review import REVIEW, review_reasons
from serving import optimizer
from serving.champions import Champion, ChampionCache, NoChampionError
from serving.lake import STALE, LakeReader
from serving.schemas import (
    ChannelMetrics,
    ChannelSummary,
    Interval,
    Market,
    OptimizeAnswer,
    OptimizedChannel,
    PlanWeek,
    Readiness,
    Recommendations,
    TrainingStatus,
    WeeklyDifference,
    WeeklyOutcome,
    WhatIfAnswer,
    WhatIfRequest,
)

log = logging.getLogger(__name__)

WARM_HORIZON_WEEKS = 13  # the horizon warm-up compiles for (the default budget period)
SUMMARY_CACHE_SIZE = 64  # channel summaries kept, by model version and period


class InvalidRequestError(ValueError):
    """A request value the model or the catalogue refuses; ``loc`` names the field as FastAPI does."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc


class UnknownMarketError(LookupError):
    """A brand/market that the pipeline has never seen."""


class NotFoundError(LookupError):
    """Something of a known market that does not exist (no recommendations for a run date)."""


class RecommendationService:
    """Answers over one lake and one registry; safe to call from many threads at once."""

    def __init__(self, lake: LakeReader, champions: ChampionCache, hdi_prob: float = HDI_PROB) -> None:
        self.lake, self.champions, self.hdi_prob = lake, champions, hdi_prob
        champions.training_status = self._training_line
        self.warming, self.warmed = False, False
        self.warm_problems: list[str] = []
        self._summaries: dict[tuple[Any, ...], ChannelSummary] = {}
        self._summary_lock = threading.Lock()
        # Reads, answered as JSON bytes per (table version, market, run date): a read between two weekly
        # writes is a dictionary lookup, not a pandas filter and a pydantic serialisation.
        self._reads: dict[tuple[Any, ...], bytes] = {}
        self._known_markets: tuple[int | None, set[tuple[str, str]]] = (None, set())
        self._reads_lock = threading.Lock()

    @classmethod
    def from_platform(
        cls,
        platform: PlatformConfig,
        lake: str | Path | None = None,
        alias_ttl_s: float = 10.0,
        refresh_s: float = 1.0,
    ) -> RecommendationService:
        """The service of a platform config: its lake (or ``lake``), its MLflow store, its serving alias."""
        champions = ChampionCache(
            RegistryStore.from_settings(platform.mlflow),
            alias=platform.recommend.alias,
            prefix=platform.mlflow.model_prefix,
            max_draws=platform.recommend.max_draws,
            alias_ttl_s=alias_ttl_s,
        )
        return cls(LakeReader(lake or platform.lake, refresh_s), champions)

    # --- markets ---

    def market(self, brand: str, market: str) -> tuple[str, str]:
        """The normalised (brand, market) of a known market; the name rules are checked first."""
        brand, market = _checked_names(brand, market)
        if (brand, market) not in self._known():
            raise UnknownMarketError(f"unknown market {brand}/{market}: the pipeline has no such market")
        return brand, market

    def _known(self) -> set[tuple[str, str]]:
        """The (brand, market) pairs of ``market_status``, built once per Delta version of the table."""
        version = self.lake.version(MARKET_STATUS)
        cached_version, known = self._known_markets
        if version is None or version != cached_version:
            status = self.lake.read(MARKET_STATUS)
            known = set(zip(status["brand"], status["market"], strict=True))
            self._known_markets = (version, known)
        return known

    def markets(self) -> list[Market]:
        """Every market the pipeline knows, with its champion, latest training and latest recommendation."""
        status = self.lake.read(MARKET_STATUS).set_index(["brand", "market"])
        training = self._latest_training()
        latest = self._latest_recommendations()
        answer = []
        for brand, market in sorted(status.index.unique()):
            row = status.loc[(brand, market)]
            row = row.iloc[-1] if isinstance(row, pd.DataFrame) else row
            recommendation = latest.get((brand, market), {})
            answer.append(
                Market(
                    brand=brand,
                    market=market,
                    model_name=self.champions.model_name(brand, market),
                    champion_version=self.champions.version(brand, market),
                    pipeline_status=_value(row.get("status")),
                    pipeline_reason=_value(row.get("reason")) or None,
                    data_review=_value(row.get("data_review")) or None,
                    data_warnings=_value(row.get("data_warnings")),
                    training=training.get((brand, market)),
                    last_run_date=recommendation.get("run_date"),
                    recommendation_status=recommendation.get("status"),
                    verdict=recommendation.get("verdict"),
                )
            )
        return answer

    def _latest_training(self) -> dict[tuple[str, str], TrainingStatus]:
        runs = self.lake.read(MODEL_RUNS)
        if runs.empty:
            return {}
        latest = runs.sort_values("recorded_at").groupby(["brand", "market"]).tail(1)
        return {
            (r.brand, r.market): TrainingStatus(
                run_date=_date(r.run_date),
                status=r.status,
                error=_value(r.error),
                model_version=_value(r.model_version),
                review_verdict=_value(getattr(r, "review_verdict", None)),
                review_reasons=review_reasons(r.review) if getattr(r, "review_verdict", None) == REVIEW else None,
            )
            for r in latest.itertuples()
        }

    def _training_line(self, brand: str, market: str) -> str | None:
        found = self._latest_training().get((brand, market))
        if found is None:
            return None
        review = f", model review REVIEW ({found.review_reasons})" if found.review_verdict == REVIEW else ""
        return found.status + (f" ({found.error})" if found.error else "") + review + f" on {found.run_date}"

    def _latest_recommendations(self) -> dict[tuple[str, str], dict[str, Any]]:
        rows = self.lake.read(BUDGET_RECOMMENDATIONS)
        if rows.empty:
            return {}
        newest = rows.groupby(["brand", "market"])["run_date"].transform("max")
        latest = rows[rows["run_date"] == newest]
        answer = {}
        for (brand, market), part in latest.groupby(["brand", "market"]):
            first = part.iloc[0]
            verdict = _value(first["verdict"]) if "verdict" in part.columns else None
            answer[(brand, market)] = {
                "run_date": _date(first["run_date"]),
                "status": first["status"],
                "verdict": verdict,
            }
        return answer

    # --- recommendations ---

    def cached_recommendations_json(self, brand: str, market: str, run_date: dt.date | None = None) -> bytes | None:
        """``recommendations_json`` from memory alone, or None when that takes a look at the lake (a table due
        for a look at its log, a body not built yet): no file, no log, no lock held by a lake read, so that
        the event loop answers most reads itself, and hands the others to ``recommendations_json`` in a thread.
        Raises what ``recommendations_json`` raises for a bad name or, from memory, an unknown market."""
        brand, market = _checked_names(brand, market)
        status_version = self.lake.fresh_version(MARKET_STATUS)
        known_version, known = self._known_markets
        if status_version is STALE or status_version is None or status_version != known_version:
            return None
        if (brand, market) not in known:
            raise UnknownMarketError(f"unknown market {brand}/{market}: the pipeline has no such market")
        version = self.lake.fresh_version(BUDGET_RECOMMENDATIONS)
        if version is STALE:
            return None
        with self._reads_lock:
            return self._reads.get((version, brand, market, run_date))

    def recommendations_json(self, brand: str, market: str, run_date: dt.date | None = None) -> bytes:
        """``recommendations`` as its JSON body, kept until ``budget_recommendations`` gets a new version."""
        brand, market = self.market(brand, market)
        key = (self.lake.version(BUDGET_RECOMMENDATIONS), brand, market, run_date)
        with self._reads_lock:
            body = self._reads.get(key)
        if body is None:
            body = self.recommendations(brand, market, run_date).model_dump_json().encode()
            with self._reads_lock:
                self._reads = {k: v for k, v in self._reads.items() if k[0] == key[0]}  # older versions go
                self._reads[key] = body
        return body

    def recommendations(self, brand: str, market: str, run_date: dt.date | None = None) -> Recommendations:
        """A market's recommendation rows of ``run_date`` (default: its latest run date)."""
        brand, market = self.market(brand, market)
        rows = self.lake.read(BUDGET_RECOMMENDATIONS)
        mine = rows[(rows["brand"] == brand) & (rows["market"] == market)]
        dates = sorted({_date(d) for d in mine["run_date"]}, reverse=True)
        if not dates:
            raise NotFoundError(f"no budget recommendations for {brand}/{market} yet: run `mmm recommend`")
        chosen = run_date or dates[0]
        if chosen not in dates:
            raise NotFoundError(
                f"no budget recommendations for {brand}/{market} on {chosen}; run dates: {[str(d) for d in dates]}"
            )
        chosen_rows = mine[mine["run_date"].map(_date) == chosen].sort_values("channel")
        return Recommendations(brand=brand, market=market, run_date=chosen, run_dates=dates, rows=_records(chosen_rows))

    # --- the champion's answers ---

    def champion(self, brand: str, market: str) -> Champion:
        return self.champions.get(*self.market(brand, market))

    def channel_summary(
        self, brand: str, market: str, start: dt.date | None = None, end: dt.date | None = None
    ) -> ChannelSummary:
        """ROAS, contribution share, marginal ROAS, half-life and half-saturation spend over a period of the
        champion's data (default: its training window), each with mean, sd and HDI; cached per version."""
        champion = self.champion(brand, market)
        key = (champion.model_name, champion.version, start, end)
        with self._summary_lock:
            if key in self._summaries:
                return self._summaries[key]
        model = champion.model
        period = Period(start.isoformat() if start else None, end.isoformat() if end else None)
        try:
            weeks = period.mask(model)
        except ValueError as exc:
            raise InvalidRequestError(("query", "start" if start else "end"), str(exc)) from None
        long = channel_metrics(model, period, self.hdi_prob, max_draws=self.champions.max_draws)
        spend = model.design().cost[weeks].sum(axis=0)
        dates = model.data[model.spec.date_column][weeks]
        channels = []
        for index, channel in enumerate(model.channel_names):
            stats = long[long["channel"] == channel].set_index("metric")
            metrics = {m: _interval(stats.loc[m]) for m in stats.index}
            channels.append(ChannelMetrics(channel=channel, spend=float(spend[index]), **metrics))
        summary = ChannelSummary(
            brand=champion.brand,
            market=champion.market,
            model_name=champion.model_name,
            model_version=champion.version,
            period_start=dates.min().date(),
            period_end=dates.max().date(),
            hdi_prob=self.hdi_prob,
            channels=channels,
        )
        with self._summary_lock:
            if len(self._summaries) >= SUMMARY_CACHE_SIZE:
                self._summaries.clear()
            self._summaries[key] = summary
        return summary

    def optimize(self, brand: str, market: str, problem: BudgetProblem) -> OptimizeAnswer:
        """The library's optimiser on the champion (compiled once per structure): ``optimize_budget``'s answer."""
        champion = self.champion(brand, market)
        answer = optimizer.optimize(champion.optimizer_response(), problem, champion.structure)
        return _optimize_answer(champion, answer)

    def what_if(self, brand: str, market: str, request: WhatIfRequest) -> WhatIfAnswer:
        """Outcome quantiles of a weekly plan, and its expected difference from the baseline with its HDI."""
        champion = self.champion(brand, market)
        model, draws = champion.model, self.champions.max_draws
        baseline = request.baseline or _run_rate_plan(champion, request.plan)
        plan_frame = _plan_frame(champion, request.plan, "plan")
        baseline_frame = _plan_frame(champion, baseline, "baseline")
        try:
            forecast = predict(model, plan_frame, max_draws=draws)
            comparison = compare_scenarios(model, plan_frame, baseline_frame, max_draws=draws)
        except DataError as exc:
            raise InvalidRequestError(("body", "plan"), str(exc)) from None
        quantile_columns = [c for c in forecast.weekly.columns if c.startswith("q")]
        weekly = [
            WeeklyOutcome(
                week_start=pd.Timestamp(row["date"]).date(),
                expected_mean=float(row["expected_mean"]),
                quantiles={c: float(row[c]) for c in quantile_columns},
            )
            for _, row in forecast.weekly.iterrows()
        ]
        difference = [
            WeeklyDifference(week_start=pd.Timestamp(row["date"]).date(), **_interval(row).model_dump())
            for _, row in comparison.weekly.iterrows()
        ]
        return WhatIfAnswer(
            brand=champion.brand,
            market=champion.market,
            model_name=champion.model_name,
            model_version=champion.version,
            weekly=weekly,
            total=forecast.total,
            difference=_interval(comparison.difference),
            weekly_difference=difference,
            baseline=baseline,
        )

    # --- start-up ---

    def warm(self) -> None:
        """Load every market's champion and compile its optimiser once, so the first questions are fast."""
        self.warming, problems = True, []
        try:
            for brand, market in sorted(self._known()):
                try:
                    champion = self.champions.get(brand, market)
                    if champion.response is not None:
                        optimizer.optimize(
                            champion.response, BudgetProblem(horizon_weeks=WARM_HORIZON_WEEKS), champion.structure
                        )
                except NoChampionError:
                    continue
                except Exception as exc:  # one bad market never stops the others from warming
                    problems.append(f"{brand}/{market}: {type(exc).__name__}: {exc}")
                    log.warning("warm-up of %s/%s failed: %s", brand, market, exc)
        finally:
            self.warm_problems, self.warming, self.warmed = problems, False, True

    def readiness(self) -> Readiness:
        """Ready once warm-up has run and the lake has the pipeline's market table."""
        problems = list(self.warm_problems)
        if self.lake.version(MARKET_STATUS) is None:
            problems.insert(0, f"no {MARKET_STATUS.qualified_name} table under {self.lake.root}: run `mmm pipeline`")
        ready = self.warmed and self.lake.version(MARKET_STATUS) is not None
        return Readiness(
            ready=ready,
            warming=self.warming,
            champions=[f"{c.brand}/{c.market}@{c.version}" for c in self.champions.loaded()],
            compilations=optimizer.compilations(),
            problems=problems,
        )


def _checked_names(brand: str, market: str) -> tuple[str, str]:
    """The normalised brand and market, or ``InvalidRequestError`` naming the path parameter that breaks a rule."""
    try:
        brand = check(brand, "brand", "brand")
    except InvalidNameError as exc:
        raise InvalidRequestError(("path", "brand"), str(exc)) from None
    try:
        market = check(market, "market", "market")
    except InvalidNameError as exc:
        raise InvalidRequestError(("path", "market"), str(exc)) from None
    return brand, market


def _optimize_answer(champion: Champion, answer: BudgetRecommendation) -> OptimizeAnswer:
    def interval(row: pd.Series, prefix: str) -> Interval:
        return Interval(**{k: _number(row.get(f"{prefix}_{k}")) for k in ("mean", "sd", "hdi_low", "hdi_high")})

    channels = [
        OptimizedChannel(
            channel=row["channel"],
            current_spend=float(row["current_spend"]),
            recommended_spend=float(row["recommended_spend"]),
            change_pct=_number(row["change_pct"]),
            contribution=interval(row, "contribution"),
            roas=interval(row, "roas"),
            marginal_roas=interval(row, "marginal_roas"),
        )
        for _, row in answer.table.iterrows()
    ]
    return OptimizeAnswer(
        brand=champion.brand,
        market=champion.market,
        model_name=champion.model_name,
        model_version=champion.version,
        objective=answer.objective,
        total_budget=answer.total_budget,
        converged=answer.converged,
        message=answer.message,
        uplift=_interval(answer.uplift),
        channels=channels,
    )


def _run_rate_plan(champion: Champion, plan: list[PlanWeek]) -> list[PlanWeek]:
    """The plan's weeks at the current run-rate: each channel's mean weekly spend of the champion's last weeks."""
    model = champion.model
    recent = model.data[model.channel_names].tail(len(plan)).mean()
    spend = {channel: float(recent[channel]) for channel in model.channel_names}
    return [PlanWeek(week_start=week.week_start, spend=spend, controls=week.controls) for week in plan]


def _plan_frame(champion: Champion, weeks: list[PlanWeek], field: str) -> pd.DataFrame:
    """Plan weeks as the frame ``predict`` takes; every channel needed, unknown names refused by field."""
    spec, data = champion.model.spec, champion.model.data
    channels, controls = spec.channel_names, [c.name for c in spec.controls]
    last = data[controls].iloc[-1] if controls else pd.Series(dtype=float)
    rows = []
    for index, week in enumerate(weeks):
        _refuse(set(week.spend) - set(channels), ("body", field, index, "spend"), "unknown channels", channels)
        _refuse(set(channels) - set(week.spend), ("body", field, index, "spend"), "missing channels", channels)
        _refuse(set(week.controls) - set(controls), ("body", field, index, "controls"), "unknown controls", controls)
        values = {c: week.controls.get(c, float(last[c])) for c in controls}
        rows.append({spec.date_column: pd.Timestamp(week.week_start), **week.spend, **values})
    return pd.DataFrame(rows, columns=[spec.date_column, *channels, *controls])


def _refuse(names: set[str], loc: tuple[str | int, ...], what: str, known: Iterable[str]) -> None:
    if names:
        raise InvalidRequestError(loc, f"{what} {sorted(names)}; the champion has {list(known)}")


def _interval(stats: Any) -> Interval:
    return Interval(**{k: _number(stats[k]) for k in ("mean", "sd", "hdi_low", "hdi_high")})


def _number(value: Any) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def _value(value: Any) -> Any:
    """A table cell as JSON: NumPy scalars as Python ones, missing values (NaN, NaT, None) as None."""
    if value is None or (not isinstance(value, str | bytes | list | dict) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value.item() if isinstance(value, np.generic) else value


def _date(value: Any) -> dt.date | None:
    value = _value(value)
    return value.date() if isinstance(value, dt.datetime) else value


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{column: _value(value) for column, value in row.items()} for row in frame.to_dict("records")]
