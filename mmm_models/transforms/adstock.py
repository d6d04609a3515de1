"""Adstock: carry-over of media spend into later weeks, as a convolution with a learned kernel.

Every kernel has ``l_max`` lags (lag 0 is the week of spend) and its weights are normalised to sum
to one, so adstock moves spend in time without changing its total. Inputs are lag tensors
``x[t, l, c] = spend[t - l, c]`` built once from the data, which turns the convolution into one
multiply-and-sum (fast to compile and to differentiate).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from mmm_models.priors import Prior
from mmm_models.transforms.base import Transform


class Adstock(Transform):
    """Base class: subclasses define ``kernel`` (unnormalised weights per lag)."""

    kind: ClassVar[str] = "adstock"
    l_max: int = Field(default=8, gt=0, le=104, description="number of lags, the week of spend included")

    def kernel(self, xp: Any, lags: np.ndarray, **params: Any) -> Any:
        """Unnormalised weights; ``lags`` has shape (l_max, 1), params (..., 1, channels)."""
        raise NotImplementedError

    def weights(self, xp: Any, **params: Any) -> Any:
        """Normalised weights of shape (..., l_max, channels)."""
        lags = np.arange(self.l_max, dtype=float)[:, None]
        expanded = {name: xp.expand_dims(value, -2) for name, value in params.items()}
        raw = self.kernel(xp, lags, **expanded)
        return raw / raw.sum(axis=-2, keepdims=True)

    def apply(self, xp: Any, spend_lags: Any, **params: Any) -> Any:
        """Adstocked spend (..., weeks, channels) from lag tensor ([markets,] weeks, lags, channels);
        with a market axis, parameters are (..., markets, channels)."""
        # The sum runs over the last axis, lags moved behind channels: the brand model's XLA program (40
        # Meridian geos, float32, CPU) took 2.6-3.2 ms per log density and gradient summing over the middle
        # axis, 0.57 ms over the last.
        weights = xp.swapaxes(self.weights(xp, **params), -1, -2)  # (..., channels, l_max)
        lags = xp.swapaxes(spend_lags[..., : self.l_max, :], -1, -2)  # ([markets,] weeks, channels, l_max)
        return (lags * xp.expand_dims(weights, -3)).sum(axis=-1)

    def structure_key(self) -> tuple[Any, ...]:
        return (*super().structure_key(), self.l_max)


class GeometricAdstock(Adstock):
    """Weight ``alpha ** lag``: the effect decays by a factor alpha each week."""

    type: Literal["geometric"] = "geometric"
    default_priors: ClassVar[dict[str, Prior]] = {"alpha": Prior(dist="Beta", params={"alpha": 1, "beta": 3})}

    def kernel(self, xp: Any, lags: np.ndarray, alpha: Any) -> Any:
        return alpha**lags


class DelayedAdstock(Adstock):
    """Weight ``alpha ** ((lag - theta) ** 2)``: the effect peaks ``theta`` weeks after spend.

    This is the delayed adstock of Jin et al. (2017), Google.
    """

    type: Literal["delayed"] = "delayed"
    default_priors: ClassVar[dict[str, Prior]] = {
        "alpha": Prior(dist="Beta", params={"alpha": 2, "beta": 2}),
        "theta": Prior(dist="HalfNormal", params={"sigma": 2}),
    }

    def kernel(self, xp: Any, lags: np.ndarray, alpha: Any, theta: Any) -> Any:
        return alpha ** ((lags - theta) ** 2)


class WeibullAdstock(Adstock):
    """Weibull probability density over lags 1..l_max, with a learned shape and scale (in weeks).

    A shape below 1 gives a fast decay, above 1 a delayed peak; the scale stretches the kernel.
    """

    type: Literal["weibull"] = "weibull"
    default_priors: ClassVar[dict[str, Prior]] = {
        "shape": Prior(dist="Gamma", params={"alpha": 2, "beta": 1}),
        "scale": Prior(dist="Gamma", params={"alpha": 2, "beta": 1}),
    }

    def kernel(self, xp: Any, lags: np.ndarray, shape: Any, scale: Any) -> Any:
        ratio = (lags + 1.0) / scale
        return shape / scale * ratio ** (shape - 1.0) * xp.exp(-(ratio**shape))


ADSTOCKS: dict[str, type[Adstock]] = {
    cls.model_fields["type"].default: cls for cls in (GeometricAdstock, DelayedAdstock, WeibullAdstock)
}


def half_life(weights: np.ndarray) -> np.ndarray:
    """Weeks until half of the total effect has been delivered, interpolated between lags.

    ``weights`` has lags on axis -2 (as returned by ``Adstock.weights``); the result drops that axis.
    Lag 0 delivers its weight during week 0, so a kernel with all its weight at lag 0 has half-life 0.5.
    """
    cumulative = np.cumsum(weights, axis=-2)
    previous = np.concatenate([np.zeros_like(cumulative[..., :1, :]), cumulative[..., :-1, :]], axis=-2)
    crossed = (cumulative >= 0.5) & (previous < 0.5)
    lag = np.argmax(crossed, axis=-2)
    low = np.take_along_axis(previous, lag[..., None, :], axis=-2)[..., 0, :]
    width = np.take_along_axis(weights, lag[..., None, :], axis=-2)[..., 0, :]
    return lag + (0.5 - low) / width
