"""What a model review measures, without verdicts: naive forecasts, prior-to-posterior learning of ROAS,
and the baseline's share. The thresholds that turn these into PASS / REVIEW / FAIL live with the
platform (``pipelines.training.review``); a notebook can read the numbers directly.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from mmm_models.analysis import HDI_PROB, channel_metric_draws, summarise
from mmm_models.diagnostics import wape
from mmm_models.fitted import FittedModel

SEASON_WEEKS = 52


def naive_holdout_wape(model: FittedModel) -> dict[str, float | None]:
    """Holdout WAPE of two naive forecasts that need no model:

    - ``seasonal``: each held-out week's value a year (52 weeks) earlier, when the data reach that far;
    - ``level``: the mean of the last training weeks (as many as are held out), flat over the holdout.

    ``best`` is the smaller of the two: the bar a model has to clear. None without held-out weeks.
    """
    holdout = model.settings.holdout_weeks
    if holdout == 0:
        return {"seasonal": None, "level": None, "best": None}
    y = model.data[model.spec.target.column].to_numpy(float)
    train, observed = model.train_weeks, y[model.train_weeks :]
    level = np.full(holdout, np.nanmean(y[max(train - holdout, 0) : train]))
    found = {"level": wape(observed, level), "seasonal": None}
    if train >= SEASON_WEEKS:
        seasonal = y[train - SEASON_WEEKS : train - SEASON_WEEKS + holdout]
        if not np.isnan(seasonal).any():
            found["seasonal"] = wape(observed, seasonal)
    found["best"] = min(v for v in found.values() if v is not None)
    return found


def roas_learning(posterior: xr.DataArray, prior: xr.DataArray, hdi_prob: float = HDI_PROB) -> pd.DataFrame:
    """Per channel: how far the data moved ROAS from its prior. ``posterior`` and ``prior`` are
    ``channel_metric_draws`` (draw x channel x metric) of the fit and of its prior.

    - ``contraction``: 1 - posterior sd / prior sd (0: the data taught nothing; 1: ROAS pinned down);
    - ``shift_sd``: |posterior mean - prior mean| in prior sds (the data moved it, whatever its width);
    - ``relative_width``: the posterior's 90% HDI width over its mean (2 is an interval twice as wide
      as the estimate; a channel whose ROAS could be zero or twice the mean cannot be ranked).
    """
    post = posterior.sel(metric="roas").values
    before = prior.sel(metric="roas").values
    post_stats, prior_stats = summarise(post, hdi_prob), summarise(before, hdi_prob)
    with np.errstate(divide="ignore", invalid="ignore"):
        width = post_stats["hdi_high"] - post_stats["hdi_low"]
        return pd.DataFrame(
            {
                "channel": posterior.channel.values,
                "prior_mean": prior_stats["mean"],
                "prior_sd": prior_stats["sd"],
                "posterior_mean": post_stats["mean"],
                "posterior_sd": post_stats["sd"],
                "hdi_low": post_stats["hdi_low"],
                "hdi_high": post_stats["hdi_high"],
                "contraction": 1.0 - post_stats["sd"] / prior_stats["sd"],
                "shift_sd": np.abs(post_stats["mean"] - prior_stats["mean"]) / prior_stats["sd"],
                "relative_width": width / np.abs(post_stats["mean"]),
            }
        )


def prior_metric_draws(model: FittedModel, max_draws: int | None = None) -> xr.DataArray:
    """``channel_metric_draws`` of the model's prior (its ``prior`` group, see ``mmm_models.predictive``)."""
    import arviz as az

    if "prior" not in model.idata.groups():
        raise ValueError(f"{model.market}: no prior group; call predictive.add_predictive_groups(model) first")
    prior = FittedModel(
        model.spec, model.scaling, az.InferenceData(posterior=model.idata.prior), model.data, model.settings
    )
    return channel_metric_draws(prior, max_draws=max_draws, marginal=False)


def baseline_share_draws(metrics: xr.DataArray) -> np.ndarray:
    """Per draw: the share of the observed target left to the baseline (1 - the channels' shares).

    Exact under an identity link; under a log link the channels' counterfactual shares do not add up,
    and this is an approximation.
    """
    return 1.0 - metrics.sel(metric="contribution_share").values.sum(axis=1)
