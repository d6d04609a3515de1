"""Media transforms: adstock (carry-over) and saturation (diminishing returns)."""

from mmm_models.transforms.adstock import (
    ADSTOCKS,
    Adstock,
    DelayedAdstock,
    GeometricAdstock,
    WeibullAdstock,
    half_life,
)
from mmm_models.transforms.saturation import (
    SATURATIONS,
    HillSaturation,
    LogisticSaturation,
    MichaelisMentenSaturation,
    Saturation,
)

__all__ = [
    "ADSTOCKS",
    "SATURATIONS",
    "Adstock",
    "DelayedAdstock",
    "GeometricAdstock",
    "HillSaturation",
    "LogisticSaturation",
    "MichaelisMentenSaturation",
    "Saturation",
    "WeibullAdstock",
    "half_life",
]
