"""Budget optimiser: correctness against the truth, and speed.

Correctness: for each of N simulated markets (156 weeks, 4 channels), fit the model, recommend a
13-week split of the current budget, and score the recommendation under the TRUE parameters against
the true optimum (the optimiser run on the true parameters; the test suite holds that to a brute-force
grid). Speed: 6 channels, 1000 posterior draws, a 13-week horizon, timed cold (JAX compile included)
and warm.

Last line: {"markets", "median_true_optimum_ratio", "min_true_optimum_ratio", "median_uplift_pct",
            "speed_cold_s", "speed_warm_s", "speed_channels", "speed_draws"}

    python benchmarks/optimizer.py [--markets 10]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np

from mmm_models.fitted import fit
from mmm_models.fitting import FitSettings
from mmm_models.optimizer import BudgetOptimizer, BudgetProblem, ResponseModel
from mmm_models.simulator import SimulationConfig, simulate_market, simulation_spec, truth_response_model

HORIZON = 13


def true_response(truth: ResponseModel, totals: np.ndarray) -> float:
    weekly = np.broadcast_to(totals / HORIZON, (HORIZON, len(totals)))
    return float(truth.channel_response(np, weekly).sum())


def correctness(markets: int) -> list[dict]:
    config = SimulationConfig(weeks=156)
    spec = simulation_spec(config)
    rows = []
    for index in range(markets):
        market = simulate_market(config, seed=500 + index)
        truth = truth_response_model(market)
        current = dict(zip(truth.channels, truth.history.mean(axis=0) * HORIZON, strict=True))
        problem = BudgetProblem(horizon_weeks=HORIZON, current_plan=current)
        optimum = BudgetOptimizer(truth, problem).solve().table["recommended_spend"].to_numpy()
        model = fit(spec, market.data, FitSettings(seed=index), market=f"sim{index}")
        recommended = BudgetOptimizer(ResponseModel.from_fitted(model), problem).solve()
        spend = recommended.table["recommended_spend"].to_numpy()
        current_spend = np.array(list(current.values()))
        row = {
            "market": index,
            "true_optimum_ratio": true_response(truth, spend) / true_response(truth, optimum),
            "true_uplift_pct": 100 * (true_response(truth, spend) / true_response(truth, current_spend) - 1),
            "predicted_uplift_pct": 100 * recommended.uplift["mean"] / true_response(truth, current_spend),
        }
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
        rows.append(row)
    return rows


def speed() -> dict:
    config = SimulationConfig(weeks=156, channels=("tv", "radio", "search", "social", "display", "video"))
    market = simulate_market(config, seed=7)
    model = fit(simulation_spec(config), market.data, FitSettings(chains=4, draws=250, tune=500, seed=1))
    response = ResponseModel.from_fitted(model, max_draws=1000)
    problem = BudgetProblem(horizon_weeks=HORIZON, objective="mean_minus_sd")
    timings = []
    for _ in range(2):
        start = time.perf_counter()
        BudgetOptimizer(response, problem).solve()
        timings.append(time.perf_counter() - start)
    draws = len(response.params["channel_coef"])
    return {
        "speed_cold_s": round(timings[0], 3),
        "speed_warm_s": round(timings[1], 3),
        "speed_channels": len(response.channels),
        "speed_draws": draws,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--markets", type=int, default=10)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    rows = correctness(args.markets)
    ratios = np.array([r["true_optimum_ratio"] for r in rows])
    summary = {
        "markets": len(rows),
        "median_true_optimum_ratio": round(float(np.median(ratios)), 4),
        "min_true_optimum_ratio": round(float(ratios.min()), 4),
        "median_uplift_pct": round(float(np.median([r["true_uplift_pct"] for r in rows])), 2),
        **speed(),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
