"""Budget optimiser: optimality against brute force, constraints, risk, name matching, errors."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest

from mmm_models.data import lag_tensor
from mmm_models.equations import channel_contributions
from mmm_models.optimizer import BudgetOptimizer, BudgetProblem, ChannelBound, OptimizationError
from mmm_models.simulator import SimulationConfig, simulate_market, truth_response_model

CONFIG = SimulationConfig(weeks=104, channels=("tv", "search", "social"))


@pytest.fixture(scope="module")
def truth():
    return truth_response_model(simulate_market(CONFIG, seed=11))


def true_total(response, totals: np.ndarray, weeks: int = 13) -> float:
    weekly = np.broadcast_to(totals / weeks, (weeks, len(totals)))
    return float(response.channel_response(np, weekly).sum())


def brute_force_optimum(response, budget: float, steps: int = 200) -> float:
    """Best true response on a grid of the budget simplex (step = budget / steps)."""
    best = -np.inf
    for a, b in itertools.product(range(steps + 1), repeat=2):
        if a + b <= steps:
            shares = np.array([a, b, steps - a - b]) / steps
            best = max(best, true_total(response, shares * budget))
    return best


def test_reaches_the_brute_force_optimum(truth) -> None:
    budget = float(truth.history.mean(axis=0).sum() * 13)
    result = BudgetOptimizer(truth, BudgetProblem(horizon_weeks=13, total_budget=budget)).solve()
    achieved = true_total(truth, result.table["recommended_spend"].to_numpy())
    assert achieved >= 0.995 * brute_force_optimum(truth, budget)


def test_budget_sums_exactly_and_bounds_hold(truth) -> None:
    current = {c: v for c, v in zip(truth.channels, truth.history.mean(axis=0) * 13, strict=True)}
    problem = BudgetProblem(
        total_budget=sum(current.values()),
        current_plan=current,
        bounds={
            "tv": ChannelBound(min=0.7, max=1.3, relative=True),
            "search": ChannelBound(max=current["search"] * 0.5),
        },
    )
    table = BudgetOptimizer(truth, problem).solve().table.set_index("channel")
    assert table["recommended_spend"].sum() == pytest.approx(sum(current.values()), rel=1e-6)
    assert 0.7 * current["tv"] * (1 - 1e-9) <= table.loc["tv", "recommended_spend"] <= 1.3 * current["tv"] * (1 + 1e-9)
    assert table.loc["search", "recommended_spend"] <= 0.5 * current["search"] * (1 + 1e-9)


def test_locked_channel_keeps_its_spend(truth) -> None:
    current = dict(zip(truth.channels, truth.history.mean(axis=0) * 13, strict=True))
    problem = BudgetProblem(total_budget=sum(current.values()) * 1.2, current_plan=current, locked=["social"])
    table = BudgetOptimizer(truth, problem).solve().table.set_index("channel")
    assert table.loc["social", "recommended_spend"] == pytest.approx(current["social"], rel=1e-9)
    assert table["recommended_spend"].sum() == pytest.approx(sum(current.values()) * 1.2, rel=1e-6)


def test_target_roas_spends_until_the_target_binds(truth) -> None:
    current = dict(zip(truth.channels, truth.history.mean(axis=0) * 13, strict=True))
    bounds = {c: ChannelBound(max=5.0, relative=True) for c in truth.channels}
    rich = BudgetOptimizer(truth, BudgetProblem(current_plan=current, bounds=bounds, target_roas=0.5)).solve()
    strict = BudgetOptimizer(truth, BudgetProblem(current_plan=current, bounds=bounds, target_roas=1.5)).solve()
    for result, target in ((rich, 0.5), (strict, 1.5)):
        roas = result.response_draws.mean() / result.total_budget
        assert roas >= target * (1 - 1e-4)
    assert strict.total_budget < rich.total_budget


def test_risk_aware_objectives_prefer_the_certain_channel(truth) -> None:
    """Two identical channels, except that one's effect is uncertain: the mean objective splits
    evenly, mean - sd and CVaR move budget to the certain one."""
    rng = np.random.default_rng(0)
    params = {k: np.repeat(v, 2000, axis=0) for k, v in truth.params.items()}
    coef = params["channel_coef"].copy()
    coef[:, :2] = coef[:, [0]]  # tv and search: the same effect ...
    spread = rng.lognormal(0.0, 0.5, 2000)
    coef[:, 1] *= spread / spread.mean()  # ... except that search's is uncertain, with the same mean
    params["channel_coef"] = coef
    for name in ("adstock_geometric_alpha", "saturation_logistic_lam"):
        params[name] = params[name].copy()
        params[name][:, 1] = params[name][:, 0]
    params["saturation_logistic_lam"][:, :2] = 3.0  # clearly concave, so the mean optimum is interior
    history = truth.history.copy()
    history[:, 1] = history[:, 0]
    twin = replace(truth, params=params, spend_scale=np.repeat(truth.spend_scale[:1], 3), history=history)
    tv_quarter = float(truth.history[:, 0].mean() * 13)
    current = {"tv": tv_quarter, "search": tv_quarter, "social": tv_quarter}
    shares = {}
    for objective in ("mean", "mean_minus_sd", "cvar"):
        problem = BudgetProblem(
            total_budget=3 * tv_quarter, current_plan=current, locked=["social"], objective=objective, risk_k=1.0
        )
        table = BudgetOptimizer(twin, problem).solve().table.set_index("channel")
        shares[objective] = table.loc["tv", "recommended_spend"] / (
            table.loc[["tv", "search"], "recommended_spend"].sum()
        )
    assert shares["mean"] == pytest.approx(0.5, abs=0.05)
    assert shares["mean_minus_sd"] > shares["mean"] + 0.05
    assert shares["cvar"] > shares["mean"] + 0.05


def test_channel_order_does_not_matter(truth) -> None:
    order = [2, 0, 1]
    layout_free = replace(
        truth,
        channels=[truth.channels[i] for i in order],
        params={k: v[:, order] for k, v in truth.params.items()},
        spend_scale=truth.spend_scale[order],
        history=truth.history[:, order],
    )
    budget = float(truth.history.mean(axis=0).sum() * 13)
    a = BudgetOptimizer(truth, BudgetProblem(total_budget=budget)).solve().table.set_index("channel")
    b = BudgetOptimizer(layout_free, BudgetProblem(total_budget=budget)).solve().table.set_index("channel")
    np.testing.assert_allclose(
        a.loc[truth.channels, "recommended_spend"],
        b.loc[truth.channels, "recommended_spend"],
        rtol=1e-4,
        atol=1e-6 * budget,
    )


@pytest.mark.parametrize(
    ("problem", "message"),
    [
        (BudgetProblem(total_budget=100.0, bounds={"radio": ChannelBound(max=5)}), "unknown channels ['radio']"),
        (BudgetProblem(total_budget=100.0, locked=["radio"]), "unknown channels ['radio']"),
        (
            BudgetProblem(total_budget=100.0, bounds={"tv": ChannelBound(min=60), "search": ChannelBound(min=60)}),
            "below the sum of channel minimums",
        ),
        (
            BudgetProblem(total_budget=100.0, bounds={c: ChannelBound(max=10) for c in ("tv", "search", "social")}),
            "above the sum of channel maximums",
        ),
        (
            BudgetProblem(total_budget=100.0, bounds={"tv": ChannelBound(min=20, max=10)}),
            "minimum 20.00 is above maximum",
        ),
        (BudgetProblem(target_roas=1.0), "needs a maximum for every channel"),
    ],
    ids=[
        "unknown-bound",
        "unknown-lock",
        "budget-below-minimums",
        "budget-above-maximums",
        "min-above-max",
        "target-roas-unbounded",
    ],
)
def test_bad_problems_are_refused(truth, problem: BudgetProblem, message: str) -> None:
    with pytest.raises(OptimizationError) as error:
        BudgetOptimizer(truth, problem)
    assert message in str(error.value)


def test_budget_and_target_are_exclusive() -> None:
    with pytest.raises(ValueError, match="either total_budget or target_roas"):
        BudgetProblem(total_budget=1.0, target_roas=2.0)


def test_response_counts_carry_over_into_and_out_of_the_horizon(truth) -> None:
    weeks, channels, lags = 13, len(truth.channels), truth.l_max - 1
    last_week_only = np.zeros((weeks, channels))
    last_week_only[-1, 0] = truth.history[:, 0].mean()
    credited = float(truth.channel_response(np, last_week_only)[0, 0])

    def weekly(plan: np.ndarray) -> np.ndarray:
        series = np.concatenate([truth.history, plan, np.zeros((lags, channels))]) / truth.spend_scale
        lagged = lag_tensor(series, truth.l_max)[lags:]
        return channel_contributions(np, truth.layout, {"spend_lags": lagged}, truth.params)[0, :, 0]

    incremental = weekly(last_week_only) - weekly(np.zeros_like(last_week_only))
    assert credited == pytest.approx(incremental.sum(), rel=1e-12)
    # most of the last week's effect lands after the horizon, and it is credited
    assert incremental[weeks:].sum() > 0.1 * credited
    # the spend before the horizon moves the channel along its saturation curve: a busier history
    # leaves less headroom, so the same plan adds less
    plan = np.full((weeks, channels), truth.history.mean(axis=0))
    busy = replace(truth, history=truth.history * 3)
    assert (busy.channel_response(np, plan)[0] < truth.channel_response(np, plan)[0]).all()
