"""One market's budget recommendation: its run-rate, the brand's budget question, the optimiser's answer, its
verdict (act / hold / test, with the experiment to run), and the rows the job writes. No Spark and no MLflow:
the recommend job and the benchmarks call exactly this."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mmm_models.analysis import channel_metric_draws, summarise
from mmm_models.experiments import LiftTestPlan, decision_value, plan_lift_test
from mmm_models.fitted import FittedModel
from mmm_models.optimizer import (
    BudgetOptimizer,
    BudgetProblem,
    BudgetRecommendation,
    ChannelBound,
    OptimizationError,
    ResponseModel,
)
from pipelines.config import BudgetSettings, RecommendSettings

SUCCESS, NO_CHAMPION, FAILED = "success", "no_champion", "failed"
ACT, HOLD, TEST = "act", "hold", "test"


@dataclass(frozen=True)
class Decision:
    """What a market should do with its recommendation, and the experiment that would settle it (``test``)."""

    verdict: str  # act, hold or test
    uplift_probability: float  # P(recommended split beats the current one)
    values: dict[str, float]  # EVPPI of each channel's ROAS for this decision (outcome units)
    test: LiftTestPlan | None = None
    test_value: float | None = None  # the tested channel's EVPPI


def decide(
    model: FittedModel, recommendation: BudgetRecommendation, settings: RecommendSettings, seed: int = 0
) -> Decision:
    """act when the uplift is credibly positive and rests on identified channels only; test when the move
    hinges on a channel the data cannot pin down; hold otherwise (``RecommendSettings`` says why).

    The test's channel is the moved, unidentified channel with the largest value of information for
    the decision (EVPPI), the spend moved on it times its ROAS interval's relative width breaking ties
    (EVPPI is 0 where the posterior, prior-driven or not, is sure of the move). Its design: ``design_test``.
    """
    probability = recommendation.uplift_probability
    values = decision_value(recommendation.current_roas_draws, recommendation.uplift_draws)
    by_channel = dict(zip(model.channel_names, values.tolist(), strict=True))
    width = roas_relative_width(model, settings.max_draws)
    table = recommendation.table.set_index("channel").reindex(model.channel_names)
    moved_spend = (table["recommended_spend"] - table["current_spend"]).abs().to_numpy()
    moved = moved_spend >= settings.min_moved_share * table["current_spend"].to_numpy()
    unidentified = ~(width <= settings.max_roas_relative_width)  # NaN (no spend, zero mean): unidentified
    candidates = np.flatnonzero(moved & unidentified)
    if probability >= settings.act_probability and not len(candidates):
        return Decision(ACT, probability, by_channel)
    if not len(candidates):
        return Decision(HOLD, probability, by_channel)
    ties = np.nan_to_num(moved_spend * width, nan=np.inf)
    best = max(candidates, key=lambda c: (values[c], ties[c]))
    plan = design_test(model, model.channel_names[best], settings, seed)
    return Decision(TEST, probability, by_channel, plan, float(values[best]))


def roas_relative_width(model: FittedModel, max_draws: int | None = 1000) -> np.ndarray:
    """Per channel: the 90% HDI width of ROAS over the training window divided by its mean."""
    draws = channel_metric_draws(model, max_draws=max_draws, marginal=False).sel(metric="roas").values
    stats = summarise(draws)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (stats["hdi_high"] - stats["hdi_low"]) / np.abs(stats["mean"])


def design_test(model: FittedModel, channel: str, settings: RecommendSettings, seed: int = 0) -> LiftTestPlan:
    """The shortest of ``test_weeks`` expected to narrow ``channel``'s ROAS HDI by ``target_narrowing``
    (the longest when none does), at the settings' spend change and standard error."""
    plan = None
    for weeks in sorted(settings.test_weeks):
        plan = plan_lift_test(
            model, channel, weeks, settings.test_spend_change, settings.test_se_factor, settings.max_draws, seed=seed
        )
        if plan.predicted_narrowing >= settings.target_narrowing:
            break
    assert plan is not None  # test_weeks has at least one duration
    return plan


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
    recommendation: BudgetRecommendation,
    budget: BudgetSettings,
    model_version: tuple[str, str],
    decision: Decision | None = None,
) -> list[dict]:
    """One row per channel of a solved market (the key columns are added by the caller).

    Every row carries the market's verdict and uplift probability; with ``test``, the tested channel's row
    carries the experiment (its ``test_rank`` within the brand is set by the job).
    """
    uplift = recommendation.uplift
    test = decision.test if decision is not None else None
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
                "uplift_probability": recommendation.uplift_probability,
                "verdict": decision.verdict if decision is not None else None,
                "decision_value": decision.values.get(row.channel) if decision is not None else None,
                **test_columns(test if test is not None and test.channel == row.channel else None, decision),
            }
        )
    return rows


def test_columns(test: LiftTestPlan | None, decision: Decision | None) -> dict:
    """The experiment's columns of a row (None where the row's channel is not the one to test)."""
    if test is None:
        return dict.fromkeys(TEST_COLUMNS)
    return {
        "test_start": test.start.date(),
        "test_weeks": test.weeks,
        "test_spend_change_pct": 100 * test.spend_change,
        "test_spend_delta": test.spend_delta,
        "test_lift_se": test.lift_se,
        "test_expected_lift": test.expected_lift,
        "test_predicted_narrowing": test.predicted_narrowing,
        "test_value": decision.test_value if decision is not None else None,
        "test_rank": None,
    }


TEST_COLUMNS = (
    "test_start",
    "test_weeks",
    "test_spend_change_pct",
    "test_spend_delta",
    "test_lift_se",
    "test_expected_lift",
    "test_predicted_narrowing",
    "test_value",
    "test_rank",
)


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
