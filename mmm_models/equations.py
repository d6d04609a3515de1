"""The model's equations, written once against an array namespace.

``xp`` is ``pytensor.tensor`` when building the PyMC model and ``numpy`` when evaluating posterior
draws (analysis, prediction). Parameters may carry batch axes in front (draws); data arrays do not.

    mu_t = intercept + f_0(t) + trend_t + seasonality_t + controls_t + events_t + treatments_t
           + sum_c channel_coef_c * m_c(t) * saturation_c(adstock_c(spend_c))_t
           + sum_k mediator_coef_k * z_k(t)

``z_k`` is a funnel mediator (e.g. branded search), observed, with its own regression
``z_k(t) = baseline_k(t) + sum_c mediator_channel_coef_kc * saturation_c(...)_t + noise``. Channel
terms are reported as total effects: the direct term plus ``mediator_coef_k * mediator_channel_coef_kc
* saturation_c`` (the part that runs through the mediator); the mediator's own part (baseline and
noise, times its coefficient) is a separate component, so the terms still add up to mu.

``f_0`` (a time-varying baseline) and ``m_c`` (a channel's effectiveness multiplier) are optional
HSGP terms (see ``time_varying``); without them ``f_0 = 0`` and ``m_c = 1``. In a brand model every
data array has a market axis in front of the weeks, and every parameter one in front of its own
axes (after any draw axes), so the same equations serve one market and a brand of markets.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from mmm_models import constants as C
from mmm_models.spec import ModelSpec
from mmm_models.transforms import Adstock, Saturation


@dataclass(frozen=True)
class ChannelGroup:
    """Channels that share one transform type and so one vector variable per parameter."""

    name: str
    transform: Adstock | Saturation
    channels: tuple[int, ...]

    def variable(self, param: str) -> str:
        return f"{self.name}_{param}"

    @property
    def dim(self) -> str:
        return f"{self.name}_channel"


@dataclass(frozen=True)
class ChannelLayout:
    """How the spec's channels are grouped into vector variables, and the permutation back."""

    adstock: tuple[ChannelGroup, ...]
    saturation: tuple[ChannelGroup, ...]
    multiplier_map: np.ndarray | None = None  # (multipliers, channels) for time-varying channels
    mediator_map: np.ndarray | None = None  # (mediators, channels): 1 where a channel drives a mediator
    frequency_map: np.ndarray | None = None  # (reach and frequency channels, channels)

    @classmethod
    def from_spec(cls, spec: ModelSpec) -> ChannelLayout:
        media = spec.time_varying.media if spec.time_varying else []
        return cls(
            adstock=_groups([c.adstock for c in spec.channels], "adstock"),
            saturation=_groups([c.saturation for c in spec.channels], "saturation"),
            multiplier_map=spec.time_varying.multiplier_map(spec.channel_names) if media else None,
            mediator_map=spec.mediator_map() if spec.mediators else None,
            frequency_map=_selector(spec.reach_frequency_channels, spec.channel_names),
        )

    def group_params(self, params: Mapping[str, Any], group: ChannelGroup) -> dict[str, Any]:
        return {p: params[group.variable(p)] for p in group.transform.param_names}


def _selector(chosen: list[str], names: list[str]) -> np.ndarray | None:
    """(chosen, names): 1 where a chosen name sits among ``names``; None when none is chosen."""
    return np.eye(len(names))[[names.index(c) for c in chosen]] if chosen else None


def _groups(transforms: list[Any], kind: str) -> tuple[ChannelGroup, ...]:
    by_key: dict[tuple[Any, ...], list[int]] = {}
    for index, transform in enumerate(transforms):
        by_key.setdefault(transform.structure_key(), []).append(index)
    groups = []
    seen: dict[str, int] = {}
    for indices in by_key.values():
        transform = transforms[indices[0]]
        base = f"{kind}_{transform.type}"
        seen[base] = seen.get(base, 0) + 1
        name = base if seen[base] == 1 else f"{base}{seen[base]}"
        groups.append(ChannelGroup(name=name, transform=transform, channels=tuple(indices)))
    return tuple(groups)


def _group_channels(values: Any, group: ChannelGroup, groups: tuple[ChannelGroup, ...]) -> Any:
    """The group's channels of ``values`` (..., channels); the array itself when the group holds every
    channel in order, which spares the model's gradient a gather and its scatter at every evaluation."""
    if len(groups) == 1 and group.channels == tuple(range(len(group.channels))):
        return values
    return values[..., list(group.channels)]


def _in_channel_order(xp: Any, parts: list[Any], groups: tuple[ChannelGroup, ...]) -> Any:
    order = [c for g in groups for c in g.channels]
    joined = parts[0] if len(parts) == 1 else xp.concatenate(parts, axis=-1)
    if order == sorted(order):
        return joined
    return joined[..., np.argsort(order)]


