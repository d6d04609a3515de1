"""Saturation: diminishing returns of (adstocked) spend, on spend scaled by the channel's scale.

Every curve is 0 at 0, increasing, and bounded by 1 (logistic, Hill, Michaelis-Menten), so the
channel coefficient is the effect at full saturation. ``half_saturation`` gives the scaled spend at
which the curve reaches half its maximum, the quantity that is comparable across refits.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np

from mmm_models.priors import Prior
from mmm_models.transforms.base import Transform


class Saturation(Transform):
    """Base class: subclasses define ``function`` and ``half_saturation``."""

    kind: ClassVar[str] = "saturation"

    def function(self, xp: Any, x: Any, **params: Any) -> Any:
        """Saturated value of ``x`` (..., weeks, channels); params broadcast as (..., 1, channels)."""
        raise NotImplementedError

    def apply(self, xp: Any, x: Any, **params: Any) -> Any:
        """``function`` with parameters given as (..., channels)."""
        return self.function(xp, x, **{name: xp.expand_dims(v, -2) for name, v in params.items()})

    def half_saturation(self, **params: np.ndarray) -> np.ndarray:
        """Scaled spend at which the curve reaches one half."""
        raise NotImplementedError


class LogisticSaturation(Saturation):
    """``(1 - exp(-lam x)) / (1 + exp(-lam x))``, i.e. ``tanh(lam x / 2)``."""

    type: Literal["logistic"] = "logistic"
    default_priors: ClassVar[dict[str, Prior]] = {"lam": Prior(dist="Gamma", params={"alpha": 3, "beta": 1})}

    def function(self, xp: Any, x: Any, lam: Any) -> Any:
        decay = xp.exp(-lam * x)
        return (1.0 - decay) / (1.0 + decay)

    def half_saturation(self, lam: np.ndarray) -> np.ndarray:
        return np.log(3.0) / lam


class HillSaturation(Saturation):
    """``x**slope / (x**slope + half**slope)``: an S-curve when slope > 1."""

    type: Literal["hill"] = "hill"
    default_priors: ClassVar[dict[str, Prior]] = {
        "half": Prior(dist="Gamma", params={"alpha": 2, "beta": 3}),
        "slope": Prior(dist="Gamma", params={"alpha": 3, "beta": 2}),
    }

    def function(self, xp: Any, x: Any, half: Any, slope: Any) -> Any:
        # x**slope has an undefined gradient in slope at x == 0; evaluate on a safe value instead.
        positive = x > 0
        safe_x = xp.where(positive, x, 1.0)
        ratio = (safe_x / half) ** slope
        return xp.where(positive, ratio / (1.0 + ratio), 0.0)

    def half_saturation(self, half: np.ndarray, slope: np.ndarray) -> np.ndarray:
        return np.broadcast_to(half, np.broadcast_shapes(half.shape, slope.shape)).copy()


class MichaelisMentenSaturation(Saturation):
    """``x / (half + x)``: concave from the first unit of spend."""

    type: Literal["michaelis_menten"] = "michaelis_menten"
    default_priors: ClassVar[dict[str, Prior]] = {"half": Prior(dist="Gamma", params={"alpha": 2, "beta": 3})}

    def function(self, xp: Any, x: Any, half: Any) -> Any:
        return x / (half + x)

    def half_saturation(self, half: np.ndarray) -> np.ndarray:
        return np.asarray(half).copy()


SATURATIONS: dict[str, type[Saturation]] = {
    cls.model_fields["type"].default: cls for cls in (LogisticSaturation, HillSaturation, MichaelisMentenSaturation)
}
