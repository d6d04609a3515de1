"""Prior distributions stated in config, validated once, turned into PyMC variables on demand.

A prior is written in YAML as ``{dist: Beta, alpha: 1, beta: 3}``. Parameter names are checked
against the distribution, and positive-only parameters must be positive, so that a typo is reported
with the field that holds it instead of surfacing as a sampler error.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from pydantic import BaseModel, ConfigDict, model_validator

# For every supported family: its parameters, and which of them must be strictly positive.
_FAMILIES: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "Normal": (frozenset({"mu", "sigma"}), frozenset({"sigma"})),
    "HalfNormal": (frozenset({"sigma"}), frozenset({"sigma"})),
    "LogNormal": (frozenset({"mu", "sigma"}), frozenset({"sigma"})),
    "Beta": (frozenset({"alpha", "beta"}), frozenset({"alpha", "beta"})),
    "Gamma": (frozenset({"alpha", "beta"}), frozenset({"alpha", "beta"})),
    "Exponential": (frozenset({"lam"}), frozenset({"lam"})),
    "HalfStudentT": (frozenset({"nu", "sigma"}), frozenset({"nu", "sigma"})),
    "StudentT": (frozenset({"nu", "mu", "sigma"}), frozenset({"nu", "sigma"})),
    "Laplace": (frozenset({"mu", "b"}), frozenset({"b"})),
    "TruncatedNormal": (frozenset({"mu", "sigma", "lower", "upper"}), frozenset({"sigma"})),
    "Uniform": (frozenset({"lower", "upper"}), frozenset()),
}


class Prior(BaseModel):
    """One prior distribution: a PyMC family name and its parameters."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dist: str
    params: dict[str, float]

    @model_validator(mode="before")
    @classmethod
    def _gather_params(cls, value: Any) -> Any:
        """Accept the flat YAML form ``{dist: Beta, alpha: 1, beta: 3}``."""
        if isinstance(value, dict) and "params" not in value:
            value = dict(value)
            dist = value.pop("dist", None)
            return {"dist": dist, "params": value}
        return value

    @model_validator(mode="after")
    def _check_family(self) -> Prior:
        if self.dist not in _FAMILIES:
            raise ValueError(f"unknown distribution {self.dist!r}; choose one of {sorted(_FAMILIES)}")
        allowed, positive = _FAMILIES[self.dist]
        unknown = set(self.params) - allowed
        if unknown:
            raise ValueError(f"{self.dist} has no parameter {sorted(unknown)}; its parameters are {sorted(allowed)}")
        for name in positive & set(self.params):
            if not self.params[name] > 0:
                raise ValueError(f"{self.dist} parameter {name!r} must be > 0, got {self.params[name]}")
        if self.dist == "Uniform" and self.params.get("lower", 0.0) >= self.params.get("upper", 1.0):
            raise ValueError("Uniform needs lower < upper")
        return self

    def create_variable(self, name: str, dims: str | tuple[str, ...] | None = None) -> Any:
        """Create the PyMC random variable ``name``: a scalar, or one per element of ``dims``."""
        return getattr(pm, self.dist)(name, **self.params, dims=dims)


def stacked_variable(name: str, priors: list[Prior], dims: str, batch: tuple[str, ...] = ()) -> Any:
    """One vector variable whose elements each have their own prior.

    Elements whose priors share a family (and parameter names) become one vector random variable
    with per-element parameters, which keeps the graph, and so compile time, small. With several
    families, each gets its own variable (``<name>_<family>``) and ``name`` is their combination.
    ``batch`` dims (a brand's markets) go in front: every market draws its own vector.
    """
    groups: dict[tuple[str, tuple[str, ...]], list[int]] = {}
    for index, prior in enumerate(priors):
        groups.setdefault((prior.dist, tuple(sorted(prior.params))), []).append(index)
    if len(groups) == 1:
        return _vector_variable(name, priors, (*batch, dims))
    batch_shape = tuple(len(pm.modelcontext(None).coords[d]) for d in batch)
    parts, order = [], []
    for (family, _), indices in groups.items():
        part = [priors[i] for i in indices]
        parts.append(_vector_variable(f"{name}_{family.lower()}", part, shape=(*batch_shape, len(part))))
        order.extend(indices)
    combined = pt.concatenate(parts, axis=-1)[..., np.argsort(order)]
    return pm.Deterministic(name, combined, dims=(*batch, dims))


def _vector_variable(
    name: str, priors: list[Prior], dims: tuple[str, ...] | None = None, shape: tuple[int, ...] | None = None
) -> Any:
    family = priors[0].dist
    params = {k: np.array([p.params[k] for p in priors]) for k in priors[0].params}
    return getattr(pm, family)(name, **params, dims=dims, shape=shape)
