"""Partial pooling for brand models: markets drawn around the brand, in a non-centred form.

A market's parameter is ``inverse_link(link(brand) + sd * z)`` with ``z`` standard normal. The link
follows the support of the parameter's prior (a scaled logit on an interval, a shifted log on a
half-line, identity on the real line), so a market value always stays inside the support its prior
allows. Sampling ``z`` instead of the market values removes the funnel between ``sd`` and the market
values that a centred hierarchy has when the markets agree closely.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from mmm_models import constants as C
from mmm_models.data import Design
from mmm_models.lift import LiftDesign
from mmm_models.priors import Prior, stacked_variable
from mmm_models.spec import ModelSpec

GROUP = "channel_group"
GROUPED_CHANNEL = "grouped_channel"
UNGROUPED_CHANNEL = "ungrouped_channel"
_REAL_LINE = {"Normal", "StudentT", "Laplace"}


@dataclass(frozen=True)
class Link:
    """How a prior's support maps onto the real line.

    ``logit``: the interval ``lower + width * (0, 1)``; ``log``: ``lower + width * (0, inf)`` (a
    negative width bounds from above); ``identity``: the real line. Every link increases, so a
    positive shift on the link scale always raises the value.
    """

    kind: Literal["logit", "log", "identity"]
    lower: float = 0.0
    width: float = 1.0


def link_of(prior: Prior) -> Link:
    """The link of the prior's support: Beta and two-sided bounds logit, one-sided bounds and
    positive families log, unbounded families identity."""
    params = prior.params
    if prior.dist == "Beta":
        return Link("logit")
    if prior.dist in ("Uniform", "TruncatedNormal"):
        default = (0.0, 1.0) if prior.dist == "Uniform" else (None, None)
        lower, upper = params.get("lower", default[0]), params.get("upper", default[1])
        if lower is not None and upper is not None:
            return Link("logit", lower, upper - lower)
        if lower is not None:
            return Link("log", lower, 1.0)
        return Link("log", upper, -1.0) if upper is not None else Link("identity")
    return Link("identity") if prior.dist in _REAL_LINE else Link("log")


def _forward(kind: str, x: pt.TensorVariable, lower: np.ndarray, width: np.ndarray) -> pt.TensorVariable:
    if kind == "identity":
        return x
    unit = (x - lower) / width
    return pt.log(unit) - pt.log1p(-unit) if kind == "logit" else np.sign(width) * pt.log(unit)


def _inverse(kind: str, y: pt.TensorVariable, lower: np.ndarray, width: np.ndarray) -> pt.TensorVariable:
    if kind == "identity":
        return y
    return lower + width * (pt.sigmoid(y) if kind == "logit" else pt.exp(np.sign(width) * y))


def shift_on_link_scale(location: pt.TensorVariable, shift: pt.TensorVariable, links: list[Link]) -> pt.TensorVariable:
    """``inverse(link(location) + shift)`` element by element, each element with its own link."""
    by_kind: dict[str, list[int]] = {}
    for index, link in enumerate(links):
        by_kind.setdefault(link.kind, []).append(index)

    def moved(kind: str, indices: list[int], at: pt.TensorVariable, by: pt.TensorVariable) -> pt.TensorVariable:
        lower = np.array([links[i].lower for i in indices])
        width = np.array([links[i].width for i in indices])
        return _inverse(kind, _forward(kind, at, lower, width) + by, lower, width)

    if len(by_kind) == 1:  # one link for all: no slicing and re-ordering in the graph
        ((kind, indices),) = by_kind.items()
        return moved(kind, indices, location, shift)
    parts = [moved(kind, indices, location[indices], shift[..., indices]) for kind, indices in by_kind.items()]
    order = [i for indices in by_kind.values() for i in indices]
    return pt.concatenate(parts, axis=-1)[..., np.argsort(order)]


def pooled_variable(
    name: str, priors: list[Prior], dim: str, spread: Prior, location: pt.TensorVariable | None = None
) -> pt.TensorVariable:
    """Per-market values (market, dim) of a parameter whose brand-level value has ``priors``.

    ``location`` overrides the brand-level values (used when channels pool within a group first).
    """
    if location is None:
        location = stacked_variable(f"{name}_brand", priors, dim)
    sd = spread.create_variable(f"{name}_market_sd", dims=dim)
    z = pm.Normal(f"{name}_market_z", 0.0, 1.0, dims=(C.MARKET, dim))
    value = shift_on_link_scale(location, sd * z, [link_of(p) for p in priors])
    return pm.Deterministic(name, value, dims=(C.MARKET, dim))


def grouped_coords(spec: ModelSpec) -> dict[str, list[str]]:
    """Coordinates of the channel-group level, when the spec configures groups."""
    groups = spec.pooling.channel_groups
    if not groups:
        return {}
    grouped = [c for c in spec.channel_names if spec.pooling.group_of(c) is not None]
    ungrouped = [c for c in spec.channel_names if spec.pooling.group_of(c) is None]
    coords = {GROUP: list(groups), GROUPED_CHANNEL: grouped}
    return {**coords, UNGROUPED_CHANNEL: ungrouped} if ungrouped else coords


def brand_effect_location(spec: ModelSpec, priors: list[Prior]) -> pt.TensorVariable | None:
    """Brand-level channel effects with configured channel groups, or ``None`` without groups.

    A group's channels scatter around one group effect (drawn from the prior they share, see the spec)
    by ``group_sd``, non-centred like the market level; ungrouped channels keep their own prior.
    """
    groups = spec.pooling.channel_groups
    if not groups:
        return None
    names = spec.channel_names
    group_names = list(groups)
    grouped = [i for i, c in enumerate(names) if spec.pooling.group_of(c) is not None]
    ungrouped = [i for i, c in enumerate(names) if spec.pooling.group_of(c) is None]
    group_priors = [priors[names.index(groups[g][0])] for g in group_names]
    group_effect = stacked_variable(f"{C.CHANNEL_EFFECT}_group", group_priors, GROUP)
    group_sd = spec.pooling.group_sd.create_variable(f"{C.CHANNEL_EFFECT}_group_sd", dims=GROUP)
    owner = np.array([group_names.index(spec.pooling.group_of(names[i])) for i in grouped])
    w = pm.Normal(f"{C.CHANNEL_EFFECT}_channel_z", 0.0, 1.0, dims=GROUPED_CHANNEL)
    links = [link_of(group_priors[g]) for g in owner]
    parts = [shift_on_link_scale(group_effect[owner], group_sd[owner] * w, links)]
    if ungrouped:
        parts.append(stacked_variable(f"{C.CHANNEL_EFFECT}_own", [priors[i] for i in ungrouped], UNGROUPED_CHANNEL))
    location = pt.concatenate(parts)[np.argsort(grouped + ungrouped)]
    return pm.Deterministic(f"{C.CHANNEL_EFFECT}_brand", location, dims=C.CHANNEL)


@dataclass(frozen=True)
class BrandDesign:
    """The design arrays of a brand's markets, stacked on a leading market axis.

    Every market is padded at the front to ``weeks``; padded weeks are masked out of the
    likelihood, so a market with a shorter history is fitted on exactly the weeks it has.
    """

    markets: list[str]
    designs: list[Design]
    weeks: int

    def model_data(self) -> dict[str, np.ndarray]:
        return _stack([d.model_data() for d in self.designs], front={n: self.weeks for n in _WEEKLY})


@dataclass(frozen=True)
class BrandLift:
    """The markets' lift-test arrays, stacked: tests and rows padded (masked) to the longest."""

    designs: list[LiftDesign]

    def model_data(self) -> dict[str, np.ndarray]:
        arrays = [d.model_data() for d in self.designs]
        rows = max(a["lift_rows"].shape[1] for a in arrays)
        tests = max(a["lift_rows"].shape[0] for a in arrays)
        ends = {
            "lift_base_lags": (rows,),
            "lift_changed_lags": (rows,),
            f"lift_{C.GP_BASIS}": (rows,),
            "lift_rows": (tests, rows),
            "lift_channel": (tests,),
            "lift_observed": (tests,),
            "lift_se": (tests,),
            "lift_mask": (tests,),
        }
        return _stack(arrays, back=ends, fill={"lift_se": 1.0})


_WEEKLY = ("spend_lags", "controls", "events", "fourier", "trend", "target", "mask", C.GP_BASIS)


def _stack(
    arrays: list[dict[str, np.ndarray]],
    front: dict[str, int] | None = None,
    back: dict[str, tuple[int, ...]] | None = None,
    fill: dict[str, float] | None = None,
) -> dict[str, np.ndarray]:
    """Stack per-market arrays on a new first axis, padding the first axis at the front (weeks) or
    the leading axes at the back (lift tests and rows) so that every market has the same shape."""
    front, back, fill = front or {}, back or {}, fill or {}
    out = {}
    for name in arrays[0]:
        padded = []
        for values in arrays:
            value = values[name]
            widths = [(0, 0)] * value.ndim
            if name in front:
                widths[0] = (front[name] - value.shape[0], 0)
            for axis, size in enumerate(back.get(name, ())):
                widths[axis] = (0, size - value.shape[axis])
            padded.append(np.pad(value, widths, constant_values=fill.get(name, 0.0)))
        out[name] = np.stack(padded)
    return out
