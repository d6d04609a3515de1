"""What-if prediction: the outcome of a spend plan, as posterior predictive quantiles.

A plan is a weekly frame with the spend of every channel (by name) and the controls' values. The
spend of the model's weeks before the plan starts carries over into it through adstock, so a plan
that starts right after the training data behaves as a continuation of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mmm_models import constants as C
from mmm_models.analysis import PosteriorEvaluator
from mmm_models.data import DataError, build_design, validate_market_frame
from mmm_models.fitted import FittedModel

DEFAULT_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


@dataclass(frozen=True)
class Forecast:
    """Outcome of a plan: weekly quantiles, quantiles of the plan total, and the draws behind them."""

    weekly: pd.DataFrame  # date, expected_mean, q0.05, ... (posterior predictive, noise included)
    total: dict[str, float]  # expected_mean and the same quantiles of the summed outcome
    draws: np.ndarray  # (draws, weeks) posterior predictive outcome, original units
    expected_draws: np.ndarray  # (draws, weeks) expected outcome (no observation noise)


def predict(
    model: FittedModel,
    plan: pd.DataFrame,
    quantiles: tuple[float, ...] = DEFAULT_QUANTILES,
    include_noise: bool = True,
    seed: int = 0,
    max_draws: int | None = None,
) -> Forecast:
    """Posterior predictive outcome of ``plan`` (spend per channel per week, by column name)."""
    spec = model.spec
    plan = validate_market_frame(spec, plan, f"{model.market} plan", is_plan=True)
    start = plan[spec.date_column].iloc[0]
    history = model.data[model.data[spec.date_column] < start]
    design = build_design(spec, plan, model.scaling, history=history, bucket=None)
    evaluator = PosteriorEvaluator(model, max_draws)
    mu = np.concatenate([evaluator.mu_and_terms(p, design)[0] for p in evaluator.chunks()])
    expected = evaluator.outcome(mu)
    draws = evaluator.outcome(mu + _noise(model, evaluator.params, mu.shape, seed)) if include_noise else expected
    weekly = pd.DataFrame({"date": plan[spec.date_column].to_numpy(), "expected_mean": expected.mean(axis=0)})
    for q, values in zip(quantiles, np.quantile(draws, quantiles, axis=0), strict=True):
        weekly[f"q{q:g}"] = values
    totals = draws.sum(axis=1)
    total = {"expected_mean": float(expected.sum(axis=1).mean())}
    total.update({f"q{q:g}": float(v) for q, v in zip(quantiles, np.quantile(totals, quantiles), strict=True)})
    return Forecast(weekly=weekly, total=total, draws=draws, expected_draws=expected)


def _noise(model: FittedModel, params: dict[str, np.ndarray], shape: tuple[int, ...], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    sigma = params[C.NOISE_SIGMA][:, None]
    if model.spec.target.likelihood == "student_t":
        return sigma * rng.standard_t(params[C.NOISE_NU][:, None], size=shape)
    return sigma * rng.standard_normal(shape)


@dataclass(frozen=True)
class ScenarioComparison:
    """Scenario minus baseline: the difference of expected outcomes, per draw and summarised."""

    difference: dict[str, float]  # mean, sd, hdi_low, hdi_high of the summed difference
    weekly: pd.DataFrame  # date, difference mean and HDI per week (plan weeks, then spill-over weeks)
    draws: np.ndarray  # (draws,) summed difference


def compare_scenarios(
    model: FittedModel, scenario: pd.DataFrame, baseline: pd.DataFrame, max_draws: int | None = None
) -> ScenarioComparison:
    """How much more (or less) outcome ``scenario`` brings than ``baseline``, with its uncertainty.

    Both plans must cover the same weeks. They are extended by ``l_max - 1`` weeks of zero spend
    (controls held at their last planned value), so spend late in a plan is credited with the
    carry-over it has after the plan ends. The same posterior draws are used on both sides, so the
    difference's interval reflects only the model's uncertainty about the change.
    """
    from mmm_models.analysis import summarise

    spec = model.spec
    scenario = validate_market_frame(spec, scenario, f"{model.market} scenario", is_plan=True)
    baseline = validate_market_frame(spec, baseline, f"{model.market} baseline", is_plan=True)
    if not scenario[spec.date_column].equals(baseline[spec.date_column]):
        raise DataError("scenario and baseline must cover the same weeks")
    extended = [_with_spill(spec, plan) for plan in (scenario, baseline)]
    outcomes = [predict(model, plan, include_noise=False, max_draws=max_draws).expected_draws for plan in extended]
    weekly_draws = outcomes[0] - outcomes[1]
    total = weekly_draws.sum(axis=1)
    stats = summarise(weekly_draws)
    weekly = pd.DataFrame({"date": extended[0][spec.date_column].to_numpy(), **stats})
    return ScenarioComparison(difference={k: float(v) for k, v in summarise(total).items()}, weekly=weekly, draws=total)


def _with_spill(spec, plan: pd.DataFrame) -> pd.DataFrame:
    spill = spec.max_l_max - 1
    if not spill:
        return plan
    last = plan.iloc[[-1] * spill].copy()
    last[spec.date_column] = plan[spec.date_column].iloc[-1] + pd.to_timedelta(7 * np.arange(1, spill + 1), "D")
    last[spec.channel_names] = 0.0
    return pd.concat([plan, last], ignore_index=True)