def adstocked_spend(xp: Any, layout: ChannelLayout, spend_lags: Any, params: Mapping[str, Any]) -> Any:
    """Adstocked scaled spend, (..., weeks, channels)."""
    parts = [
        group.transform.apply(
            xp, _group_channels(spend_lags, group, layout.adstock), **layout.group_params(params, group)
        )
        for group in layout.adstock
    ]
    return _in_channel_order(xp, parts, layout.adstock)


def media_lags(xp: Any, layout: ChannelLayout, data: Mapping[str, Any], params: Mapping[str, Any]) -> Any:
    """The media adstock acts on, (..., weeks, l_max, channels): scaled spend or units; for a reach and
    frequency channel its scaled reach x ``f / (f + half_frequency)``."""
    if layout.frequency_map is None:
        return data["spend_lags"]
    frequency = data["frequency_lags"]  # (weeks, l_max, rf channels)
    half = xp.expand_dims(xp.expand_dims(params[C.HALF_FREQUENCY], -2), -2)  # (..., 1, 1, rf channels)
    response = frequency / xp.maximum(frequency + half, 1e-12)
    return data["spend_lags"] * (1.0 + (response - 1.0) @ layout.frequency_map)


def saturated_spend(xp: Any, layout: ChannelLayout, spend_lags: Any, params: Mapping[str, Any]) -> Any:
    """Saturation of adstocked spend, (..., weeks, channels), each value in [0, 1)."""
    adstocked = adstocked_spend(xp, layout, spend_lags, params)
    parts = [
        group.transform.apply(
            xp, _group_channels(adstocked, group, layout.saturation), **layout.group_params(params, group)
        )
        for group in layout.saturation
    ]
    return _in_channel_order(xp, parts, layout.saturation)


def linear_term(xp: Any, features: Any, coef: Any) -> Any:
    """``features @ coef`` with batch axes on ``coef``: (weeks, k) x (..., k) -> (..., weeks)."""
    return (features * xp.expand_dims(coef, -2)).sum(axis=-1)


