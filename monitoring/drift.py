"""Distances between two posteriors of one quantity, from their draws, in the quantity's own units.

Three views of "did the refit change its mind?":

- ``mean_shift_sd``: (challenger mean - champion mean) / champion sd. Signed; the rules use its size.
  Under no real change a refit on 13 more weeks of ~160 moves the mean by about
  ``sqrt(13 / 169) = 0.28`` champion sds, so shifts of 2 or 3 sds are far outside refit noise.
- ``hdi_overlap``: length of the intersection of the two 90% HDIs over the shorter one's length:
  1 when one contains the other (more data narrowing the interval is not drift), 0 when they part.
- ``wasserstein`` (Wasserstein-1, ``scipy.stats.wasserstein_distance``) in the quantity's units, and
  ``wasserstein_sd``, the same over the champion sd. It sees changes of shape and spread that the
  mean misses (for a pure location shift it equals the shift).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import arviz as az
import numpy as np
from scipy.stats import wasserstein_distance

HDI_PROB = 0.9


@dataclass(frozen=True)
class DriftMeasures:
    """How far a challenger's posterior draws of one quantity sit from the champion's."""

    champion_mean: float
    champion_sd: float
    champion_hdi_low: float
    champion_hdi_high: float
    challenger_mean: float
    challenger_sd: float
    challenger_hdi_low: float
    challenger_hdi_high: float
    mean_shift_sd: float
    hdi_overlap: float
    wasserstein: float
    wasserstein_sd: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def hdi_overlap(first: tuple[float, float], second: tuple[float, float]) -> float:
    """Length of the intervals' intersection over the shorter interval's length (0..1)."""
    shorter = min(first[1] - first[0], second[1] - second[0])
    intersection = max(0.0, min(first[1], second[1]) - max(first[0], second[0]))
    if shorter <= 0:  # a point interval: inside the other one or not
        return float(intersection > 0 or (first[0] <= second[1] and second[0] <= first[1]))
    return float(intersection / shorter)


def compare_draws(champion: np.ndarray, challenger: np.ndarray, hdi_prob: float = HDI_PROB) -> DriftMeasures:
    """Drift measures between two sets of draws (1-D, any lengths; non-finite draws are an error)."""
    champion, challenger = np.asarray(champion, dtype=float), np.asarray(challenger, dtype=float)
    for name, draws in (("champion", champion), ("challenger", challenger)):
        if draws.ndim != 1 or len(draws) < 2:
            raise ValueError(f"{name} draws must be a 1-D array of at least 2 draws, got shape {draws.shape}")
        if not np.isfinite(draws).all():
            raise ValueError(f"{name} draws contain NaN or infinite values")
    low_a, high_a = az.hdi(champion, hdi_prob=hdi_prob)
    low_b, high_b = az.hdi(challenger, hdi_prob=hdi_prob)
    sd = float(champion.std())
    distance = float(wasserstein_distance(champion, challenger))
    shift = float(challenger.mean() - champion.mean())
    return DriftMeasures(
        champion_mean=float(champion.mean()),
        champion_sd=sd,
        champion_hdi_low=float(low_a),
        champion_hdi_high=float(high_a),
        challenger_mean=float(challenger.mean()),
        challenger_sd=float(challenger.std()),
        challenger_hdi_low=float(low_b),
        challenger_hdi_high=float(high_b),
        mean_shift_sd=_in_sds(shift, sd),
        hdi_overlap=hdi_overlap((low_a, high_a), (low_b, high_b)),
        wasserstein=distance,
        wasserstein_sd=_in_sds(distance, sd),
    )


def _in_sds(value: float, sd: float) -> float:
    """``value / sd``; a degenerate champion (sd 0) gives 0 for no change and inf for any change."""
    if sd > 0:
        return value / sd
    return 0.0 if value == 0 else float(np.copysign(np.inf, value))
