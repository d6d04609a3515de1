"""Budget recommendations, scored against the truth (issue 8, acceptance 3).

For each of N simulated markets (156 weeks, 4 channels): fit the model (short chains), then call the
recommend job's own optimisation (``pipelines.recommend.budget.recommend_budget`` and ``success_rows``)
with the default brand budget: the next 13 weeks, the current run-rate (mean weekly spend of the last
13 weeks) as the total, each channel between 0.5x and 2x its current spend. Then:

- every row's invariants: the recommended spend sums to the total, and each channel is within its bounds;
- the recommended and the current allocation evaluated under the simulator's TRUE parameters (the
  carry-over of the last weeks included): does the recommendation beat the current split, by how much,
  and what share of the uplift that the true optimum (same budget and bounds) would get does it capture?
  Uplift % is relative to the media's true incremental outcome under the current split (the period's
  spend, carry-over past its end included), not to total sales; ``predicted_uplift_pct`` is the model's
  expected uplift on the same base.

Last line: {"markets", "share_beating_current", "median_true_uplift_pct", "min_true_uplift_pct",
            "median_captured_pct", "max_budget_error", "bound_violations", "rows", "fit_s", "recommend_s"}

    python benchmarks/recommendations.py [--markets 12] [--draws 500]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np
import pandas as pd

from mmm_models.fitted import fit
from mmm_models.fitting import FitSettings
from mmm_models.optimizer import BudgetOptimizer, ResponseModel
from mmm_models.simulator import SimulationConfig, simulate_market, simulation_spec, truth_response_model
from pipelines.config import BudgetSettings
from pipelines.recommend.budget import budget_problem, recommend_budget, run_rate, success_rows


def true_response(truth: ResponseModel, plan: np.ndarray, weeks: int) -> float:
    """What the market would really deliver from ``plan`` (spend per channel over ``weeks``)."""
    return float(truth.channel_response(np, np.broadcast_to(plan / weeks, (weeks, len(plan)))).sum())


def score_market(index: int, config: SimulationConfig, budget: BudgetSettings, settings: FitSettings) -> dict:
    market = simulate_market(config, seed=900 + index)
    spend = market.data[list(config.channels)]
    clock = time.perf_counter()
    model = fit(simulation_spec(config), market.data, settings.model_copy(update={"seed": index}), market=f"sim{index}")
    fit_s = time.perf_counter() - clock
    clock = time.perf_counter()
    recommendation = recommend_budget(model, spend, budget)
    rows = pd.DataFrame(success_rows(recommendation, budget, ("sim", str(index))))
    recommend_s = time.perf_counter() - clock

    total = sum(run_rate(spend, budget).values())
    budget_error = abs(rows["recommended_spend"].sum() - total) / total
    slack = 1e-6 * total
    violations = int(
        (
            (rows["recommended_spend"] < rows["min_spend"] - slack)
            | (rows["recommended_spend"] > rows["max_spend"] + slack)
        ).sum()
    )
    truth = truth_response_model(market)  # its carry-over is the same last weeks of spend
    weeks = budget.period_weeks
    current = rows["current_spend"].to_numpy()
    optimum = BudgetOptimizer(truth, budget_problem(run_rate(spend, budget), budget)).solve()
    true_current = true_response(truth, current, weeks)
    true_recommended = true_response(truth, rows["recommended_spend"].to_numpy(), weeks)
    true_optimum = true_response(truth, optimum.table["recommended_spend"].to_numpy(), weeks)
    achievable = true_optimum - true_current
    return {
        "market": index,
        "budget": round(total, 0),
        "true_uplift_pct": 100 * (true_recommended / true_current - 1),
        "predicted_uplift_pct": 100 * recommendation.uplift["mean"] / true_current,
        "captured_pct": 100 * (true_recommended - true_current) / achievable if achievable > 0 else float("nan"),
        "beats_current": true_recommended > true_current,
        "budget_error": budget_error,
        "bound_violations": violations,
        "rows": len(rows),
        "fit_s": fit_s,
        "recommend_s": recommend_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--markets", type=int, default=12)
    parser.add_argument("--draws", type=int, default=500, help="draws (and tuning steps) per chain, 2 chains")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    config, budget = SimulationConfig(weeks=156), BudgetSettings()
    settings = FitSettings(chains=2, draws=args.draws, tune=args.draws)
    rows = []
    for index in range(args.markets):
        row = score_market(index, config, budget, settings)
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
        rows.append(row)
    frame = pd.DataFrame(rows)
    summary = {
        "markets": len(frame),
        "share_beating_current": round(float(frame["beats_current"].mean()), 4),
        "median_true_uplift_pct": round(float(frame["true_uplift_pct"].median()), 3),
        "min_true_uplift_pct": round(float(frame["true_uplift_pct"].min()), 3),
        "median_captured_pct": round(float(frame["captured_pct"].median()), 1),
        "max_budget_error": float(frame["budget_error"].max()),
        "bound_violations": int(frame["bound_violations"].sum()),
        "rows": int(frame["rows"].sum()),
        "fit_s": round(float(frame["fit_s"].sum()), 1),
        "recommend_s": round(float(frame["recommend_s"].sum()), 1),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