def baseline_components(xp: Any, data: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """Non-media parts of mu, each (..., weeks); parts whose spec is empty are left out."""
    intercept = xp.expand_dims(params[C.INTERCEPT], -1)
    components = {C.INTERCEPT: intercept * xp.ones_like(data["target"])}
    if C.INTERCEPT_GP_COEF in params:
        components["time_varying_baseline"] = linear_term(xp, data[C.GP_BASIS], params[C.INTERCEPT_GP_COEF])
    for name, feature, coef in (
        ("trend", "trend", C.TREND_COEF),
        ("seasonality", "fourier", C.FOURIER_COEF),
        ("controls", "controls", C.CONTROL_COEF),
        ("events", "events", C.EVENT_COEF),
        ("treatments", "treatments", C.TREATMENT_COEF),
    ):
        if coef in params:
            components[name] = linear_term(xp, data[feature], params[coef])
    return components


def media_multiplier(xp: Any, layout: ChannelLayout, data: Mapping[str, Any], params: Mapping[str, Any]) -> Any:
    """Each channel's effectiveness multiplier, (..., weeks, channels), or 1.0 when none varies.

    With the HSGP basis in ``data`` it follows the weeks (fit, decomposition, response curves over
    the training calendar, predictions); without it (spend that is not on the calendar: the budget
    optimiser's horizon) it is the multiplier of the last training week.
    """
    if layout.multiplier_map is None:
        return 1.0
    if C.GP_BASIS in data:
        weights = xp.expand_dims(params[C.MEDIA_GP_COEF], -3)  # (..., 1, m, multipliers)
        log_multiplier = (xp.expand_dims(data[C.GP_BASIS], -1) * weights).sum(axis=-2)
    else:
        log_multiplier = xp.expand_dims(params[C.MEDIA_LOG_MULTIPLIER_LATEST], -2)
    per_channel = (xp.expand_dims(log_multiplier, -1) * layout.multiplier_map).sum(axis=-2)
    return xp.exp(per_channel)


def latest_log_multiplier(xp: Any, data: Mapping[str, Any], params: Mapping[str, Any]) -> Any:
    """Log multiplier of each media multiplier in the last training week, (..., multipliers)."""
    return (xp.expand_dims(data["gp_basis_last"], -1) * params[C.MEDIA_GP_COEF]).sum(axis=-2)


def indirect_coef(xp: Any, params: Mapping[str, Any]) -> Any:
    """Each channel's effect through the mediators at full saturation, (..., channels)."""
    return (xp.expand_dims(params[C.MEDIATOR_COEF], -1) * params[C.MEDIATOR_CHANNEL_COEF]).sum(axis=-2)


def channel_effect_parts(
    xp: Any, layout: ChannelLayout, data: Mapping[str, Any], params: Mapping[str, Any]
) -> tuple[Any, Any]:
    """Each channel's direct term and its term through the mediators, each (..., weeks, channels)."""
    saturated = saturated_spend(xp, layout, media_lags(xp, layout, data, params), params)
    direct = saturated * xp.expand_dims(params[C.CHANNEL_COEF], -2) * media_multiplier(xp, layout, data, params)
    if C.MEDIATOR_COEF not in params:
        return direct, xp.zeros_like(direct)
    return direct, saturated * xp.expand_dims(indirect_coef(xp, params), -2)


def channel_contributions(xp: Any, layout: ChannelLayout, data: Mapping[str, Any], params: Mapping[str, Any]) -> Any:
    """Each channel's term of mu (its total effect: direct plus through any mediators), (..., weeks,
    channels), in scaled target units."""
    direct, indirect = channel_effect_parts(xp, layout, data, params)
    return direct + indirect


def mediator_expected(xp: Any, layout: ChannelLayout, data: Mapping[str, Any], params: Mapping[str, Any]) -> Any:
    """Each mediator's expected scaled value, (..., weeks, mediators): its baseline plus the media it is driven by."""
    saturated = saturated_spend(xp, layout, media_lags(xp, layout, data, params), params)
    driven = (xp.expand_dims(saturated, -2) * xp.expand_dims(params[C.MEDIATOR_CHANNEL_COEF], -3)).sum(axis=-1)
    return mediator_baseline(xp, data, params) + driven


def mediator_baseline(xp: Any, data: Mapping[str, Any], params: Mapping[str, Any]) -> Any:
    """Each mediator's own baseline, (..., weeks, mediators): intercept, trend and seasonality."""
    out = xp.expand_dims(params[C.MEDIATOR_INTERCEPT], -2) * xp.ones_like(data["mediators"])
    for feature, coef in (("trend", C.MEDIATOR_TREND_COEF), ("fourier", C.MEDIATOR_FOURIER_COEF)):
        if coef in params:  # (..., mediators, k) x (weeks, k) -> (..., weeks, mediators)
            out = out + (xp.expand_dims(data[feature], -2) * xp.expand_dims(params[coef], -3)).sum(axis=-1)
    return out


def mediator_own_terms(xp: Any, layout: ChannelLayout, data: Mapping[str, Any], params: Mapping[str, Any]) -> Any:
    """The part of mu each mediator carries that no channel drives, (..., weeks, mediators):
    ``mediator_coef x (z - driven)``; weeks where z is not observed (a plan) use its expected value,
    so there the own part is the mediator's baseline."""
    expected = mediator_expected(xp, layout, data, params)
    observed = xp.where(xp.isnan(data["mediators"]), expected, data["mediators"])
    own = observed - expected + mediator_baseline(xp, data, params)
    return own * xp.expand_dims(params[C.MEDIATOR_COEF], -2)


def linear_predictor(
    xp: Any, layout: ChannelLayout, data: Mapping[str, Any], params: Mapping[str, Any]
) -> tuple[Any, Any]:
    """The linear predictor mu (..., weeks), scaled target or its log under a log link, and the
    channel terms it contains (..., weeks, channels)."""
    terms = channel_contributions(xp, layout, data, params)
    mu = sum(baseline_components(xp, data, params).values()) + terms.sum(axis=-1)
    if C.MEDIATOR_COEF in params:
        mu = mu + mediator_own_terms(xp, layout, data, params).sum(axis=-1)
    return mu, terms


def lift_effects(xp: Any, layout: ChannelLayout, data: Mapping[str, Any], params: Mapping[str, Any]) -> Any:
    """Each lift test's modelled lift (..., tests), in scaled target units: the test channel's
    contribution with the spend change minus without it, over the window and its carry-over."""
    if layout.frequency_map is not None:
        raise ValueError("lift tests are not supported with reach and frequency channels yet")
    changed = saturated_spend(xp, layout, data["lift_changed_lags"], params)
    base = saturated_spend(xp, layout, data["lift_base_lags"], params)
    basis = {C.GP_BASIS: data[f"lift_{C.GP_BASIS}"]} if f"lift_{C.GP_BASIS}" in data else {}
    effect = xp.expand_dims(params[C.CHANNEL_COEF], -2) * media_multiplier(xp, layout, basis, params)
    if C.MEDIATOR_COEF in params:  # a test measures the total effect
        effect = effect + xp.expand_dims(indirect_coef(xp, params), -2)
    difference = (changed - base) * effect  # (..., rows, channels)
    per_test = data["lift_rows"] @ difference  # (..., tests, channels)
    return (per_test * data["lift_channel"]).sum(axis=-1)
