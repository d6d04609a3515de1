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
from mmm_models.data import build_design, validate_market_frame
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
    expected = np.concatenate([evaluator.outcome(evaluator.mu_and_terms(p, design)[0]) for p in evaluator.chunks()])
    draws = expected
    if include_noise:
        mu = np.concatenate([evaluator.mu_and_terms(p, design)[0] for p in evaluator.chunks()])
        draws = evaluator.outcome(mu + _noise(model, evaluator.params, mu.shape, seed))
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
