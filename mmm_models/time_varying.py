"""Time-varying effects: a Hilbert-space Gaussian process (HSGP) over the weeks of the window.

An HSGP approximates a GP with a stationary kernel by ``f(t) = phi(t) @ (sqrt(S(omega)) * z)``:
``phi`` is a fixed sine basis on ``[-L, L]``, ``S`` the kernel's spectral density at the basis
frequencies and ``z`` standard normal (Solin & Saerkkae 2020; PyMC's ``pm.gp.HSGP``). The basis
depends only on the dates, so it is *data*: every market of a structure shares one compiled graph.

Two uses, both optional in the spec:
- ``intercept``: a smooth baseline ``f(t)`` added to mu (scaled target units);
- ``media``: one multiplier ``exp(f(t))`` per entry, on the effect of the channels it lists.

Time is in weeks since the start of the training window, so length-scale priors are in weeks. Each
basis function is centred over the training weeks, which makes every ``f`` average zero there (a
multiplier's geometric mean is 1): a multiplier then moves effectiveness *around* the channel's
effect instead of trading off with it, and "constant effect" is the multiplier 1. Outside the
training window the time is clamped to its edge: a forecast or plan uses the effectiveness of the
latest (or earliest) training week.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from mmm_models.priors import Prior

# Median 26 weeks; 90% of the prior mass between about 10 and 70 weeks: smooth drift over quarters.
DEFAULT_LENGTH_SCALE = Prior(dist="LogNormal", params={"mu": 3.26, "sigma": 0.6})


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class GPComponent(_Frozen):
    """One smooth function of time: its length-scale prior (in weeks) and amplitude prior."""

    length_scale_weeks: Prior = DEFAULT_LENGTH_SCALE
    amplitude: Prior = Prior(dist="HalfNormal", params={"sigma": 0.1})


class MediaMultiplier(GPComponent):
    """A multiplier ``exp(f(t))`` shared by ``channels``; amplitude is on the log scale."""

    name: str | None = Field(default=None, description="defaults to the channel names joined by '+'")
    channels: list[str] = Field(min_length=1)
    amplitude: Prior = Prior(dist="HalfNormal", params={"sigma": 0.25})

    @property
    def label(self) -> str:
        return self.name or "+".join(self.channels)


class TimeVaryingSpec(_Frozen):
    """HSGP settings shared by every time-varying component, and the components themselves."""

    basis_functions: int = Field(default=24, ge=4, le=200, description="m, the number of sine basis functions")
    boundary_factor: float = Field(default=1.5, ge=1.1, le=5.0, description="L = factor x half the window")
    intercept: GPComponent | None = None
    media: list[MediaMultiplier] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check_media(self) -> TimeVaryingSpec:
        listed = [c for m in self.media for c in m.channels]
        repeated = sorted({c for c in listed if listed.count(c) > 1})
        if repeated:
            raise ValueError(f"a channel can have one time-varying multiplier only; repeated: {repeated}")
        labels = [m.label for m in self.media]
        if len(set(labels)) != len(labels):
            raise ValueError(f"media multiplier names must be unique, got {labels}")
        return self

    def multiplier_map(self, channel_names: list[str]) -> np.ndarray:
        """(multipliers, channels): 1 where the multiplier applies to the channel."""
        out = np.zeros((len(self.media), len(channel_names)))
        for k, multiplier in enumerate(self.media):
            for name in multiplier.channels:
                out[k, channel_names.index(name)] = 1.0
        return out


def basis(dates: np.ndarray, time_origin: str, span_weeks: float, spec: TimeVaryingSpec) -> dict[str, np.ndarray]:
    """The HSGP design: centred basis (weeks, m), its value at the last training week (m,), and the
    basis frequencies (m,). Weeks outside ``[origin, origin + span]`` are clamped to the edge."""
    origin = np.datetime64(dt.date.fromisoformat(time_origin), "D")
    t = (np.asarray(dates, dtype="datetime64[D]") - origin).astype(float) / 7.0
    half = max(span_weeks / 2.0, 1.0)
    bound = spec.boundary_factor * half
    frequencies = np.pi * np.arange(1, spec.basis_functions + 1) / (2.0 * bound)

    def phi(weeks: np.ndarray) -> np.ndarray:
        x = np.clip(weeks, 0.0, span_weeks) - half
        return np.sin(frequencies * (x[:, None] + bound)) / np.sqrt(bound)

    centre = phi(np.arange(0.0, span_weeks + 1.0)).mean(axis=0)
    return {
        "gp_basis": phi(t) - centre,
        "gp_basis_last": phi(np.array([span_weeks]))[0] - centre,
        "gp_frequencies": frequencies,
    }


def spectral_coefficients(name: str, component: GPComponent, frequencies: Any, dims: tuple[str, ...]) -> Any:
    """``sqrt(S(omega)) * amplitude * z``, of shape ``dims``, with ``name``-prefixed variables.

    ``frequencies`` is (..., m) with any market axes in front; ``dims`` ends with the basis axis.
    The length scale and amplitude are one per component (shared by every market of a brand); the
    standard-normal ``z`` is per market, so each market follows its own path.
    """
    import pymc as pm

    length_scale = component.length_scale_weeks.create_variable(f"{name}_length_scale")
    amplitude = component.amplitude.create_variable(f"{name}_amplitude")
    kernel = pm.gp.cov.Matern52(1, ls=length_scale)
    density = kernel.power_spectral_density(frequencies[..., None])
    z = pm.Normal(f"{name}_z", 0.0, 1.0, dims=dims)
    return amplitude * density**0.5 * z
