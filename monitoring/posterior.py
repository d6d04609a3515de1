"""Business quantities per posterior draw, and the drift between two fitted versions of one market.

Both versions are evaluated over the same weeks: the training weeks they share. ROAS and contribution
share depend on the spend of the period (saturation, carry-over), so comparing each version over its
own window would report the extra quarter's spend as drift. Adstock half-life and half-saturation
spend do not depend on the period. All four are in business units, so a different scaling between
versions cannot pass for drift.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mmm_models import analysis
from mmm_models.fitted import FittedModel
from monitoring.drift import compare_draws

METRICS = ("roas", "contribution_share", "adstock_half_life", "half_saturation_spend")


def shared_period(first: FittedModel, second: FittedModel) -> analysis.Period:
    """The training weeks both models saw (an error when they share none)."""

    def window(model: FittedModel) -> tuple[pd.Timestamp, pd.Timestamp]:
        dates = pd.to_datetime(model.data[model.spec.date_column]).iloc[: model.train_weeks]
        return dates.iloc[0], dates.iloc[-1]

    (start_a, end_a), (start_b, end_b) = window(first), window(second)
    start, end = max(start_a, start_b), min(end_a, end_b)
    if start > end:
        raise ValueError(
            f"{first.market}: the two versions share no training weeks ({start_a.date()}..{end_a.date()} "
            f"vs {start_b.date()}..{end_b.date()})"
        )
    return analysis.Period(str(start.date()), str(end.date()))


def posterior_drift(
    champion: FittedModel, challenger: FittedModel, metrics: tuple[str, ...] = METRICS, max_draws: int | None = 1000
) -> pd.DataFrame:
    """One row per channel and metric: the drift measures of ``monitoring.drift`` over the shared weeks.

    A channel without spend in the shared weeks has no ROAS; its row is left out rather than guessed.
    """
    unknown = sorted(set(metrics) - set(METRICS))
    if unknown:
        raise ValueError(f"unknown drift metrics {unknown}; choose from {list(METRICS)}")
    period = shared_period(champion, challenger)
    before, after = (
        analysis.channel_metric_draws(m, period, max_draws, marginal=False) for m in (champion, challenger)
    )
    rows = []
    for channel in champion.channel_names:
        if channel not in challenger.channel_names:
            continue
        for metric in metrics:
            a, b = (draws.sel(channel=channel, metric=metric).values for draws in (before, after))
            if not (np.isfinite(a).all() and np.isfinite(b).all()):
                continue
            rows.append({"channel": channel, "metric": metric, **compare_draws(a, b).to_dict()})
    frame = pd.DataFrame(rows)
    return frame.assign(period_start=pd.Timestamp(period.start).date(), period_end=pd.Timestamp(period.end).date())
