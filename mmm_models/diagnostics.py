"""Convergence and fit diagnostics, as one typed record per fit.

Convergence: max R-hat, min bulk and tail ESS, divergences, min BFMI over chains. Fit: R-squared and
MAPE of the posterior-mean expected outcome against the observed target, in-sample and on the
held-out last weeks (when the fit held any out).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import arviz as az
import numpy as np

from mmm_models.analysis import PosteriorEvaluator
from mmm_models.fitted import FittedModel


@dataclass(frozen=True)
class Diagnostics:
    max_rhat: float
    min_ess_bulk: float
    min_ess_tail: float
    divergences: int
    min_bfmi: float
    r2_train: float
    mape_train: float
    wape_train: float
    r2_holdout: float | None
    mape_holdout: float | None
    wape_holdout: float | None
    holdout_weeks: int

    def to_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


def diagnose(model: FittedModel) -> Diagnostics:
    """Diagnostics of a fitted model (posterior parameters only, derived quantities excluded)."""
    posterior = model.idata.posterior
    summary = az.summary(model.idata, var_names=list(posterior.data_vars), kind="diagnostics")
    stats = model.idata.sample_stats
    bfmi = az.bfmi(model.idata) if "energy" in stats else np.array([np.nan])

    evaluator = PosteriorEvaluator(model, max_draws=1000)
    expected = np.concatenate([evaluator.outcome(evaluator.mu_and_terms(p)[0]) for p in evaluator.chunks()]).mean(0)
    observed = model.data[model.spec.target.column].to_numpy(float)
    train = slice(0, model.train_weeks)
    holdout = slice(model.train_weeks, None)
    has_holdout = model.settings.holdout_weeks > 0
    return Diagnostics(
        max_rhat=float(summary["r_hat"].max()),
        min_ess_bulk=float(summary["ess_bulk"].min()),
        min_ess_tail=float(summary["ess_tail"].min()),
        divergences=int(stats["diverging"].sum()),
        min_bfmi=float(np.min(bfmi)),
        r2_train=r_squared(observed[train], expected[train]),
        mape_train=mape(observed[train], expected[train]),
        wape_train=wape(observed[train], expected[train]),
        r2_holdout=r_squared(observed[holdout], expected[holdout]) if has_holdout else None,
        mape_holdout=mape(observed[holdout], expected[holdout]) if has_holdout else None,
        wape_holdout=wape(observed[holdout], expected[holdout]) if has_holdout else None,
        holdout_weeks=model.settings.holdout_weeks,
    )


def r_squared(observed: np.ndarray, predicted: np.ndarray) -> float:
    """R squared over the weeks with an observation (gap weeks are NaN and left out)."""
    known = ~np.isnan(observed)
    observed, predicted = observed[known], predicted[known]
    residual = np.sum((observed - predicted) ** 2)
    total = np.sum((observed - observed.mean()) ** 2)
    return float(1.0 - residual / total) if total > 0 else float("nan")


def mape(observed: np.ndarray, predicted: np.ndarray) -> float:
    """Mean absolute percentage error, over weeks with a non-zero observation (gaps left out)."""
    nonzero = (observed != 0) & ~np.isnan(observed)
    return float(np.mean(np.abs((observed[nonzero] - predicted[nonzero]) / observed[nonzero])))


def wape(observed: np.ndarray, predicted: np.ndarray) -> float:
    """Weighted absolute percentage error: sum |error| / sum |observed| (gaps left out).

    Unlike MAPE it stays meaningful when some weeks are close to zero.
    """
    known = ~np.isnan(observed)
    total = np.abs(observed[known]).sum()
    return float(np.abs(observed[known] - predicted[known]).sum() / total) if total > 0 else float("nan")
