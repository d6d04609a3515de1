"""Base class of the media transforms (adstock, saturation).

A transform is a small frozen pydantic model: its ``type`` names it in config, ``default_priors``
gives a prior for each parameter, and ``priors`` overrides them per channel. The maths is written
once against an array namespace ``xp`` (``numpy`` or ``pytensor.tensor``), so the same formula runs
inside the PyMC model and, as its NumPy twin, over posterior draws in analysis and prediction.

Parameter arrays carry the channels of one group on their last axis and any batch axes (posterior
draws) in front, so one call evaluates every channel of a group for every draw.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mmm_models.priors import Prior


class Transform(BaseModel):
    """A parametric media transform with default priors."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: ClassVar[str]
    default_priors: ClassVar[dict[str, Prior]]
    type: str
    priors: dict[str, Prior] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check_prior_names(self) -> Transform:
        unknown = set(self.priors) - set(self.default_priors)
        if unknown:
            raise ValueError(
                f"{self.type} {self.kind} has no parameter {sorted(unknown)}; "
                f"its parameters are {sorted(self.default_priors)}"
            )
        return self

    @property
    def param_names(self) -> list[str]:
        """Parameter names, in a fixed order."""
        return sorted(self.default_priors)

    def prior(self, param: str) -> Prior:
        """The prior of ``param``: the configured one, else the default."""
        return self.priors.get(param, self.default_priors[param])

    def structure_key(self) -> tuple[Any, ...]:
        """What decides the shape of the compiled graph (not the prior values)."""
        return (self.kind, self.type, *(self.prior(p).dist for p in self.param_names))
