"""One market's budget recommendation: its run-rate, the brand's budget question, the optimiser's answer, and
the rows the job writes. No Spark and no MLflow: the recommend job and the benchmark call exactly this."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from mmm_models.fitted import FittedModel
from mmm_models.optimizer import (
    BudgetOptimizer,
    BudgetProblem,
    BudgetRecommendation,
    ChannelBound,
    OptimizationError,
    ResponseModel,
)
from pipelines.config import BudgetSettings

SUCCESS, NO_CHAMPION, FAILED = "success", "no_champion", "failed"


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
