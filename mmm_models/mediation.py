"""Funnel mediation: each channel's effect split into direct and through-the-mediator parts.

A channel listed under a mediator (see ``MediatorSpec``) moves the target two ways: directly, and by
lifting the mediator (e.g. branded search), which in turn lifts the target. Its total effect, the sum,
is what ``channel_summary``, response curves and the optimiser use; this module reports the parts.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mmm_models.analysis import HDI_PROB, Period, PosteriorEvaluator, summarise
from mmm_models.equations import channel_effect_parts
from mmm_models.fitted import FittedModel

EFFECT_PARTS = ("direct", "indirect", "total")


def mediation_summary(
    model: FittedModel, period: Period | None = None, hdi_prob: float = HDI_PROB, max_draws: int | None = None
) -> pd.DataFrame:
    """One row per channel and part (direct, indirect, total): contribution over the period (default:
    the training window) and ROAS, each as mean, sd and HDI, in the data's units.

    Mediators need an identity link, so the parts are the channel's additive terms and add up.
    """
    weeks = (period or Period()).mask(model)
    evaluator = PosteriorEvaluator(model, max_draws)
    data = evaluator.design.model_data()
    direct, indirect = [], []
    for params in evaluator.chunks():
        d, i = channel_effect_parts(np, model.layout, data, params)
        direct.append(evaluator.outcome(d[:, weeks].sum(axis=1)))
        indirect.append(evaluator.outcome(i[:, weeks].sum(axis=1)))
    draws = {"direct": np.concatenate(direct), "indirect": np.concatenate(indirect)}
    draws["total"] = draws["direct"] + draws["indirect"]
    spend = np.where([c.organic for c in model.spec.channels], 0.0, evaluator.design.cost[weeks].sum(axis=0))
    rows = []
    for part in EFFECT_PARTS:
        contribution = summarise(draws[part], hdi_prob)
        with np.errstate(divide="ignore", invalid="ignore"):
            roas = summarise(np.where(spend > 0, draws[part] / spend, np.nan), hdi_prob)
        for c, channel in enumerate(model.channel_names):
            rows.append(
                {
                    "channel": channel,
                    "part": part,
                    **{f"contribution_{k}": float(v[c]) for k, v in contribution.items()},
                    **{f"roas_{k}": float(v[c]) for k, v in roas.items()},
                }
            )
    return pd.DataFrame(rows)
