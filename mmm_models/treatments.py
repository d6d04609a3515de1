"""Non-media treatments (promotions, price): each one's contribution, reported like a channel's.

A treatment's term is ``coef x (x - reference) / scale`` (see ``TreatmentSpec``); its contribution over
a period is the outcome with the treatment as it was minus the outcome with it at its reference, summed
over the period's weeks, in the data's units.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mmm_models import constants as C
from mmm_models.analysis import HDI_PROB, Period, PosteriorEvaluator, summarise
from mmm_models.fitted import FittedModel


def treatment_summary(
    model: FittedModel, period: Period | None = None, hdi_prob: float = HDI_PROB, max_draws: int | None = None
) -> pd.DataFrame:
    """One row per treatment: its contribution over the period (default: the training window) and its
    share of the observed target, each as mean, sd and HDI."""
    names = [t.name for t in model.spec.treatments]
    if not names:
        return pd.DataFrame(columns=["treatment"])
    weeks = (period or Period()).mask(model)
    evaluator = PosteriorEvaluator(model, max_draws)
    features = evaluator.design.treatments  # (weeks, treatments), already measured from the reference
    chunks = []
    for params in evaluator.chunks():
        mu, _ = evaluator.mu_and_terms(params)
        terms = features[None] * params[C.TREATMENT_COEF][:, None, :]  # (draws, weeks, treatments)
        change = evaluator.outcome_change(mu[..., None] - terms, terms)
        chunks.append(change[:, weeks].sum(axis=1))
    contribution = np.concatenate(chunks)
    observed = float(np.nansum(model.data[model.spec.target.column].to_numpy(float)[weeks]))
    stats = {"contribution": summarise(contribution, hdi_prob), "share": summarise(contribution / observed, hdi_prob)}
    return pd.DataFrame(
        {
            "treatment": names,
            **{f"{metric}_{k}": v for metric, values in stats.items() for k, v in values.items()},
        }
    )
