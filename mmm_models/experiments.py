"""Which experiment would settle a budget decision, and how much it would teach: value of information
per channel, and the narrowing of a channel's ROAS interval that a lift test is expected to bring.

- ``decision_value``: the expected value of partial perfect information (EVPPI) of each channel's ROAS
  for the choice between the recommended split and the current one: how much better the decision
  would be, on average, if that channel's ROAS were known before making it. Estimated from the same
  posterior draws as the decision, by binning the draws on the channel's ROAS (a regression estimator,
  Strong & Oakley 2014).
- ``plan_lift_test`` / ``predicted_narrowing``: a go-dark (or any spend change) test of a channel over
  the market's latest weeks, with the standard error the market's noise allows, and the expected
  narrowing of the channel's 90% ROAS HDI after the test enters the fit. The test's likelihood is
  ``mmm_models.lift``'s (the modelled lift, window and carry-over, against a Normal observation), so
  the preposterior is the current posterior reweighted by that likelihood for simulated test outcomes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mmm_models import constants as C
from mmm_models.analysis import HDI_PROB, channel_metric_draws
from mmm_models.equations import lift_effects
from mmm_models.fitted import FittedModel
from mmm_models.lift import build_lift_design, validate_lift_tests

VALUE_BINS = 10  # EVPPI bins: 100 draws each at 1000 draws, a bin mean within ~0.1 sd of the uplift


def decision_value(roas_draws: np.ndarray, uplift_draws: np.ndarray, bins: int = VALUE_BINS) -> np.ndarray:
    """EVPPI of each channel (columns of ``roas_draws``, draws x channels) for adopting the plan whose
    uplift over the current plan is ``uplift_draws``: E[max(E[uplift | ROAS_c], 0)] - max(E[uplift], 0).

    In the outcome's units; 0 for a channel whose ROAS does not bear on the choice (or has none).
    """
    baseline = max(float(uplift_draws.mean()), 0.0)
    values = np.zeros(roas_draws.shape[1])
    for c in range(roas_draws.shape[1]):
        x = roas_draws[:, c]
        if not np.isfinite(x).all() or np.ptp(x) == 0:
            continue
        groups = np.array_split(np.argsort(x, kind="stable"), bins)
        conditional = np.array([uplift_draws[g].mean() for g in groups])
        sizes = np.array([len(g) for g in groups])
        values[c] = max(float((np.maximum(conditional, 0.0) * sizes).sum() / sizes.sum()) - baseline, 0.0)
    return values


def weighted_hdi_width(values: np.ndarray, weights: np.ndarray | None = None, prob: float = HDI_PROB) -> float:
    """Width of the shortest interval holding ``prob`` of the (weighted) draws."""
    order = np.argsort(values)
    v = values[order]
    w = np.full(len(v), 1.0 / len(v)) if weights is None else weights[order] / weights.sum()
    cumulative = np.concatenate([[0.0], np.cumsum(w)])
    ends = np.searchsorted(cumulative, cumulative[:-1] + prob - 1e-12, side="left")  # first j with mass >= prob
    valid = ends <= len(v)
    starts = np.flatnonzero(valid)
    widths = v[np.minimum(ends[valid], len(v)) - 1] - v[starts]
    return float(widths.min())


@dataclass(frozen=True)
class LiftTestPlan:
    """A proposed lift test of one channel and what it is expected to show and teach."""

    channel: str
    start: pd.Timestamp
    end: pd.Timestamp
    weeks: int
    spend_change: float  # relative: -1 is a go-dark test
    spend_delta: float  # total spend change over the window (original units)
    lift_se: float  # the standard error the test is assumed to measure its lift with
    expected_lift: float  # posterior mean of the modelled lift
    predicted_narrowing: float  # expected 1 - (ROAS 90% HDI width after) / (width now)

    def as_lift_test(self, lift: float) -> pd.DataFrame:
        """The test as ``mmm_models.lift`` input, with an observed ``lift``."""
        return pd.DataFrame(
            [
                {
                    "channel": self.channel,
                    "start": self.start,
                    "end": self.end,
                    "spend_delta": self.spend_delta,
                    "lift": lift,
                    "lift_se": self.lift_se,
                }
            ]
        )


def test_window(model: FittedModel, channel: str, weeks: int) -> tuple[int, int]:
    """First and last index (into ``model.data``) of the latest ``weeks`` weeks in which ``channel`` spends
    every week (the latest weeks with the most spend in their weakest week when there is none)."""
    spend = model.data[channel].to_numpy(float)
    lags = model.spec.max_l_max - 1
    starts = np.arange(lags, len(spend) - weeks + 1)
    if not len(starts):
        raise ValueError(f"{model.market}: too few weeks for a {weeks}-week test of {channel}")
    weakest = np.array([spend[s : s + weeks].min() for s in starts])
    spending = starts[weakest > 0]
    first = int(spending[-1]) if len(spending) else int(starts[np.flatnonzero(weakest == weakest.max())[-1]])
    return first, first + weeks - 1


def noise_sd(model: FittedModel) -> float:
    """The market's weekly noise sd in the target's units (posterior mean; under a log link, at the mean target)."""
    sigma = float(model.idata.posterior[C.NOISE_SIGMA].mean())
    if model.spec.target.link == "log":
        return sigma * float(np.nanmean(model.data[model.spec.target.column]))
    return sigma * model.scaling.target


def plan_lift_test(
    model: FittedModel,
    channel: str,
    weeks: int,
    spend_change: float = -1.0,
    se_factor: float = 1.0,
    max_draws: int | None = 1000,
    outcomes: int = 200,
    seed: int = 0,
) -> LiftTestPlan:
    """A test changing ``channel``'s spend by ``spend_change`` (relative) over its latest ``weeks`` weeks of
    spend, and its predicted narrowing of the channel's ROAS interval.

    The lift's standard error is ``se_factor`` x the market's weekly noise sd x sqrt(weeks): a test read
    from the market's own sales, as well as its week-to-week noise allows (a matched-market design with a
    control region does about that well, se_factor 1; a noisier read-out, more).
    """
    first, last = test_window(model, channel, weeks)
    dates = model.data[model.spec.date_column]
    delta = spend_change * float(model.data[channel].iloc[first : last + 1].sum())
    se = se_factor * noise_sd(model) * np.sqrt(weeks)
    plan = LiftTestPlan(channel, dates.iloc[first], dates.iloc[last], weeks, spend_change, delta, se, 0.0, 0.0)
    lifts = modelled_lift(model, plan.as_lift_test(0.0), max_draws)[:, 0]
    roas = channel_metric_draws(model, max_draws=max_draws, marginal=False).sel(channel=channel, metric="roas").values
    narrowing = predicted_narrowing(roas, lifts, se, outcomes, seed)
    return LiftTestPlan(channel, plan.start, plan.end, weeks, spend_change, delta, se, float(lifts.mean()), narrowing)


def modelled_lift(model: FittedModel, tests: pd.DataFrame, max_draws: int | None = 1000) -> np.ndarray:
    """Per posterior draw (thinned as ``FittedModel.draws(max_draws)``) and test: the model's lift, original units."""
    tests = validate_lift_tests(model.spec, tests, model.data, model.market)
    design = build_lift_design(model.spec, tests, model.data, model.scaling)
    params = model.draws(max_draws)
    return lift_effects(np, model.layout, design.model_data(), params)[:, : len(tests)] * model.scaling.target


def predicted_narrowing(roas: np.ndarray, lifts: np.ndarray, se: float, outcomes: int = 200, seed: int = 0) -> float:
    """Expected 1 - HDI width after / before of ``roas`` when a test measuring ``lifts`` (the same draws) with
    standard error ``se`` is added: test outcomes simulated from the posterior predictive, the posterior
    reweighted by each outcome's Normal likelihood, and the widths averaged."""
    rng = np.random.default_rng(seed)
    before = weighted_hdi_width(roas)
    if before <= 0:
        return 0.0
    widths = []
    for index in rng.integers(0, len(lifts), outcomes):
        observed = lifts[index] + rng.normal(0.0, se)
        log_weights = -0.5 * ((observed - lifts) / se) ** 2
        weights = np.exp(log_weights - log_weights.max())
        widths.append(weighted_hdi_width(roas, weights))
    return float(1.0 - np.mean(widths) / before)
